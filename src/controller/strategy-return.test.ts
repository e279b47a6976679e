import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { ManualClock } from '../clock-test-support.js';
import type { ChangeType } from '../kube/cluster-view.js';
import { MOVE_STRATEGY, planMigration } from '../migration/plan.js';
import { migrationInput, serverApply, spotDeployment, TEST_SIGNER } from '../migration/test-fixtures.js';
import type { ControllerContext } from '../moves/context.js';
import type { PatchDecision, PatchOutcome } from '../moves/patcher.js';
import { MoveRegistry } from '../moves/registry.js';
import { StrategyReturn } from './strategy-return.js';

/** What a migration that failed with no spot capacity leaves: Fargate template, move strategy, no phase; `older` old pods counted in its status. */
function leftOnFargate(older: number): V1Deployment {
  const plan = planMigration(spotDeployment(), migrationInput());
  assert.equal(plan.action, 'patch');
  const migrated = serverApply(spotDeployment(), plan.action === 'patch' ? plan.ops : []);
  const d = serverApply(migrated, [{ op: 'remove', path: '/metadata/annotations/spot-orchestrator~1phase' }]);
  d.metadata!.generation = 8;
  d.status = { observedGeneration: 8, replicas: 3 + older, updatedReplicas: 3 };
  return d;
}

function setUp(initial: V1Deployment, options: { failWrites?: number; readyOlder?: number } = {}) {
  const clock = new ManualClock();
  const store = { current: initial, readyOlder: options.readyOlder ?? 0 };
  const podListeners: ((p: V1Pod, change: ChangeType) => void)[] = [];
  let failWrites = options.failWrites ?? 0;
  const listeners: ((d: V1Deployment, change: ChangeType) => void)[] = [];
  const events: string[] = [];
  const writes: string[] = [];
  const moves = new MoveRegistry(clock, pino({ level: 'silent' }));
  const ctx = {
    log: pino({ level: 'silent' }),
    clock,
    moves,
    signer: TEST_SIGNER,
    view: {
      onDeployment: (l: (d: V1Deployment, change: ChangeType) => void) => listeners.push(l),
      onPod: (l: (p: V1Pod, change: ChangeType) => void) => podListeners.push(l),
      deploymentOfPod: () => store.current,
      readyOlderPods: () => store.readyOlder,
      listDeployments: () => [store.current],
      deployment: () => store.current,
    },
    patcher: {
      async apply(_ns: string, _name: string, _cached: V1Deployment | undefined, decide: (d: V1Deployment) => PatchDecision): Promise<PatchOutcome> {
        const decision = decide(store.current);
        if ('skip' in decision) return { outcome: 'skipped', deployment: store.current, why: decision.skip };
        if ('error' in decision) return { outcome: 'error', error: decision.error, transient: false };
        if (failWrites-- > 0) return { outcome: 'error', error: 'the API server is unavailable', transient: true };
        writes.push(JSON.stringify(decision.ops.filter((o) => o.op !== 'test')));
        store.current = serverApply(store.current, decision.ops);
        return { outcome: 'patched', deployment: store.current, dryRun: false };
      },
    },
    recorder: {
      record(_target: unknown, _type: string, reason: string) {
        events.push(reason);
      },
    },
  } as unknown as ControllerContext;
  const returner = new StrategyReturn(ctx, () => true, 30_000);
  /** The watch delivers a new copy of the Deployment. */
  const deliver = (d: V1Deployment) => {
    store.current = d;
    for (const l of listeners) l(d, 'update');
  };
  /** The pod watch delivers an old pod's change (its Deployment's copy unchanged). */
  const deliverPod = (change: ChangeType, ready: boolean) => {
    const pod: V1Pod = { metadata: { name: 'api-old-1', namespace: 'prod' }, status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } };
    for (const l of podListeners) l(pod, change);
  };
  return { returner, store, events, writes, deliver, deliverPod, clock, moves };
}

const settle = () => new Promise((r) => setImmediate(r));
const userStrategy = spotDeployment().spec!.strategy;

describe('StrategyReturn', () => {
  it('gives the strategy back at start when no old pod is left, once', async () => {
    const { returner, store, events, writes, deliver } = setUp(leftOnFargate(0));
    returner.start();
    await settle();
    assert.deepEqual(store.current.spec!.strategy, userStrategy);
    assert.deepEqual(events, ['StrategyRestored']);
    deliver(store.current);
    await settle();
    assert.equal(writes.length, 1, 'nothing more to write');
  });

  it('waits while old pods serve, and acts on the watch copy that shows them gone', async () => {
    const { returner, store, events, deliver } = setUp(leftOnFargate(2), { readyOlder: 2 });
    returner.start();
    await settle();
    assert.deepEqual(store.current.spec!.strategy, MOVE_STRATEGY, 'the old pods are still serving');
    store.readyOlder = 0;
    deliver({ ...store.current, status: { ...store.current.status, replicas: 3 } });
    await settle();
    assert.deepEqual(store.current.spec!.strategy, userStrategy);
    assert.deepEqual(events, ['StrategyRestored']);
  });

  it('acts on the pod watch too: an old pod that stops serving after its Deployment copy arrived', async () => {
    // The old ReplicaSet recreated its pod, Pending: the Deployment status still counts it.
    const { returner, store, events, deliverPod } = setUp(leftOnFargate(1), { readyOlder: 1 });
    returner.start();
    await settle();
    deliverPod('update', true);
    await settle();
    assert.deepEqual(store.current.spec!.strategy, MOVE_STRATEGY, 'a Ready old pod changing is no reason to look');
    store.readyOlder = 0;
    deliverPod('delete', false);
    await settle();
    assert.deepEqual(store.current.spec!.strategy, userStrategy);
    assert.deepEqual(events, ['StrategyRestored']);
  });

  it('does nothing before it acts (a standby), nor while a move owns the Deployment', async () => {
    const { returner, store, deliver, moves } = setUp(leftOnFargate(0));
    deliver(store.current);
    await settle();
    assert.deepEqual(store.current.spec!.strategy, MOVE_STRATEGY, 'a standby does not write');
    let finish!: () => void;
    moves.start('prod/api', 'recovery', () => ({ value: undefined, done: new Promise<void>((r) => (finish = r)) }));
    returner.start();
    await settle();
    assert.deepEqual(store.current.spec!.strategy, MOVE_STRATEGY, 'the recovery in flight owns the strategy');
    finish();
    await settle();
    deliver(store.current);
    await settle();
    assert.deepEqual(store.current.spec!.strategy, userStrategy);
  });

  it('tries a failed write again after the retry interval', async () => {
    const { returner, store, clock } = setUp(leftOnFargate(0), { failWrites: 1 });
    returner.start();
    await settle();
    assert.deepEqual(store.current.spec!.strategy, MOVE_STRATEGY);
    await clock.advance(30_000);
    await settle();
    assert.deepEqual(store.current.spec!.strategy, userStrategy);
  });
});
