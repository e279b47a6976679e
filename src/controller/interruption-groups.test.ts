// Grouping the alerts of warnings that arrive together, with a hand-driven clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Alert, Alerter, DeploymentOutcome } from '../alerts/alert.js';
import type { Clock } from '../clock.js';
import { InterruptionGroups } from './interruption-groups.js';

function harness() {
  const alerts: Alert[] = [];
  const alerter: Alerter = { notify: (a) => void alerts.push(a), flush: async () => {} };
  let now = Date.parse('2026-11-25T10:00:00Z');
  const timers: { at: number; fn: () => void }[] = [];
  const clock: Pick<Clock, 'now' | 'setTimer'> = {
    now: () => new Date(now),
    setTimer: (fn, ms) => {
      timers.push({ at: now + ms, fn });
      return { cancel: () => {} };
    },
  };
  const advance = async (ms: number) => {
    now += ms;
    for (const t of timers.filter((t) => t.at <= now)) {
      timers.splice(timers.indexOf(t), 1);
      t.fn();
    }
    await new Promise((r) => setImmediate(r));
  };
  return {
    alerts,
    groups: new InterruptionGroups(alerter, clock, 2000),
    advance,
    of: <K extends Alert['kind']>(k: K) => alerts.filter((a): a is Extract<Alert, { kind: K }> => a.kind === k),
  };
}

const deadline = (s: number) => new Date(Date.parse('2026-11-25T10:02:00Z') + s * 1000);
const ref = (name: string) => ({ namespace: 'shop', name });
const done = (o: DeploymentOutcome) => Promise.resolve(o);
const migrated: DeploymentOutcome = { result: 'migrated', durationMs: 40_000 };

describe('InterruptionGroups', () => {
  it('announces warnings that arrive within the window once, and sums them up once every phase 2 has settled', async () => {
    const h = harness();
    const first = h.groups.join({
      eventId: 'e1',
      instances: [{ instanceId: 'i-1', node: 'n1' }],
      deadline: deadline(1),
      deployments: [ref('api'), ref('web')],
    });
    await h.advance(300);
    const second = h.groups.join({
      eventId: 'e2',
      instances: [{ instanceId: 'i-2', node: 'n2' }],
      deadline: deadline(0),
      deployments: [ref('web'), ref('cart')],
    });
    assert.equal(h.alerts.length, 0, 'nothing said while the window is open');
    await h.advance(1700);
    const [detected] = h.of('interruption_detected');
    assert.deepEqual(
      {
        n: h.of('interruption_detected').length,
        id: detected!.eventId,
        instances: detected!.instances.map((i) => i.instanceId),
        deployments: detected!.deployments,
        deadline: detected!.deadline,
      },
      { n: 1, id: 'e1 (+1 more)', instances: ['i-1', 'i-2'], deployments: 3, deadline: deadline(0) },
    );
    assert.deepEqual(
      h.of('migration_started')[0]!.deployments.map((d) => d.name),
      ['api', 'web', 'cart'],
    );

    let settleCart!: (o: DeploymentOutcome) => void;
    first([
      { ref: ref('api'), outcome: done(migrated) },
      { ref: ref('web'), outcome: done(migrated) },
    ]);
    second([
      // web was moved by the first warning: this member only joined it.
      { ref: ref('web'), outcome: done({ result: 'skipped', reason: 'already_on_fargate', detail: '' }), joined: true },
      { ref: ref('cart'), outcome: new Promise((r) => (settleCart = r)) },
    ]);
    await h.advance(10);
    assert.equal(h.of('migration_summary').length, 0, 'waits for the last rollout');
    await h.advance(5000);
    settleCart({ result: 'failed', reason: 'rollout timed out', rolledBack: true });
    await h.advance(1);
    const summaries = h.of('migration_summary');
    assert.equal(summaries.length, 1);
    assert.deepEqual(
      summaries[0]!.outcomes.map((o) => [o.name, o.result]),
      [
        ['api', 'migrated'],
        ['web', 'migrated'],
        ['cart', 'failed'],
      ],
    );
    assert.equal(summaries[0]!.durationMs, 7011);
  });

  it('prefers the outcome of the member that moved a Deployment over one that found it moved, whichever reports first', async () => {
    const h = harness();
    const a = h.groups.join({ eventId: 'a', instances: [{ instanceId: 'i-a' }], deadline: deadline(0), deployments: [ref('web')] });
    const b = h.groups.join({ eventId: 'b', instances: [{ instanceId: 'i-b' }], deadline: deadline(0), deployments: [ref('web')] });
    b([{ ref: ref('web'), outcome: done({ result: 'skipped', reason: 'already_on_fargate', detail: '' }), joined: true }]);
    a([{ ref: ref('web'), outcome: done(migrated) }]);
    await h.advance(2000);
    assert.deepEqual(
      h.of('migration_summary')[0]!.outcomes.map((o) => o.result),
      ['migrated'],
    );
  });

  it('starts a new group after the window, and waits for a member whose phase 1 is slow', async () => {
    const h = harness();
    const slow = h.groups.join({ eventId: 'e1', instances: [{ instanceId: 'i-1' }], deadline: deadline(0), deployments: [ref('api')] });
    await h.advance(2500);
    assert.equal(h.of('interruption_detected').length, 1);
    assert.equal(h.of('migration_summary').length, 0, 'phase 1 of e1 still running');
    const late = h.groups.join({ eventId: 'e9', instances: [{ instanceId: 'i-9' }], deadline: deadline(30), deployments: [] });
    late([]);
    await h.advance(2000);
    const detected = h.of('interruption_detected');
    assert.deepEqual(
      detected.map((d) => d.eventId),
      ['e1', 'e9'],
      'a warning after the window is an interruption of its own',
    );
    assert.equal(h.of('migration_started').length, 1, 'nothing to start for a group without Deployments');
    slow([{ ref: ref('api'), outcome: done(migrated) }]);
    await h.advance(1);
    assert.deepEqual(
      h.of('migration_summary').map((s) => s.eventId),
      ['e1'],
      'no summary for a group without Deployments',
    );
  });
});
