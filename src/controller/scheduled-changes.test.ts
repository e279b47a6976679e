// The sweep, driven by a ManualClock: a scheduled change moves when its lead time comes (or at once when
// that has passed), once; a new process finds it from the node marks alone; survivors get their seal back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CoreV1Api, V1Node } from '@kubernetes/client-node';
import { pino } from 'pino';
import { ManualClock } from '../clock-test-support.js';
import { loadConfig } from '../config/load.js';
import type { ClusterView } from '../kube/cluster-view.js';
import { createMetrics } from '../metrics/metrics.js';
import type { ControllerContext } from '../moves/context.js';
import { NODE_ANNOTATIONS } from '../state/annotations.js';
import type { HandleResult } from './interruption-handler.js';
import type { DueChange, NodePatch } from './node-marks.js';
import { ScheduledChanges } from './scheduled-changes.js';

const START = new Date('2026-11-30T10:00:00Z');

/** Nodes that take merge patches the way the API server does (enough of it for these marks). */
class Nodes {
  readonly byName = new Map<string, V1Node>();
  readonly events: string[] = [];

  add(name: string, annotations: Record<string, string>, extra: Partial<V1Node['spec']> = {}): void {
    this.byName.set(name, {
      metadata: { name, annotations, labels: {} },
      spec: { providerID: `aws:///eu-west-1a/i-0${String(this.byName.size + 1).padStart(16, '0')}`, ...extra },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    });
  }

  patch(name: string, body: NodePatch): void {
    const n = this.byName.get(name)!;
    const annotations = { ...n.metadata!.annotations };
    for (const [k, v] of Object.entries(body.metadata.annotations ?? {}))
      if (v === null) delete annotations[k];
      else annotations[k] = v;
    const labels = { ...n.metadata!.labels };
    for (const [k, v] of Object.entries(body.metadata.labels ?? {}))
      if (v === null) delete labels[k];
      else labels[k] = v;
    const spec = { ...n.spec };
    if (body.spec && 'unschedulable' in body.spec) spec.unschedulable = body.spec.unschedulable ?? undefined;
    if (body.spec && 'taints' in body.spec) spec.taints = body.spec.taints ?? undefined;
    this.byName.set(name, { ...n, metadata: { ...n.metadata, annotations, labels }, spec });
  }

  context(clock: ManualClock, env: Record<string, string> = {}): ControllerContext {
    const config = loadConfig({
      env: { SQS_QUEUE_URL: 'http://localhost:9324/000000000000/q', MODE: 'namespace', NAMESPACE: 'prod', CHECK_INTERVAL: '5s', ...env },
    });
    return {
      config,
      clock,
      log: pino({ level: 'silent' }),
      view: { listNodes: () => [...this.byName.values()] } as unknown as ClusterView,
      core: {
        patchNode: async ({ name, body }: { name: string; body: NodePatch }) => this.patch(name, body),
        readNode: async ({ name }: { name: string }) => this.byName.get(name),
      } as unknown as CoreV1Api,
      recorder: { record: (target: { name: string }, _type: string, reason: string) => void this.events.push(`${reason} ${target.name}`) },
      metrics: createMetrics(),
    } as unknown as ControllerContext;
  }
}

/** Records each move and writes the done mark the handler's phase 1 writes. */
class Mover {
  readonly moves: { at: string; change: DueChange }[] = [];
  ack = true;
  constructor(
    private readonly nodes: Nodes,
    private readonly clock: ManualClock,
  ) {}

  async moveScheduledChange(change: DueChange): Promise<HandleResult> {
    this.moves.push({ at: this.clock.now().toISOString(), change });
    if (this.ack) {
      for (const { node } of change.nodes) {
        this.nodes.patch(node.metadata!.name!, {
          metadata: {
            annotations: {
              [NODE_ANNOTATIONS.scheduledChangeMoved]: JSON.stringify({ prod: change.startTime.toISOString() }),
              [NODE_ANNOTATIONS.terminationDeadline]: change.startTime.toISOString(),
              [NODE_ANNOTATIONS.sealed]: '{"taint":true,"label":true,"cordon":true}',
            },
          },
          spec: { unschedulable: true, taints: [{ key: 'spot-orchestrator/interrupted', effect: 'NoSchedule' }] },
        });
      }
    }
    return { ack: this.ack, outcome: 'migrated', settled: Promise.resolve() };
  }
}

const marks = (startTime: Date, eventId = 'health-1') => ({
  [NODE_ANNOTATIONS.scheduledChangeAt]: startTime.toISOString(),
  [NODE_ANNOTATIONS.scheduledChangeEvent]: eventId,
});

describe('ScheduledChanges', () => {
  it('moves a change at startTime - lead, not before, and only once', async () => {
    const clock = new ManualClock(START);
    const nodes = new Nodes();
    nodes.add('spot-a', marks(new Date(START.getTime() + 3 * 3600_000)));
    const mover = new Mover(nodes, clock);
    const sweep = new ScheduledChanges(nodes.context(clock, { SCHEDULED_CHANGE_LEAD: '10m' }), mover);
    sweep.start();
    await clock.advance(2 * 3600_000 + 49 * 60_000);
    assert.equal(mover.moves.length, 0, 'eleven minutes before: not yet');
    await clock.advance(60_000);
    assert.deepEqual(
      mover.moves.map((m) => [m.at, m.change.eventId, m.change.nodes.map((n) => n.node.metadata!.name)]),
      [['2026-11-30T12:50:00.000Z', 'health-1', ['spot-a']]],
    );
    await clock.advance(3600_000);
    assert.equal(mover.moves.length, 1, 'once');
    sweep.stop();
  });

  it('a change whose lead time has passed moves at once when told', async () => {
    const clock = new ManualClock(START);
    const nodes = new Nodes();
    const mover = new Mover(nodes, clock);
    const sweep = new ScheduledChanges(nodes.context(clock, { SCHEDULED_CHANGE_LEAD: '10m', CHECK_INTERVAL: '1h' }), mover);
    sweep.start();
    await clock.advance(1000);
    nodes.add('spot-a', marks(new Date(START.getTime() + 5 * 60_000)));
    sweep.wake();
    await clock.advance(0);
    assert.equal(mover.moves.length, 1);
    assert.equal(mover.moves[0]!.at, '2026-11-30T10:00:01.000Z');
    sweep.stop();
  });

  it('a new process finds the change from the node marks alone, and one already moved is not moved again', async () => {
    const clock = new ManualClock(START);
    const nodes = new Nodes();
    nodes.add('spot-a', marks(new Date(START.getTime() + 20 * 60_000)));
    const first = new ScheduledChanges(nodes.context(clock), new Mover(nodes, clock));
    first.start();
    await clock.advance(5 * 60_000);
    first.stop();
    const mover = new Mover(nodes, clock);
    const second = new ScheduledChanges(nodes.context(clock), mover);
    await clock.advance(5 * 60_000);
    second.start();
    await clock.advance(0);
    assert.equal(mover.moves.length, 1, 'due at 10:10, the new process moves it at its first sweep');
    second.stop();
    const third = new Mover(nodes, clock);
    const sweep = new ScheduledChanges(nodes.context(clock), third);
    sweep.start();
    await clock.advance(60_000);
    assert.equal(third.moves.length, 0, 'the done mark holds across processes');
    sweep.stop();
  });

  it('a phase 1 that must be retried is tried again at the next sweep', async () => {
    const clock = new ManualClock(START);
    const nodes = new Nodes();
    nodes.add('spot-a', marks(START));
    const mover = new Mover(nodes, clock);
    mover.ack = false;
    const sweep = new ScheduledChanges(nodes.context(clock), mover);
    sweep.start();
    await clock.advance(0);
    mover.ack = true;
    await clock.advance(5_000);
    await clock.advance(60_000);
    assert.equal(mover.moves.length, 2);
    sweep.stop();
  });

  it('takes the seal back from a node still Ready past its deadline by survivor_grace', async () => {
    const clock = new ManualClock(START);
    const nodes = new Nodes();
    nodes.add('spot-a', marks(new Date(START.getTime() + 60_000)));
    const mover = new Mover(nodes, clock);
    const sweep = new ScheduledChanges(nodes.context(clock, { SCHEDULED_CHANGE_LEAD: '0', SURVIVOR_GRACE: '2m' }), mover);
    sweep.start();
    await clock.advance(60_000);
    assert.equal(mover.moves.length, 1);
    assert.equal(nodes.byName.get('spot-a')!.spec!.unschedulable, true);
    await clock.advance(115_000);
    assert.equal(nodes.byName.get('spot-a')!.spec!.unschedulable, true, 'within the grace: still sealed');
    await clock.advance(10_000);
    const after = nodes.byName.get('spot-a')!;
    assert.equal(after.spec!.unschedulable, undefined);
    assert.equal(after.spec!.taints, undefined);
    assert.deepEqual(Object.keys(after.metadata!.annotations!), [NODE_ANNOTATIONS.survivedAt]);
    assert.deepEqual(nodes.events, ['NodeSurvived spot-a']);
    sweep.stop();
  });

  it('a node sealed by a rebalance move that no warning followed gets its seal back, counted as not followed', async () => {
    const clock = new ManualClock(START);
    const nodes = new Nodes();
    nodes.add(
      'spot-a',
      {
        [NODE_ANNOTATIONS.rebalanceRecommendedAt]: START.toISOString(),
        [NODE_ANNOTATIONS.rebalanceMovedAt]: START.toISOString(),
        [NODE_ANNOTATIONS.sealed]: '{"taint":true,"label":false,"cordon":true}',
      },
      { unschedulable: true, taints: [{ key: 'spot-orchestrator/interrupted', effect: 'NoSchedule' }] },
    );
    const ctx = nodes.context(clock, { SURVIVOR_GRACE: '10m' });
    const sweep = new ScheduledChanges(ctx, new Mover(nodes, clock));
    sweep.start();
    await clock.advance(9 * 60_000);
    assert.equal(nodes.byName.get('spot-a')!.spec!.unschedulable, true);
    await clock.advance(60_000);
    const after = nodes.byName.get('spot-a')!;
    assert.equal(after.spec!.unschedulable, undefined);
    assert.equal(after.metadata!.annotations![NODE_ANNOTATIONS.rebalanceMovedAt], START.toISOString(), 'moved once: the mark stays');
    assert.equal(after.metadata!.annotations![NODE_ANNOTATIONS.rebalanceRecommendedAt], START.toISOString(), 'recovery still avoids it');
    const values = (await ctx.metrics.rebalanceMoves.get()).values.map((v) => [v.labels.followed_by_warning, v.value]);
    assert.deepEqual(values, [['false', 1]]);
    await clock.advance(60_000);
    assert.deepEqual(
      (await ctx.metrics.rebalanceMoves.get()).values.map((v) => v.value),
      [1],
      'counted once',
    );
    sweep.stop();
  });

  it('removes a rebalance recommendation mark rebalance_mark_ttl after it, so recovery may use the node again', async () => {
    const clock = new ManualClock(START);
    const nodes = new Nodes();
    nodes.add('spot-a', { [NODE_ANNOTATIONS.rebalanceRecommendedAt]: START.toISOString() });
    nodes.add('spot-b', { [NODE_ANNOTATIONS.rebalanceRecommendedAt]: new Date(START.getTime() + 20 * 60_000).toISOString() });
    const sweep = new ScheduledChanges(nodes.context(clock, { REBALANCE_MARK_TTL: '30m' }), new Mover(nodes, clock));
    sweep.start();
    await clock.advance(29 * 60_000);
    assert.ok(nodes.byName.get('spot-a')!.metadata!.annotations![NODE_ANNOTATIONS.rebalanceRecommendedAt], 'within the ttl: kept');
    await clock.advance(60_000);
    assert.equal(nodes.byName.get('spot-a')!.metadata!.annotations![NODE_ANNOTATIONS.rebalanceRecommendedAt], undefined);
    assert.ok(nodes.byName.get('spot-b')!.metadata!.annotations![NODE_ANNOTATIONS.rebalanceRecommendedAt], 'a later recommendation has its own ttl');
    assert.deepEqual(nodes.events, ['RebalanceMarkExpired spot-a']);
    await clock.advance(20 * 60_000);
    assert.equal(nodes.byName.get('spot-b')!.metadata!.annotations![NODE_ANNOTATIONS.rebalanceRecommendedAt], undefined);
    assert.deepEqual(nodes.events, ['RebalanceMarkExpired spot-a', 'RebalanceMarkExpired spot-b']);
    sweep.stop();
  });
});
