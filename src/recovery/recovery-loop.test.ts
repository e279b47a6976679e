// The recovery loop against an in-memory cluster: bounded concurrency, the failure path and an
// interruption taking over. (The real thing runs end to end in test/e2e/recovery.test.ts.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1Node } from '@kubernetes/client-node';
import { pino } from 'pino';
import type { Alert, Alerter } from '../alerts/alert.js';
import type { Config } from '../config/config.js';
import { loadConfig } from '../config/load.js';
import { ManualClock } from '../clock-test-support.js';
import type { ControllerContext } from '../moves/context.js';
import type { PatchDecision, PatchOutcome } from '../moves/patcher.js';
import { MoveRegistry } from '../moves/registry.js';
import type { Purpose, Settlement, TrackRequest } from '../moves/rollout-observer.js';
import type { ChangeType } from '../kube/cluster-view.js';
import { createMetrics } from '../metrics/metrics.js';
import { formatTimestamp, planFinish, planMigration } from '../migration/plan.js';
import { TEST_SIGNER, migrationInput, serverApply, spotDeployment } from '../migration/test-fixtures.js';
import { MANAGED_ANNOTATIONS as A } from '../state/annotations.js';
import { RecoveryFlow } from './recovery-flow.js';
import { RecoveryLoop } from './recovery-loop.js';

const MIGRATED = new Date('2025-03-14T09:00:00Z');
const NOW = new Date('2025-03-14T10:00:00Z');

function configWith(env: Record<string, string> = {}): Config {
  return loadConfig({ env: { SQS_QUEUE_URL: 'http://localhost:9324/000000000000/q', MODE: 'namespace', NAMESPACE: 'prod', RECOVERY_INTERVAL: '1h', ...env } });
}

function onFargate(name: string, minutesAfter = 0): V1Deployment {
  const base = spotDeployment();
  base.metadata!.name = name;
  const plan = planMigration(base, migrationInput({ now: new Date(MIGRATED.getTime() + minutesAfter * 60_000) }));
  const migrated = serverApply(base, plan.action === 'patch' ? plan.ops : []);
  const finish = planFinish(migrated, { kind: 'migrated' }, TEST_SIGNER);
  return serverApply(migrated, 'ops' in finish ? finish.ops : []);
}

const spotNode = (name: string): V1Node => ({
  metadata: { name, labels: { 'compute-type': 'spot', 'kubernetes.io/arch': 'amd64' } },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
});

class FakeCluster {
  readonly store = new Map<string, V1Deployment>();
  nodes: V1Node[] = [];
  readonly alerts: Alert[] = [];
  readonly tracked = new Map<string, { request: TrackRequest; settle: (s: Settlement) => void }>();
  readonly patches: string[] = [];
  maxRecoveriesTracked = 0;
  readonly clock = new ManualClock(NOW);
  readonly moves = new MoveRegistry(this.clock, pino({ level: 'silent' }));
  private nodeListeners: ((n: V1Node, c: ChangeType) => void)[] = [];

  constructor(deployments: V1Deployment[]) {
    for (const d of deployments) this.store.set(d.metadata!.name!, d);
  }

  context(config: Config): ControllerContext {
    const alerter: Alerter = { notify: (a) => void this.alerts.push(a), flush: async () => {} };
    return {
      config,
      log: pino({ level: 'silent' }),
      clock: this.clock,
      moves: this.moves,
      view: {
        listDeployments: () => [...this.store.values()],
        deployment: (_namespace: string, name: string) => this.store.get(name),
        inScope: (ns: string) => ns === config.kubernetes.namespace,
        listNodes: () => this.nodes,
        onNode: (l: (n: V1Node, c: ChangeType) => void) => void this.nodeListeners.push(l),
      },
      core: {},
      patcher: { apply: async (_ns: string, name: string, _cached: unknown, decide: (d: V1Deployment) => PatchDecision) => this.apply(name, decide) },
      observer: { track: (request: TrackRequest, signal?: AbortSignal) => this.track(request, signal) },
      recorder: { record() {} },
      alerter,
      metrics: createMetrics(),
      signer: TEST_SIGNER,
    } as unknown as ControllerContext;
  }

  addNode(node: V1Node): void {
    this.nodes.push(node);
    for (const l of this.nodeListeners) l(node, 'add');
  }

  private async apply(name: string, decide: (d: V1Deployment) => PatchDecision): Promise<PatchOutcome> {
    const current = this.store.get(name);
    if (!current) return { outcome: 'not_found' };
    const decision = decide(current);
    if ('skip' in decision) return { outcome: 'skipped', deployment: current, why: decision.skip };
    if ('error' in decision) return { outcome: 'error', error: decision.error, transient: false };
    const next = serverApply(current, decision.ops);
    next.metadata!.generation = (current.metadata!.generation ?? 0) + 1;
    this.store.set(name, next);
    this.patches.push(`${name}:${next.metadata?.annotations?.[A.phase] ?? '-'}`);
    return { outcome: 'patched', deployment: next, dryRun: false };
  }

  /** Like RolloutObserver.track: an aborted signal settles the observation as stood down. */
  track(request: TrackRequest, signal?: AbortSignal): Promise<Settlement> {
    const key = `${request.namespace}/${request.name}`;
    return new Promise((settle) => {
      const entry = { request, settle };
      signal?.addEventListener('abort', () => {
        if (this.tracked.get(key) === entry) this.tracked.delete(key);
        settle({ result: 'failed', reason: 'stood-down', detail: String(signal.reason) });
      });
      this.tracked.set(key, entry);
      this.maxRecoveriesTracked = Math.max(this.maxRecoveriesTracked, [...this.tracked.values()].filter((t) => t.request.purpose === 'recovery').length);
    });
  }

  settle(name: string, purpose: Purpose, s: Settlement): void {
    const t = this.tracked.get(`prod/${name}`);
    assert.equal(t?.request.purpose, purpose, `${name} tracked for ${purpose}`);
    this.tracked.delete(`prod/${name}`);
    t!.settle(s);
  }

  trackedFor(purpose: Purpose): string[] {
    return [...this.tracked.values()]
      .filter((t) => t.request.purpose === purpose)
      .map((t) => t.request.name)
      .sort();
  }
}

async function until(what: string, cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const ok: Settlement = { result: 'complete', durationMs: 1000 };

/**
 * Runs a recovery loop over `deployments` on a fake cluster with the given spot nodes, and stops it
 * after `body`, whatever the outcome.
 */
async function withLoop(
  o: { deployments: V1Deployment[]; nodes: V1Node[]; config?: Config },
  body: (cluster: FakeCluster, loop: RecoveryLoop) => Promise<void>,
): Promise<void> {
  const config = o.config ?? configWith();
  const cluster = new FakeCluster(o.deployments);
  cluster.nodes = o.nodes;
  const ctx = cluster.context(config);
  const loop = new RecoveryLoop(ctx, new RecoveryFlow(ctx), { debounceMs: 5 });
  loop.start();
  try {
    await body(cluster, loop);
  } finally {
    loop.stop();
  }
}

describe('recovery loop', () => {
  it('moves at most max_concurrent_recoveries at once, and a slow one holds back only its own slot', async () => {
    await withLoop(
      { deployments: ['a', 'b', 'c', 'd'].map((n, i) => onFargate(n, i)), nodes: [spotNode('spot-1')], config: configWith({ MAX_CONCURRENT_RECOVERIES: '2' }) },
      async (cluster, loop) => {
        assert.deepEqual(loop.lastPass?.queued, ['prod/a', 'prod/b', 'prod/c', 'prod/d'], 'longest on Fargate first');
        await until('two recoveries in flight', () => cluster.trackedFor('recovery').length === 2);
        assert.deepEqual(cluster.trackedFor('recovery'), ['a', 'b']);
        // b is slow; a, then c and d finish while b still holds its slot.
        cluster.settle('a', 'recovery', ok);
        await until('c started', () => cluster.trackedFor('recovery').includes('c'));
        cluster.settle('c', 'recovery', ok);
        await until('d started', () => cluster.trackedFor('recovery').includes('d'));
        cluster.settle('d', 'recovery', ok);
        await until('a, c, d recovered', () => ['a', 'c', 'd'].every((n) => cluster.store.get(n)?.metadata?.annotations?.[A.state] === 'spot'));
        assert.equal(cluster.store.get('b')?.metadata?.annotations?.[A.phase], 'recovering');
        assert.equal(cluster.maxRecoveriesTracked, 2);
        assert.equal(loop.inFlight, 1);
        const started = cluster.alerts.filter((x) => x.kind === 'recovery_started');
        assert.equal(started.length, 1);
        assert.equal(cluster.alerts.filter((x) => x.kind === 'recovery_completed').length, 3);
        cluster.settle('b', 'recovery', ok);
        const b = await loop.settled('prod/b');
        assert.equal(b?.result, 'recovered');
        const a = cluster.store.get('a')!.metadata!.annotations!;
        assert.equal(a[A.recoveryReason], 'successful-recovery');
        assert.equal(a[A.failedRecoveryAttempts], '0');
        assert.equal(a[A.lastRecoveredAt], formatTimestamp(NOW));
        assert.equal(a[A.savedSpec], undefined);
      },
    );
  });

  it('a failed recovery goes back to Fargate, counts the attempt, alerts with the next attempt time, and sees the rollback through', async () => {
    const original = spotDeployment();
    await withLoop({ deployments: [onFargate('api')], nodes: [spotNode('spot-1')] }, async (cluster, loop) => {
      await until('recovery in flight', () => cluster.trackedFor('recovery').length === 1);
      const recovering = cluster.store.get('api')!;
      assert.deepEqual(recovering.spec?.template.spec?.nodeSelector, original.spec?.template.spec?.nodeSelector);
      assert.deepEqual(recovering.spec?.strategy?.rollingUpdate?.maxUnavailable, 0, 'maxUnavailable 0 during the move');
      cluster.settle('api', 'recovery', { result: 'failed', reason: 'timeout', detail: 'rollout not healthy within 180000 ms: 1/3 available' });
      await until('rollback observed', () => cluster.trackedFor('recovery-rollback').length === 1);
      const failed = cluster.store.get('api')!;
      const a = failed.metadata!.annotations!;
      assert.equal(a[A.state], 'fargate');
      assert.equal(a[A.phase], 'migrating');
      assert.equal(a[A.failedRecoveryAttempts], '1');
      assert.equal(a[A.lastRecoveredAt], formatTimestamp(NOW));
      assert.match(a[A.recoveryReason]!, /^rollout-timeout: rollout not healthy within 180000 ms/);
      assert.equal(failed.spec?.template.metadata?.labels?.['compute-type'], 'fargate');
      const alert = cluster.alerts.find((x) => x.kind === 'recovery_failed');
      assert.ok(alert?.kind === 'recovery_failed');
      assert.equal(alert.attempts, 1);
      assert.deepEqual(alert.nextAttemptAt, new Date(NOW.getTime() + 15 * 60_000));
      cluster.settle('api', 'recovery-rollback', ok);
      const report = await loop.settled('prod/api');
      assert.equal(report?.result, 'rolled_back');
      const done = cluster.store.get('api')!;
      assert.equal(done.metadata?.annotations?.[A.phase], undefined);
      assert.deepEqual(done.spec?.strategy, original.spec?.strategy, 'the user strategy back');
      // Backing off now: the next pass does not start another attempt.
      const pass = loop.pass('test');
      const verdict = pass?.verdicts.get('prod/api');
      assert.ok(verdict && !verdict.eligible && verdict.reason === 'backoff');
    });
  });

  it('stands down when an interruption takes the Deployment over mid-recovery', async () => {
    await withLoop({ deployments: [onFargate('api')], nodes: [spotNode('spot-1')] }, async (cluster, loop) => {
      await until('recovery in flight', () => cluster.trackedFor('recovery').length === 1);
      // What MigrationFlow.migrate does on a recovering Deployment: the Fargate template again, then observe.
      const recovering = cluster.store.get('api')!;
      const plan = planMigration(recovering, migrationInput({ now: NOW, eventId: 'evt-2' }));
      assert.equal(plan.action, 'patch', 'planMigration does not skip a Deployment in phase recovering');
      const migration = cluster.moves.start('prod/api', 'migration', (move) => {
        cluster.store.set('api', serverApply(recovering, plan.action === 'patch' ? plan.ops : []));
        const settled = cluster.track({ namespace: 'prod', name: 'api', purpose: 'migration' } as TrackRequest, move.signal);
        return { value: settled, done: settled };
      });
      assert.ok(!('busy' in migration) && !migration.joined, 'the migration supersedes the recovery');
      const report = await loop.settled('prod/api');
      assert.equal(report?.result, 'preempted');
      const d = cluster.store.get('api')!;
      assert.equal(d.metadata?.annotations?.[A.phase], 'migrating');
      assert.equal(d.metadata?.annotations?.[A.failedRecoveryAttempts], undefined);
      assert.equal(d.spec?.template.metadata?.labels?.['compute-type'], 'fargate');
      assert.deepEqual(cluster.patches, ['api:recovering'], 'no patch of ours after the interruption');
      assert.deepEqual(cluster.trackedFor('migration'), ['api'], 'the migration keeps its observation');
      assert.equal(cluster.alerts.filter((x) => x.kind === 'recovery_failed' || x.kind === 'recovery_completed').length, 0);
    });
  });

  it('a spot node becoming healthy triggers a pass without waiting for the interval', async () => {
    await withLoop({ deployments: [onFargate('api')], nodes: [] }, async (cluster, loop) => {
      const first = loop.lastPass?.verdicts.get('prod/api');
      assert.ok(first && !first.eligible && first.reason === 'no_spot_capacity');
      cluster.addNode(spotNode('spot-new'));
      assert.equal(cluster.trackedFor('recovery').length, 0, 'not before the debounce');
      await cluster.clock.advance(5);
      await until('recovery in flight', () => cluster.trackedFor('recovery').length === 1);
      assert.equal(loop.lastPass?.trigger, 'spot node spot-new healthy');
    });
  });
});
