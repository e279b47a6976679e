// The move registry's rules: one move per Deployment, joining, an interruption superseding a
// recovery or a rollback, standing down on stop, and resuming orphaned moves from the phase annotation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment } from '@kubernetes/client-node';
import { pino } from 'pino';
import { ManualClock } from '../clock-test-support.js';
import { MANAGED_ANNOTATIONS } from '../state/annotations.js';
import { type InFlightPhase, type MoveHandle, MoveRegistry } from './registry.js';

const log = pino({ level: 'silent' });

/** A move that ends when the test says so, and remembers its handle. */
function pending() {
  let end!: () => void;
  const done = new Promise<void>((r) => {
    end = r;
  });
  const handles: MoveHandle[] = [];
  const begin = (move: MoveHandle) => {
    handles.push(move);
    return { value: handles.length, done };
  };
  return { begin, end, handles };
}

const deployment = (name: string, phase?: string, resourceVersion = '1'): V1Deployment => ({
  metadata: { namespace: 'prod', name, resourceVersion, annotations: phase ? { [MANAGED_ANNOTATIONS.phase]: phase } : {} },
});

describe('MoveRegistry', () => {
  it('runs one move per Deployment: the same kind joins, and the entry goes when the move is over', async () => {
    const moves = new MoveRegistry(new ManualClock(), log);
    const first = pending();
    assert.deepEqual(moves.start('prod/a', 'migration', first.begin), { joined: false, value: 1 });
    const second = pending();
    assert.deepEqual(moves.start('prod/a', 'migration', second.begin), { joined: true, value: 1 }, 'joins, with the first move’s value');
    assert.equal(second.handles.length, 0, 'the joiner’s move never begins');
    assert.equal(moves.current('prod/a'), 'migration');
    assert.equal(moves.current('prod/b'), undefined);
    first.end();
    await new Promise((r) => setImmediate(r));
    assert.equal(moves.current('prod/a'), undefined);
    assert.equal(moves.size, 0);
  });

  it('an interruption supersedes a recovery or a rollback; nothing supersedes a migration', () => {
    const moves = new MoveRegistry(new ManualClock(), log);
    const recovery = pending();
    moves.start('prod/a', 'recovery', recovery.begin);
    const migration = pending();
    assert.deepEqual(moves.start('prod/a', 'migration', migration.begin), { joined: false, value: 1 });
    assert.equal(recovery.handles[0]!.signal.aborted, true);
    assert.equal(recovery.handles[0]!.signal.reason, 'superseded');
    assert.equal(moves.current('prod/a'), 'migration');
    assert.deepEqual(moves.start('prod/a', 'recovery', pending().begin), { busy: 'migration' }, 'a recovery waits for the migration');
    // The superseded recovery ending later does not remove the migration's entry.
    recovery.end();

    migration.handles[0]!.become('rollback');
    assert.equal(moves.current('prod/a'), 'rollback');
    assert.deepEqual(moves.start('prod/a', 'recovery', pending().begin), { busy: 'rollback' });
    const again = pending();
    assert.equal('busy' in moves.start('prod/a', 'migration', again.begin), false, 'a new warning supersedes the rollback to spot');
    assert.equal(migration.handles[0]!.signal.aborted, true);
    assert.equal(again.handles[0]!.signal.aborted, false);
  });

  it('stop() tells every move to stand down, and a move started afterwards begins stood down', () => {
    const moves = new MoveRegistry(new ManualClock(), log);
    const a = pending();
    moves.start('prod/a', 'recovery', a.begin);
    moves.stop();
    assert.equal(a.handles[0]!.signal.reason, 'stopping');
    const b = pending();
    moves.start('prod/b', 'recovery', b.begin);
    assert.equal(b.handles[0]!.signal.aborted, true);
  });

  it('resumes every orphaned move at once at start, and later only after two sightings at the same resourceVersion', async () => {
    const clock = new ManualClock();
    const moves = new MoveRegistry(clock, log);
    let cluster = [deployment('migrating', 'migrating'), deployment('rest'), deployment('recovering', 'recovering'), deployment('owned', 'rolling-back')];
    const owned = pending();
    moves.start('prod/owned', 'rollback', owned.begin);
    const resumed: string[] = [];
    moves.startResync({
      list: () => cluster,
      resume: (d, phase: InFlightPhase) => {
        resumed.push(`${d.metadata!.name}:${phase}`);
        return true;
      },
      intervalMs: 1000,
    });
    assert.deepEqual(resumed, ['migrating:migrating', 'recovering:recovering'], 'at start, at once; never one a move here owns');

    // A move whose last patch failed: it ends with its phase still set.
    resumed.length = 0;
    cluster = [deployment('stuck', 'migrating', '7'), deployment('finishing', 'migrating', '8')];
    await clock.advance(1000);
    assert.deepEqual(resumed, [], 'first sighting: it may be a move that just ended and whose last patch the watch has not delivered');
    cluster = [deployment('stuck', 'migrating', '7'), deployment('finishing', undefined, '9')];
    await clock.advance(1000);
    assert.deepEqual(resumed, ['stuck:migrating'], 'second sighting, unchanged: resumed');
    // A Deployment that changed between passes is looked at again before it is resumed.
    cluster = [deployment('moving', 'recovering', '3')];
    await clock.advance(1000);
    cluster = [deployment('moving', 'recovering', '4')];
    await clock.advance(1000);
    assert.deepEqual(resumed, ['stuck:migrating']);
    await clock.advance(1000);
    assert.deepEqual(resumed, ['stuck:migrating', 'moving:recovering']);
    moves.stop();
    assert.equal(clock.timers, 0, 'stop() ends the periodic pass');
  });
});
