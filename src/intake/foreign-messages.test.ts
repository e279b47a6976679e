// What the intake does with messages for instances outside this cluster, and when it says the queue
// is shared: the pure decisions, with time passed in.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  FOREIGN_MEMORY,
  ForeignMessages,
  KEPT_FIRST_HIDE_SECONDS,
  KEPT_MAX_HIDE_SECONDS,
  keptHideSeconds,
  SHARED_QUEUE_FOREIGN_MESSAGES,
  SHARED_QUEUE_WINDOW_MS,
} from './foreign-messages.js';

const T0 = Date.parse('2026-12-01T08:00:00Z');
const ids = (n: number, prefix = 'm') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('ForeignMessages: the shared-queue warning', () => {
  it('says so once, on the message that reaches the threshold within the window, with the count by kind', () => {
    const foreign = new ForeignMessages(false);
    const signs = ids(SHARED_QUEUE_FOREIGN_MESSAGES + 5).map(
      (id, i) => foreign.observe(id, i % 2 ? 'rebalance_recommendation' : 'spot_interrupted', T0 + i * 1000).sharedQueue,
    );
    const at = signs.findIndex((s) => s !== undefined);
    assert.equal(at, SHARED_QUEUE_FOREIGN_MESSAGES - 1, 'on the threshold-th message');
    assert.deepEqual(signs[at], {
      messages: SHARED_QUEUE_FOREIGN_MESSAGES,
      windowMs: SHARED_QUEUE_WINDOW_MS,
      byKind: { spot_interrupted: SHARED_QUEUE_FOREIGN_MESSAGES / 2, rebalance_recommendation: SHARED_QUEUE_FOREIGN_MESSAGES / 2 },
    });
    assert.equal(signs.filter((s) => s !== undefined).length, 1, 'once, not per message');
    // Not again, however many more come, later too.
    const later = ids(3 * SHARED_QUEUE_FOREIGN_MESSAGES, 'later').map((id, i) => foreign.observe(id, 'spot_interrupted', T0 + 3_600_000 + i).sharedQueue);
    assert.deepEqual(later.filter(Boolean), []);
  });

  it('counts within a sliding window: strays spread wider than the window never add up', () => {
    const foreign = new ForeignMessages(false);
    const spacing = SHARED_QUEUE_WINDOW_MS / (SHARED_QUEUE_FOREIGN_MESSAGES - 1);
    // Just too sparse: the first has left the window when the threshold-th comes.
    const sparse = ids(5 * SHARED_QUEUE_FOREIGN_MESSAGES).map((id, i) => foreign.observe(id, 'spot_interrupted', T0 + i * (spacing + 1)).sharedQueue);
    assert.deepEqual(sparse.filter(Boolean), []);
    // A burst later in the life of the process (a second cluster pointed at the queue) still counts.
    const burst = ids(SHARED_QUEUE_FOREIGN_MESSAGES, 'burst').map((id, i) => foreign.observe(id, 'spot_interrupted', T0 + 86_400_000 + i).sharedQueue);
    assert.equal(burst.filter(Boolean).length, 1);
  });

  it('counts a message seen again (kept and back, or its delete failed) once', () => {
    const foreign = new ForeignMessages(true);
    for (let round = 0; round < 5; round++) {
      for (const id of ids(SHARED_QUEUE_FOREIGN_MESSAGES - 1)) assert.equal(foreign.observe(id, 'spot_interrupted', T0 + round * 1000).sharedQueue, undefined);
    }
    assert.ok(foreign.observe('one-more', 'spot_interrupted', T0 + 6000).sharedQueue, 'the threshold-th distinct message');
  });

  it('does not count state changes: the Node of a stopped or new instance of this cluster is often not there', () => {
    const foreign = new ForeignMessages(false);
    const signs = ids(3 * SHARED_QUEUE_FOREIGN_MESSAGES).map((id, i) => foreign.observe(id, 'state_change', T0 + i).sharedQueue);
    assert.deepEqual(signs.filter(Boolean), []);
    // ...while the kinds sent for a running instance do, scheduled changes and capacity reservations included.
    const kinds = ['scheduled_change', 'capacity_reservation_interrupted'] as const;
    const counted = ids(SHARED_QUEUE_FOREIGN_MESSAGES, 'k').map((id, i) => foreign.observe(id, kinds[i % 2]!, T0 + 100 + i).sharedQueue);
    assert.equal(counted.filter(Boolean).length, 1);
  });
});

describe('ForeignMessages: deleted or kept', () => {
  it('deletes by default, at every sighting', () => {
    const foreign = new ForeignMessages(false);
    assert.deepEqual(
      [1, 2].map(() => foreign.observe('m', 'spot_interrupted', T0)).map((v) => [v.action, v.sightings]),
      [
        ['deleted', 1],
        ['deleted', 2],
      ],
    );
  });

  it('kept: released at once the first time, then hidden longer at each sighting, up to a bound', () => {
    const foreign = new ForeignMessages(true);
    const verdicts = Array.from({ length: 10 }, (_, i) => foreign.observe('m', 'spot_interrupted', T0 + i * 1000));
    assert.deepEqual(verdicts[0], { action: 'released', hideSeconds: 0, sightings: 1 });
    assert.deepEqual(
      verdicts.slice(1).map((v) => [v.action, 'hideSeconds' in v ? v.hideSeconds : undefined]),
      [30, 60, 120, 240, 480, 900, 900, 900, 900].map((s) => ['held', s]),
    );
    // The other messages are not affected by this one's history.
    assert.deepEqual(foreign.observe('other', 'rebalance_recommendation', T0), { action: 'released', hideSeconds: 0, sightings: 1 });
  });

  it('keptHideSeconds: the schedule the verdicts follow', () => {
    assert.equal(keptHideSeconds(1), 0);
    assert.equal(keptHideSeconds(2), KEPT_FIRST_HIDE_SECONDS);
    assert.equal(keptHideSeconds(3), 2 * KEPT_FIRST_HIDE_SECONDS);
    assert.equal(keptHideSeconds(1000), KEPT_MAX_HIDE_SECONDS, 'no overflow past the bound');
    assert.ok(KEPT_MAX_HIDE_SECONDS <= 43_200, 'within what SQS accepts');
  });

  it('remembers a bounded number of messages, forgetting the least recently seen', () => {
    const foreign = new ForeignMessages(true);
    foreign.observe('old', 'spot_interrupted', T0);
    foreign.observe('kept-fresh', 'spot_interrupted', T0);
    for (const id of ids(FOREIGN_MEMORY - 2)) foreign.observe(id, 'state_change', T0);
    foreign.observe('kept-fresh', 'spot_interrupted', T0 + 1); // seen again: now the most recent
    foreign.observe('newcomer', 'state_change', T0 + 2); // one over the bound: the oldest goes
    assert.equal(foreign.observe('kept-fresh', 'spot_interrupted', T0 + 3).sightings, 3);
    assert.equal(foreign.observe('old', 'spot_interrupted', T0 + 4).sightings, 1, 'forgotten, so released at once again');
  });
});
