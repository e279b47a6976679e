// From a parsed event to action, against an in-memory cluster: which nodes are marked and how, which
// Deployments get phase 1 (once each, bounded), and when the message may be deleted. Phase 1 itself
// is a fake MigrationFlow here; the real one runs end to end in test/e2e/migration.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CoreV1Api, V1Deployment, V1Node, V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import type { DeploymentOutcome } from '../alerts/alert.js';
import { ManualClock } from '../clock-test-support.js';
import { loadConfig } from '../config/load.js';
import {
  buildCapacityReservationInterruption,
  buildRebalanceRecommendation,
  buildScheduledChange,
  buildSpotInterruption,
  buildStateChange,
} from '../events/build.js';
import type { InstanceState } from '../events/kinds/state-change.js';
import { type ParsedEvent, parseMessage } from '../events/parse.js';
import type { ClusterView } from '../kube/cluster-view.js';
import { createMetrics } from '../metrics/metrics.js';
import type { ControllerContext } from '../moves/context.js';
import { NODE_ANNOTATIONS } from '../state/annotations.js';
import { InterruptionHandler } from './interruption-handler.js';
import type { MigrationFlow, MigrationRequest, PhaseOneResult } from './migration-flow.js';

const WARNED_AT = new Date('2026-11-30T10:00:00Z');

function parsed(body: string): ParsedEvent {
  const result = parseMessage(body);
  assert.ok(result.ok, JSON.stringify(result));
  return result.event;
}

const spotWarning = (instanceId: string) => parsed(buildSpotInterruption({ instanceId, time: WARNED_AT, region: 'eu-west-1', account: '210987654321' }));

/** A node named od-… is on-demand capacity, any other is spot (labelled as an EKS managed node group labels it). */
const node = (name: string, instanceId: string): V1Node => ({
  metadata: { name, uid: `uid-${name}`, resourceVersion: '7', labels: { 'eks.amazonaws.com/capacityType': name.startsWith('od-') ? 'ON_DEMAND' : 'SPOT' } },
  spec: { providerID: `aws:///eu-west-1a/${instanceId}` },
});

const deployment = (name: string, optedIn: boolean): V1Deployment => ({
  metadata: { namespace: 'prod', name, annotations: optedIn ? { 'spot-orchestrator/enabled': 'true' } : {} },
});

/** Nodes by instance, pods by node, and the Deployment of each pod. */
class FakeCluster {
  readonly nodes = new Map<string, V1Node>();
  readonly podsByNode = new Map<string, { pod: V1Pod; owner: V1Deployment }[]>();
  readonly nodePatches: { name: string; body: unknown }[] = [];
  readonly events: string[] = [];
  readonly served = new Set<string>();

  readonly metrics = createMetrics();

  /** Pods with their readiness and admitted priority, in the order given. */
  placePods(nodeName: string, instanceId: string, pods: { owner: V1Deployment; ready: boolean; priority?: number }[]): void {
    this.nodes.set(instanceId, node(nodeName, instanceId));
    this.podsByNode.set(
      nodeName,
      pods.map((p, i) => ({
        pod: {
          metadata: { name: `${p.owner.metadata!.name}-${nodeName}-${i}`, namespace: 'prod' },
          spec: { containers: [], priority: p.priority },
          status: { conditions: [{ type: 'Ready', status: p.ready ? 'True' : 'False' }] },
        },
        owner: p.owner,
      })),
    );
  }

  place(nodeName: string, instanceId: string, ...owners: V1Deployment[]): void {
    this.nodes.set(instanceId, node(nodeName, instanceId));
    this.podsByNode.set(
      nodeName,
      owners.map((owner, i) => ({ pod: { metadata: { name: `${owner.metadata!.name}-${nodeName}-${i}`, namespace: 'prod' } }, owner })),
    );
  }

  context(env: Record<string, string> = {}): ControllerContext {
    const config = loadConfig({ env: { SQS_QUEUE_URL: 'http://localhost:9324/000000000000/q', MODE: 'namespace', NAMESPACE: 'prod', ...env } });
    const owners = new Map<V1Pod, V1Deployment>();
    for (const placed of this.podsByNode.values()) for (const p of placed) owners.set(p.pod, p.owner);
    const view = {
      nodeForInstance: (id: string) => this.nodes.get(id),
      podsOnNode: (name: string) => (this.podsByNode.get(name) ?? []).map((p) => p.pod),
      deploymentOfPod: (pod: V1Pod) => owners.get(pod),
      servicesFor: (d: V1Deployment) => (this.served.has(d.metadata!.name!) ? [{ metadata: { name: d.metadata!.name } }] : []),
      inScope: (ns: string) => ns === 'prod',
      listNodes: () => [...this.nodes.values()],
    };
    const core = {
      patchNode: async (req: { name: string; body: unknown }) => {
        this.nodePatches.push(req);
        return {};
      },
    };
    return {
      config,
      log: pino({ level: 'silent' }),
      clock: new ManualClock(WARNED_AT),
      view: view as unknown as ClusterView,
      core: core as unknown as CoreV1Api,
      recorder: { record: (target: { name: string }, _type: string, reason: string) => void this.events.push(`${reason} ${target.name}`) },
      alerter: { notify() {}, flush: async () => {} },
      metrics: this.metrics,
    } as unknown as ControllerContext;
  }
}

/** A MigrationFlow whose phase 1 ends when the test says, counting how many run at once. */
class FakeFlow {
  readonly started: { name: string; request: MigrationRequest }[] = [];
  readonly releases: (() => void)[] = [];
  running = 0;
  maxRunning = 0;
  result: (name: string) => Omit<PhaseOneResult, 'key'> = () => ({
    outcome: { result: 'in_progress' },
    retry: false,
    settled: Promise.resolve<DeploymentOutcome>({ result: 'migrated', durationMs: 1 }),
  });
  hold = false;
  /** Moves in flight by name: a second warning's phase 1 for one of them joins it, as MigrationFlow's does. */
  private readonly inFlight = new Map<string, Promise<PhaseOneResult>>();

  begin(d: V1Deployment, request: MigrationRequest): { joined: boolean; result: Promise<PhaseOneResult> } {
    const name = d.metadata!.name!;
    const current = this.inFlight.get(name);
    if (current) return { joined: true, result: current.then((r) => ({ ...r, joined: true })) };
    this.started.push({ name, request });
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const result = new Promise<PhaseOneResult>((resolve) => {
      const done = () => {
        this.running--;
        this.inFlight.delete(name);
        resolve({ key: `prod/${name}`, ...this.result(name) });
      };
      if (this.hold) this.releases.push(done);
      else done();
    });
    if (this.hold) this.inFlight.set(name, result);
    return { joined: false, result };
  }
}

const handlerFor = (cluster: FakeCluster, flow: FakeFlow, env: Record<string, string> = {}) =>
  new InterruptionHandler(cluster.context(env), flow as unknown as MigrationFlow);

describe('InterruptionHandler', () => {
  it('a spot warning runs phase 1 once for each opted-in Deployment on the node, then seals the node off', async () => {
    const cluster = new FakeCluster();
    const api = deployment('api', true);
    cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', api, api, deployment('batch', false), deployment('web', true));
    const flow = new FakeFlow();
    const result = await handlerFor(cluster, flow).handle(spotWarning('i-0a1b2c3d4e5f60718'));
    assert.equal(result.ack, true);
    assert.equal(result.outcome, 'migrated');
    assert.deepEqual(flow.started.map((s) => s.name).sort(), ['api', 'web'], 'once each, opted-in only');
    const request = flow.started[0]!.request;
    assert.deepEqual(request.instanceIds, ['i-0a1b2c3d4e5f60718']);
    assert.equal(request.reason, 'spot-interruption');
    assert.deepEqual(request.deadline, new Date(WARNED_AT.getTime() + 120_000));
    assert.deepEqual(cluster.nodePatches, [
      {
        name: 'spot-a',
        body: {
          metadata: {
            resourceVersion: '7',
            annotations: {
              [NODE_ANNOTATIONS.interruptedAt]: WARNED_AT.toISOString(),
              [NODE_ANNOTATIONS.terminationDeadline]: request.deadline!.toISOString(),
              [NODE_ANNOTATIONS.sealed]: '{"taint":true,"label":true,"cordon":true}',
            },
            labels: { 'node.kubernetes.io/exclude-from-external-load-balancers': 'true' },
          },
          spec: { unschedulable: true, taints: [{ key: 'spot-orchestrator/interrupted', value: 'true', effect: 'NoSchedule', timeAdded: WARNED_AT }] },
        },
      },
    ]);
    assert.deepEqual(cluster.events, ['SpotInterruption spot-a']);
    await result.settled;
  });

  it('a warning for an instance outside this cluster changes nothing and may be deleted', async () => {
    const cluster = new FakeCluster();
    cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
    const flow = new FakeFlow();
    const result = await handlerFor(cluster, flow).handle(spotWarning('i-0ffffffffffffffff'));
    assert.deepEqual({ ack: result.ack, outcome: result.outcome }, { ack: true, outcome: 'foreign' });
    assert.equal(flow.started.length, 0);
    assert.equal(cluster.nodePatches.length, 0);
  });

  it('every kind that names only instances outside this cluster is foreign, a state change in any state too', async () => {
    const cluster = new FakeCluster();
    cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
    const flow = new FakeFlow();
    const handler = handlerFor(cluster, flow);
    const base = { instanceId: 'i-0ffffffffffffffff', time: WARNED_AT, region: 'eu-west-1', account: '210987654321' };
    const events = {
      spot: buildSpotInterruption(base),
      capacityReservation: buildCapacityReservationInterruption(base),
      rebalance: buildRebalanceRecommendation(base),
      scheduledChange: buildScheduledChange({ ...base, instanceIds: [base.instanceId], startTime: new Date(WARNED_AT.getTime() + 86_400_000) }),
      // A state this controller ignores is still another cluster's business in a shared queue.
      running: buildStateChange({ ...base, state: 'running' }),
      terminated: buildStateChange({ ...base, state: 'terminated' }),
    };
    const outcomes: Record<string, string> = {};
    for (const [name, body] of Object.entries(events)) outcomes[name] = (await handler.handle(parsed(body))).outcome;
    assert.deepEqual(outcomes, {
      spot: 'foreign',
      capacityReservation: 'foreign',
      rebalance: 'foreign',
      scheduledChange: 'foreign',
      running: 'foreign',
      terminated: 'foreign',
    });
    assert.equal(flow.started.length, 0);
    assert.equal(cluster.nodePatches.length, 0);
    assert.deepEqual(cluster.events, []);
  });

  it('keeps the message when a phase 1 failed for a transient reason, so the warning comes back', async () => {
    const cluster = new FakeCluster();
    cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', deployment('api', true), deployment('web', true));
    const flow = new FakeFlow();
    flow.result = (name) =>
      name === 'web'
        ? { outcome: { result: 'failed', reason: 'API server away', rolledBack: false }, retry: true }
        : { outcome: { result: 'in_progress' }, retry: false };
    const result = await handlerFor(cluster, flow).handle(spotWarning('i-0a1b2c3d4e5f60718'));
    assert.deepEqual({ ack: result.ack, outcome: result.outcome }, { ack: false, outcome: 'partial' });
  });

  it('runs at most max_concurrent_patches phase 1s at once', async () => {
    const cluster = new FakeCluster();
    cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', ...['a', 'b', 'c', 'd', 'e'].map((n) => deployment(n, true)));
    const flow = new FakeFlow();
    flow.hold = true;
    const handling = handlerFor(cluster, flow, { MAX_CONCURRENT_PATCHES: '2' }).handle(spotWarning('i-0a1b2c3d4e5f60718'));
    for (let released = 0; released < 5; released++) {
      for (let spins = 0; flow.releases.length === 0; spins++) {
        assert.ok(spins < 1000, 'phase 1 never started');
        await new Promise((r) => setImmediate(r));
      }
      flow.releases.shift()!();
    }
    const result = await handling;
    assert.equal(result.ack, true);
    assert.equal(flow.started.length, 5);
    assert.equal(flow.maxRunning, 2);
  });

  it('a warning that joins a move in flight gives its slot back, so the next patch is not kept waiting', async () => {
    const cluster = new FakeCluster();
    const x = deployment('x', true);
    cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', x);
    cluster.place('spot-b', 'i-0b1b2c3d4e5f60718', x, deployment('z', true));
    const flow = new FakeFlow();
    flow.hold = true;
    const handler = handlerFor(cluster, flow, { MAX_CONCURRENT_PATCHES: '2' });
    const first = handler.handle(spotWarning('i-0a1b2c3d4e5f60718'));
    const spin = async (until: () => boolean, what: string) => {
      for (let spins = 0; !until(); spins++) {
        assert.ok(spins < 1000, what);
        await new Promise((r) => setImmediate(r));
      }
    };
    await spin(() => flow.started.length === 1, "x's patch never started");
    // x's patch holds one slot; the second warning's x joins it, and z takes the other slot.
    const second = handler.handle(spotWarning('i-0b1b2c3d4e5f60718'));
    await spin(() => flow.started.length === 2, 'z waited for a slot that the joined x held');
    assert.deepEqual(
      flow.started.map((s) => s.name),
      ['x', 'z'],
    );
    while (flow.releases.length > 0) flow.releases.shift()!();
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual([a.outcome, b.outcome], ['migrated', 'migrated']);
    assert.equal(flow.maxRunning, 2);
  });

  it('a spot warning for a node that is not spot capacity is reported on the node, counted, and not acted on', async () => {
    const cluster = new FakeCluster();
    cluster.place('od-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
    const flow = new FakeFlow();
    const result = await handlerFor(cluster, flow).handle(spotWarning('i-0a1b2c3d4e5f60718'));
    assert.deepEqual({ ack: result.ack, outcome: result.outcome }, { ack: true, outcome: 'not_spot' });
    assert.equal(flow.started.length, 0, 'nothing moved');
    assert.deepEqual(cluster.nodePatches, [], 'the node is neither marked nor sealed');
    assert.deepEqual(cluster.events, ['NotSpotCapacity od-a']);
    const dropped = (await cluster.metrics.eventsDropped.get()).values.find(
      (v) => v.labels.kind === 'spot_interrupted' && v.labels.reason === 'not_spot_capacity',
    );
    assert.equal(dropped?.value, 1);
  });

  it('a spot warning finds a spot node by any of the three label conventions', async () => {
    const conventions: Record<string, string>[] = [
      { 'compute-type': 'spot' },
      { 'karpenter.sh/capacity-type': 'spot' },
      { 'eks.amazonaws.com/capacityType': 'SPOT' },
    ];
    for (const labels of conventions) {
      const cluster = new FakeCluster();
      cluster.place('od-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
      cluster.nodes.get('i-0a1b2c3d4e5f60718')!.metadata!.labels = labels;
      const flow = new FakeFlow();
      const result = await handlerFor(cluster, flow).handle(spotWarning('i-0a1b2c3d4e5f60718'));
      assert.equal(result.outcome, 'migrated', JSON.stringify(labels));
      await result.settled;
    }
  });

  it('a rebalance recommendation for a node that is not spot capacity marks nothing', async () => {
    const cluster = new FakeCluster();
    cluster.place('od-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
    const flow = new FakeFlow();
    const event = parsed(buildRebalanceRecommendation({ instanceId: 'i-0a1b2c3d4e5f60718', time: WARNED_AT, region: 'eu-west-1', account: '210987654321' }));
    const result = await handlerFor(cluster, flow, { MIGRATION_ON_REBALANCE: 'true' }).handle(event);
    assert.deepEqual({ ack: result.ack, outcome: result.outcome }, { ack: true, outcome: 'not_spot' });
    assert.deepEqual(cluster.nodePatches, []);
    assert.equal(flow.started.length, 0);
    assert.deepEqual(cluster.events, ['NotSpotCapacity od-a']);
  });

  it('a rebalance recommendation marks the node without cordoning it and moves nothing', async () => {
    const cluster = new FakeCluster();
    cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
    const flow = new FakeFlow();
    const event = parsed(buildRebalanceRecommendation({ instanceId: 'i-0a1b2c3d4e5f60718', time: WARNED_AT, region: 'eu-west-1', account: '210987654321' }));
    const result = await handlerFor(cluster, flow).handle(event);
    assert.deepEqual({ ack: result.ack, outcome: result.outcome }, { ack: true, outcome: 'noted' });
    assert.equal(flow.started.length, 0);
    assert.deepEqual(cluster.nodePatches, [
      { name: 'spot-a', body: { metadata: { annotations: { [NODE_ANNOTATIONS.rebalanceRecommendedAt]: WARNED_AT.toISOString() } } } },
    ]);
    assert.deepEqual(cluster.events, ['RebalanceRecommended spot-a']);
  });

  describe('moving on a rebalance recommendation (opt-in)', () => {
    const recommendation = (instanceId: string, time = WARNED_AT) =>
      parsed(buildRebalanceRecommendation({ instanceId, time, region: 'eu-west-1', account: '210987654321' }));

    it('with migration.on_rebalance, moves the managed Deployments at once, seals the node and notes the move', async () => {
      const cluster = new FakeCluster();
      cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', deployment('api', true), deployment('batch', false));
      const flow = new FakeFlow();
      const result = await handlerFor(cluster, flow, { MIGRATION_ON_REBALANCE: 'true' }).handle(recommendation('i-0a1b2c3d4e5f60718'));
      assert.deepEqual({ ack: result.ack, outcome: result.outcome }, { ack: true, outcome: 'migrated' });
      assert.deepEqual(
        flow.started.map((s) => s.name),
        ['api'],
      );
      const seal = cluster.nodePatches[1]!.body as { metadata: { annotations: Record<string, string> }; spec: { taints: unknown[] } };
      assert.equal(seal.metadata.annotations[NODE_ANNOTATIONS.rebalanceMovedAt], WARNED_AT.toISOString());
      assert.equal(seal.metadata.annotations[NODE_ANNOTATIONS.interruptedAt], undefined, 'not interrupted: only recommended');
      assert.equal(seal.spec.taints.length, 1);
      assert.deepEqual(cluster.events, ['RebalanceRecommended spot-a', 'RebalanceMove spot-a']);
    });

    it('per Deployment: the annotation moves one when the global switch is off, and keeps one when it is on', async () => {
      const cluster = new FakeCluster();
      const eager = {
        metadata: { namespace: 'prod', name: 'eager', annotations: { 'spot-orchestrator/enabled': 'true', 'spot-orchestrator/move-on-rebalance': 'true' } },
      };
      const calm = {
        metadata: { namespace: 'prod', name: 'calm', annotations: { 'spot-orchestrator/enabled': 'true', 'spot-orchestrator/move-on-rebalance': 'false' } },
      };
      cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', eager, calm, deployment('api', true));
      const off = new FakeFlow();
      await handlerFor(cluster, off).handle(recommendation('i-0a1b2c3d4e5f60718'));
      assert.deepEqual(
        off.started.map((s) => s.name),
        ['eager'],
      );
      const on = new FakeFlow();
      await handlerFor(cluster, on, { MIGRATION_ON_REBALANCE: 'true' }).handle(recommendation('i-0a1b2c3d4e5f60718'));
      assert.deepEqual(on.started.map((s) => s.name).sort(), ['api', 'eager']);
    });

    it("a node's recommendation moves its Deployments once", async () => {
      const cluster = new FakeCluster();
      cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
      cluster.nodes.get('i-0a1b2c3d4e5f60718')!.metadata!.annotations = { [NODE_ANNOTATIONS.rebalanceMovedAt]: '2026-11-30T09:00:00.000Z' };
      const flow = new FakeFlow();
      const result = await handlerFor(cluster, flow, { MIGRATION_ON_REBALANCE: 'true' }).handle(recommendation('i-0a1b2c3d4e5f60718'));
      assert.equal(result.outcome, 'noted');
      assert.equal(flow.started.length, 0);
    });

    it('counts a rebalance move that a warning followed, at the first warning only', async () => {
      const cluster = new FakeCluster();
      cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
      const n = cluster.nodes.get('i-0a1b2c3d4e5f60718')!;
      n.metadata!.annotations = { [NODE_ANNOTATIONS.rebalanceMovedAt]: '2026-11-30T09:58:00.000Z' };
      const handler = handlerFor(cluster, new FakeFlow());
      await handler.handle(spotWarning('i-0a1b2c3d4e5f60718'));
      n.metadata!.annotations[NODE_ANNOTATIONS.interruptedAt] = WARNED_AT.toISOString();
      await handler.handle(spotWarning('i-0a1b2c3d4e5f60718'));
      const values = (await cluster.metrics.rebalanceMoves.get()).values.map((v) => [v.labels.followed_by_warning, v.value]);
      assert.deepEqual(values, [['true', 1]]);
    });
  });

  it('an instance going away without a warning is cordoned and marked; one starting up is ignored', async () => {
    const cluster = new FakeCluster();
    cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
    const flow = new FakeFlow();
    const handler = handlerFor(cluster, flow);
    const change = (state: InstanceState) =>
      parsed(buildStateChange({ instanceId: 'i-0a1b2c3d4e5f60718', state, time: WARNED_AT, region: 'eu-west-1', account: '210987654321' }));
    assert.equal((await handler.handle(change('running'))).outcome, 'nothing_to_do');
    assert.equal(cluster.nodePatches.length, 0);
    assert.equal((await handler.handle(change('shutting-down'))).outcome, 'noted');
    assert.equal(cluster.nodePatches.length, 1);
    const { body } = cluster.nodePatches[0] as {
      body: { metadata: { annotations: Record<string, string> }; spec: { unschedulable: boolean; taints: unknown[] } };
    };
    assert.equal(body.metadata.annotations[NODE_ANNOTATIONS.interruptedAt], WARNED_AT.toISOString());
    assert.equal(body.spec.unschedulable, true);
    assert.equal(body.spec.taints.length, 1, 'sealed off like a warned node');
    assert.equal(flow.started.length, 0, 'the warning, not the state change, moves Deployments');
  });

  it('a capacity-reservation warning (on-demand capacity) gets the same phase 1, with its own deadline, and the node is sealed off', async () => {
    const cluster = new FakeCluster();
    cluster.place('od-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
    const flow = new FakeFlow();
    const warnedAt = new Date(WARNED_AT.getTime() + 5_000);
    const event = parsed(
      buildCapacityReservationInterruption({ instanceId: 'i-0a1b2c3d4e5f60718', time: warnedAt, region: 'eu-west-1', account: '210987654321' }),
    );
    const result = await handlerFor(cluster, flow).handle(event);
    assert.deepEqual({ ack: result.ack, outcome: result.outcome }, { ack: true, outcome: 'migrated' });
    assert.deepEqual(
      flow.started.map((s) => [s.name, s.request.deadline?.toISOString()]),
      [['api', new Date(warnedAt.getTime() + 120_000).toISOString()]],
    );
    assert.equal(cluster.nodePatches.length, 1);
    assert.deepEqual(cluster.events, ['CapacityReservationInterruption od-a']);
  });

  it('a scheduled change only marks its nodes with startTime and the event, and may be deleted then', async () => {
    const cluster = new FakeCluster();
    cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
    cluster.place('spot-b', 'i-0b1b2c3d4e5f60718', deployment('web', true));
    const flow = new FakeFlow();
    let noted = 0;
    const handler = new InterruptionHandler(cluster.context(), flow as unknown as MigrationFlow, () => noted++);
    const startTime = new Date(WARNED_AT.getTime() + 3600_000);
    const event = parsed(
      buildScheduledChange({
        id: 'health-1',
        instanceIds: ['i-0a1b2c3d4e5f60718', 'i-0b1b2c3d4e5f60718', 'i-0ffffffffffffffff'],
        startTime,
        time: WARNED_AT,
        region: 'eu-west-1',
        account: '210987654321',
      }),
    );
    const result = await handler.handle(event);
    assert.deepEqual({ ack: result.ack, outcome: result.outcome }, { ack: true, outcome: 'noted' });
    assert.equal(flow.started.length, 0, 'nothing moves before the lead time');
    assert.equal(noted, 1, 'the sweep is told');
    const marks = { [NODE_ANNOTATIONS.scheduledChangeAt]: startTime.toISOString(), [NODE_ANNOTATIONS.scheduledChangeEvent]: 'health-1' };
    assert.deepEqual(cluster.nodePatches, [
      { name: 'spot-a', body: { metadata: { annotations: marks } } },
      { name: 'spot-b', body: { metadata: { annotations: marks } } },
    ]);
    assert.deepEqual(cluster.events, ['ScheduledChange spot-a', 'ScheduledChange spot-b']);
  });

  it('a scheduled change stays in the queue when a node could not be marked', async () => {
    const cluster = new FakeCluster();
    cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
    const ctx = cluster.context();
    (ctx.core as unknown as { patchNode: () => Promise<never> }).patchNode = () => Promise.reject(Object.assign(new Error('forbidden'), { code: 403 }));
    const handler = new InterruptionHandler(ctx, new FakeFlow() as unknown as MigrationFlow);
    const event = parsed(
      buildScheduledChange({ instanceIds: ['i-0a1b2c3d4e5f60718'], startTime: WARNED_AT, time: WARNED_AT, region: 'eu-west-1', account: '210987654321' }),
    );
    assert.equal((await handler.handle(event)).ack, false);
  });

  it('moving a due scheduled change: phase 1 with startTime as the deadline, and the done mark only after it', async () => {
    const cluster = new FakeCluster();
    cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
    const flow = new FakeFlow();
    const handler = handlerFor(cluster, flow);
    const startTime = new Date(WARNED_AT.getTime() + 600_000);
    const result = await handler.moveScheduledChange({
      eventId: 'health-1',
      startTime,
      nodes: [{ node: cluster.nodes.get('i-0a1b2c3d4e5f60718')!, instanceId: 'i-0a1b2c3d4e5f60718' }],
    });
    assert.deepEqual({ ack: result.ack, outcome: result.outcome }, { ack: true, outcome: 'migrated' });
    assert.deepEqual(flow.started[0]!.request, { eventId: 'health-1', instanceIds: ['i-0a1b2c3d4e5f60718'], reason: 'spot-interruption', deadline: startTime });
    const annotations = (cluster.nodePatches[0]!.body as { metadata: { annotations: Record<string, string> } }).metadata.annotations;
    assert.deepEqual(JSON.parse(annotations[NODE_ANNOTATIONS.scheduledChangeMoved]!), { prod: startTime.toISOString() }, 'moved, for this scope');
    assert.equal(annotations[NODE_ANNOTATIONS.terminationDeadline], startTime.toISOString());
    assert.deepEqual(cluster.events, ['ScheduledChangeDue spot-a']);

    const retrying = new FakeCluster();
    retrying.place('spot-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
    const failing = new FakeFlow();
    failing.result = () => ({ outcome: { result: 'failed', reason: 'API server away', rolledBack: false }, retry: true });
    const again = await handlerFor(retrying, failing).moveScheduledChange({
      eventId: 'health-1',
      startTime,
      nodes: [{ node: retrying.nodes.get('i-0a1b2c3d4e5f60718')!, instanceId: 'i-0a1b2c3d4e5f60718' }],
    });
    assert.equal(again.ack, false);
    const marks = (retrying.nodePatches[0]!.body as { metadata: { annotations: Record<string, string> } }).metadata.annotations;
    assert.equal(marks[NODE_ANNOTATIONS.scheduledChangeMoved], undefined, 'no done mark: the next sweep tries again');
  });

  it('in dry run, marks no node', async () => {
    const cluster = new FakeCluster();
    cluster.place('spot-a', 'i-0a1b2c3d4e5f60718', deployment('api', true));
    const flow = new FakeFlow();
    await handlerFor(cluster, flow, { DRY_RUN: 'true' }).handle(spotWarning('i-0a1b2c3d4e5f60718'));
    assert.equal(cluster.nodePatches.length, 0);
    assert.equal(flow.started.length, 1, 'phase 1 runs; the patcher is what stays dry');
  });
});

describe('phase 1 triage under the Fargate launch throttle', () => {
  const sized = (name: string, replicas: number, annotations: Record<string, string> = {}): V1Deployment => ({
    metadata: { namespace: 'prod', name, annotations: { 'spot-orchestrator/enabled': 'true', ...annotations } },
    spec: { replicas, selector: {}, template: {} },
    status: { readyReplicas: replicas },
  });
  const many = sized('many', 4);
  const pair = sized('pair', 2);
  const served = sized('served', 3);
  const important = sized('important', 3);
  const single = sized('single', 1, { 'spot-orchestrator/priority': '5' });
  function cluster(): FakeCluster {
    const c = new FakeCluster();
    c.served.add('served');
    c.placePods('spot-a', 'i-0a1b2c3d4e5f60718', [
      { owner: many, ready: true },
      { owner: pair, ready: true },
      { owner: served, ready: true },
      { owner: important, ready: true, priority: 1000 },
      { owner: pair, ready: true },
      { owner: single, ready: true },
    ]);
    return c;
  }

  it('patches what would hit zero first, then what is behind a Service, then by priority, then fewer replicas first', async () => {
    const flow = new FakeFlow();
    await handlerFor(cluster(), flow, { MAX_CONCURRENT_PATCHES: '1' }).handle(spotWarning('i-0a1b2c3d4e5f60718'));
    assert.deepEqual(
      flow.started.map((s) => s.name),
      ['single', 'pair', 'served', 'important', 'many'],
    );
  });

  it('with triage off, patches in the order the Deployments were found', async () => {
    const flow = new FakeFlow();
    await handlerFor(cluster(), flow, { MAX_CONCURRENT_PATCHES: '1', MIGRATION_TRIAGE: 'false' }).handle(spotWarning('i-0a1b2c3d4e5f60718'));
    assert.deepEqual(
      flow.started.map((s) => s.name),
      ['many', 'pair', 'served', 'important', 'single'],
    );
  });

  it('forecasts which Deployments the launch throttle makes late, and exports it', async () => {
    const c = cluster();
    // Launch order single(1) pair(2) served(3) important(3) many(4): tokens at 0, 1, 4, 7 and 11 s
    // for each one's last pod; Ready 115 s later; the instance dies at 120 s.
    const env = { FARGATE_LAUNCH_BURST: '2', FARGATE_LAUNCH_RATE: '1/s', FARGATE_START_ESTIMATE: '115s' };
    await handlerFor(c, new FakeFlow(), env).handle(spotWarning('i-0a1b2c3d4e5f60718'));
    const values = Object.fromEntries((await c.metrics.fargateForecast.get()).values.map((v) => [v.labels.what, v.value]));
    assert.deepEqual(values, { launches_needed: 13, launches_in_time: 7, deployments_whole: 3, deployments_late: 2 });
  });
});

describe('phase 1 across warnings handled at once', () => {
  it('shares one queue: a Deployment that would hit zero in the second warning goes before the first warning’s others', async () => {
    const c = new FakeCluster();
    const owner = (name: string, replicas: number): V1Deployment => ({
      metadata: { namespace: 'prod', name, annotations: { 'spot-orchestrator/enabled': 'true' } },
      spec: { replicas, selector: {}, template: {} },
      status: { readyReplicas: replicas },
    });
    // First node: three Deployments with most replicas elsewhere. Second node: one with all its replicas there.
    c.placePods(
      'spot-a',
      'i-0a1b2c3d4e5f60718',
      ['a1', 'a2', 'a3'].map((n) => ({ owner: owner(n, 4), ready: true })),
    );
    const whole = owner('whole', 1);
    c.placePods('spot-b', 'i-0b1b2c3d4e5f60718', [{ owner: whole, ready: true }]);
    const flow = new FakeFlow();
    flow.hold = true;
    const handler = handlerFor(c, flow, { MAX_CONCURRENT_PATCHES: '1' });
    const first = handler.handle(spotWarning('i-0a1b2c3d4e5f60718'));
    const second = handler.handle(spotWarning('i-0b1b2c3d4e5f60718'));
    for (let released = 0; released < 4; released++) {
      for (let spins = 0; flow.releases.length === 0; spins++) {
        assert.ok(spins < 1000, 'phase 1 never started');
        await new Promise((r) => setImmediate(r));
      }
      flow.releases.shift()!();
    }
    await Promise.all([first, second]);
    assert.deepEqual(
      flow.started.map((s) => s.name),
      ['a1', 'whole', 'a2', 'a3'],
    );
  });

  it('counts Ready replicas on every warned node: one spread over two warned nodes would hit zero', async () => {
    const c = new FakeCluster();
    const owner = (name: string, replicas: number, ready = replicas): V1Deployment => ({
      metadata: { namespace: 'prod', name, annotations: { 'spot-orchestrator/enabled': 'true' } },
      spec: { replicas, selector: {}, template: {} },
      status: { readyReplicas: ready },
    });
    // spread: two replicas, one Ready on each warned node. light: one replica, its pod on spot-b not
    // Ready and a Ready one elsewhere, so it keeps serving; with fewer replicas it goes first unless
    // spread is known to lose everything.
    const spread = owner('spread', 2);
    c.placePods('spot-a', 'i-0a1b2c3d4e5f60718', [{ owner: spread, ready: true }]);
    c.placePods('spot-b', 'i-0b1b2c3d4e5f60718', [
      { owner: owner('light', 1), ready: false },
      { owner: spread, ready: true },
    ]);
    const flow = new FakeFlow();
    const handler = handlerFor(c, flow, { MAX_CONCURRENT_PATCHES: '1' });
    await handler.handle(spotWarning('i-0a1b2c3d4e5f60718'));
    await handler.handle(spotWarning('i-0b1b2c3d4e5f60718'));
    assert.deepEqual(
      flow.started.map((s) => s.name),
      ['spread', 'spread', 'light'],
      "the second warning ranks spread first: with the first warning's node, all its Ready replicas are doomed",
    );
  });
});

describe('phase 1 after a restart', () => {
  it('counts Ready replicas on nodes an earlier process sealed (their termination deadline still ahead), not on those past it', async () => {
    const owner = (name: string, replicas: number): V1Deployment => ({
      metadata: { namespace: 'prod', name, annotations: { 'spot-orchestrator/enabled': 'true' } },
      spec: { replicas, selector: {}, template: {} },
      status: { readyReplicas: replicas },
    });
    for (const [deadline, expected] of [
      [new Date(WARNED_AT.getTime() + 60_000), ['spread', 'light']],
      [new Date(WARNED_AT.getTime() - 1), ['light', 'spread']],
    ] as const) {
      const c = new FakeCluster();
      const spread = owner('spread', 2);
      // spread: one Ready replica on a node warned before the restart, one on the node warned now.
      c.placePods('spot-a', 'i-0a1b2c3d4e5f60718', [{ owner: spread, ready: true }]);
      c.nodes.get('i-0a1b2c3d4e5f60718')!.metadata!.annotations = { 'spot-orchestrator/termination-deadline': deadline.toISOString() };
      // light: one replica, with a Ready pod on a spare node; it goes first unless spread is known to lose everything.
      const light = owner('light', 1);
      c.placePods('spot-b', 'i-0b1b2c3d4e5f60718', [
        { owner: light, ready: false },
        { owner: spread, ready: true },
      ]);
      const flow = new FakeFlow();
      await handlerFor(c, flow, { MAX_CONCURRENT_PATCHES: '1' }).handle(spotWarning('i-0b1b2c3d4e5f60718'));
      assert.deepEqual(
        flow.started.map((s) => s.name),
        expected,
        `termination deadline ${deadline.toISOString()}, warned at ${WARNED_AT.toISOString()}`,
      );
    }
  });
});

describe('the launch forecast of warnings arriving together', () => {
  it('covers every warning of the wave, so one bucket is not counted twice', async () => {
    const c = new FakeCluster();
    const owner = (name: string, replicas: number): V1Deployment => ({
      metadata: { namespace: 'prod', name, annotations: { 'spot-orchestrator/enabled': 'true' } },
      spec: { replicas, selector: {}, template: {} },
      status: { readyReplicas: replicas },
    });
    c.placePods('spot-a', 'i-0a1b2c3d4e5f60718', [{ owner: owner('a', 3), ready: true }]);
    c.placePods('spot-b', 'i-0b1b2c3d4e5f60718', [{ owner: owner('b', 3), ready: true }]);
    // Three launches at once, then one every 100 s: one Deployment of three replicas fits, not two.
    const handler = handlerFor(c, new FakeFlow(), { FARGATE_LAUNCH_BURST: '3', FARGATE_LAUNCH_RATE: '0.01/s', FARGATE_START_ESTIMATE: '10s' });
    const forecast = async () => Object.fromEntries((await c.metrics.fargateForecast.get()).values.map((v) => [v.labels.what, v.value]));
    await handler.handle(spotWarning('i-0a1b2c3d4e5f60718'));
    assert.deepEqual(await forecast(), { launches_needed: 3, launches_in_time: 3, deployments_whole: 1, deployments_late: 0 });
    await handler.handle(spotWarning('i-0b1b2c3d4e5f60718'));
    assert.deepEqual(await forecast(), { launches_needed: 6, launches_in_time: 4, deployments_whole: 1, deployments_late: 1 }, 'both warnings, one bucket');
  });
});
