// Event trust on the ground (real control plane, moto SQS and EventBridge): events the controller must
// not act on change nothing in the cluster and are counted. A warning older than aws.max_event_age
// (a dead-letter queue redriven late, through EventBridge as well as straight into the queue), one of
// another account and one of another Region are dropped; a spot warning and a rebalance
// recommendation for an on-demand node are reported and not acted on, while a Capacity Reservation
// warning for that node (on-demand capacity by nature) is. A fresh spot warning for the spot node,
// last, shows the same controller acting on what it trusts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { V1Node } from '@kubernetes/client-node';
import { buildSpotInterruption } from '../../src/events/build.js';
import type { DropReason } from '../../src/metrics/metrics.js';
import { publishEc2Events, queueEmpty } from '../../testground/src/aws.js';
import { awsClientConfig } from '../../testground/src/ground.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { instanceIdOf } from '../../testground/src/nodes.js';
import { startController, type TestController } from '../support/controller.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, isPodReady, podsOf, testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const sqs = new SQSClient(awsClientConfig(t.ground));
const OPT_IN = { 'spot-orchestrator/enabled': 'true' };
const MINUTE = 60_000;

async function dropped(c: TestController, reason: DropReason): Promise<number> {
  const values = (await c.controller.ctx.metrics.eventsDropped.get()).values;
  return values.filter((v) => v.labels.reason === reason).reduce((sum, v) => sum + v.value, 0);
}

async function handledCount(c: TestController): Promise<number> {
  return (await c.controller.ctx.metrics.messagesDeleted.get()).values.reduce((sum, v) => sum + v.value, 0);
}

const said = (c: TestController, message: string) => c.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === message);

async function nodeEvents(node: string): Promise<string[]> {
  return (await t.core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${node}` })).items.map((e) => e.reason ?? '');
}

/** What the controller could have changed on a node: its marks, seal, cordon, taints and labels. */
function nodeState(n: V1Node) {
  const ours = Object.entries(n.metadata?.annotations ?? {}).filter(([k]) => k.startsWith('spot-orchestrator/'));
  return { annotations: Object.fromEntries(ours), unschedulable: n.spec?.unschedulable ?? false, taints: n.spec?.taints ?? [], labels: n.metadata?.labels };
}

/** A node pool of one, with one opted-in Deployment of two replicas on it, Ready. */
async function deploymentOnNewNode(namespace: string, capacityType: 'SPOT' | 'ON_DEMAND'): Promise<{ node: string; name: string }> {
  const pool = uniqueName(capacityType === 'SPOT' ? 'spot' : 'od');
  const [node] = await injector.addSpotNodes(1, { name: pool, suffix: '', capacityType });
  const name = uniqueName('app');
  await t.apps.createNamespacedDeployment({
    namespace,
    body: appDeployment({ namespace, name, replicas: 2, annotations: OPT_IN, nodeSelector: { 'eks.amazonaws.com/nodegroup': pool } }),
  });
  await eventually(
    `${name} ready on ${node}`,
    async () => ((await t.apps.readNamespacedDeployment({ name, namespace })).status?.readyReplicas === 2 ? true : undefined),
    60_000,
  );
  return { node: node!, name };
}

async function onFargate(namespace: string, name: string): Promise<true | undefined> {
  const d = await t.apps.readNamespacedDeployment({ name, namespace });
  if (d.metadata?.annotations?.['spot-orchestrator/state'] !== 'fargate') return undefined;
  const pods = (await podsOf(t, namespace, name)).filter((p) => !p.metadata?.deletionTimestamp);
  return pods.length === 2 && pods.every((p) => /^fargate-ip-/.test(p.spec?.nodeName ?? '') && isPodReady(p)) ? true : undefined;
}

describe('event trust: what the controller does not act on', () => {
  let namespace: string;
  let c: TestController;
  let spot: { node: string; name: string };
  let onDemand: { node: string; name: string };
  const nodes: string[] = [];
  before(async () => {
    namespace = await createNamespace(t, 'trust');
    spot = await deploymentOnNewNode(namespace, 'SPOT');
    onDemand = await deploymentOnNewNode(namespace, 'ON_DEMAND');
    nodes.push(spot.node, onDemand.node);
    c = await startController(t, namespace, { MAX_EVENT_AGE: '5m' });
  });
  after(async () => {
    injector.cancel();
    await c?.stop().catch(() => undefined);
    await deleteNamespace(t, namespace);
    for (const node of nodes) await injector.terminateNode(node).catch(() => undefined);
  });

  it('a stale warning (through EventBridge and straight into the queue), one of another account and one of another Region change nothing, and are counted', async () => {
    const before = {
      node: nodeState(await t.core.readNode({ name: spot.node })),
      deployment: await t.apps.readNamespacedDeployment({ name: spot.name, namespace }),
    };
    const instanceId = instanceIdOf(await t.core.readNode({ name: spot.node }));
    const zone = 'us-east-1a';
    const { account, region } = t.ground;
    const longAgo = new Date(Date.now() - 3 * 24 * 60 * MINUTE);
    // A dead-letter queue redriven days later: the events come back with their own old time.
    await publishEc2Events(t.ground, [
      { detailType: 'EC2 Spot Instance Interruption Warning', instanceId, zone, detail: { 'instance-action': 'terminate' }, time: longAgo },
      { detailType: 'EC2 Instance State-change Notification', instanceId, zone, detail: { state: 'stopped' }, time: longAgo },
    ]);
    const bodies = [
      buildSpotInterruption({ instanceId, zone, time: new Date(Date.now() - 6 * MINUTE), account, region }),
      buildSpotInterruption({ instanceId, zone, time: new Date(), account: '999999999999', region }),
      buildSpotInterruption({ instanceId, zone: 'eu-west-1a', time: new Date(), account, region: 'eu-west-1' }),
    ];
    const out = await sqs.send(
      new SendMessageBatchCommand({ QueueUrl: c.queueUrl, Entries: bodies.map((MessageBody, i) => ({ Id: String(i), MessageBody })) }),
    );
    assert.equal(out.Failed?.length ?? 0, 0, JSON.stringify(out.Failed));

    await eventually(
      'every one dropped and deleted',
      async () => ((await handledCount(c)) === 5 && (await queueEmpty(t.ground, c.queueUrl)) ? true : undefined),
      30_000,
    );
    assert.deepEqual(
      { stale: await dropped(c, 'stale'), foreign_account: await dropped(c, 'foreign_account'), foreign_region: await dropped(c, 'foreign_region') },
      { stale: 3, foreign_account: 1, foreign_region: 1 },
    );
    // One clear line per reason: the second and third stale ones fall within the same minute.
    const stale = said(c, 'event older than aws.max_event_age; dropped without acting on it');
    assert.equal(stale.length, 1);
    assert.equal(stale[0]!.reason, 'stale');
    assert.match(String(stale[0]!.detail), /more than aws\.max_event_age \(300 s\)/);
    assert.equal(said(c, 'event from another AWS account; dropped without acting on it').length, 1);
    assert.match(String(said(c, 'event from another AWS account; dropped without acting on it')[0]!.detail), new RegExp(`only events of account ${account}`));
    assert.equal(said(c, 'event from another AWS Region; dropped without acting on it').length, 1);
    assert.equal(said(c, 'message dropped').length, 5, 'each message accounted for');

    // Nothing was touched: the node is as it was, the Deployment was not patched, nothing was said on the node.
    assert.deepEqual(nodeState(await t.core.readNode({ name: spot.node })), before.node);
    const d = await t.apps.readNamespacedDeployment({ name: spot.name, namespace });
    assert.equal(d.metadata?.generation, before.deployment.metadata?.generation);
    assert.deepEqual(d.metadata?.annotations, before.deployment.metadata?.annotations);
    const ours = ['SpotInterruption', 'InstanceStateChanged', 'RebalanceRecommended', 'NotSpotCapacity', 'CapacityReservationInterruption'];
    assert.deepEqual(
      (await nodeEvents(spot.node)).filter((r) => ours.includes(r)),
      [],
    );
    assert.equal(said(c, 'spot interruption warning').length, 0, 'no phase 1');
  });

  it('a spot warning and a rebalance recommendation for an on-demand node are reported and not acted on; a Capacity Reservation warning for it is', async () => {
    const before = {
      node: nodeState(await t.core.readNode({ name: onDemand.node })),
      deployment: await t.apps.readNamespacedDeployment({ name: onDemand.name, namespace }),
    };
    await injector.interrupt([onDemand.node], { terminate: false });
    await injector.rebalance([onDemand.node]);
    await eventually('both reported', async () => ((await dropped(c, 'not_spot_capacity')) === 2 ? true : undefined), 30_000);
    await eventually('the queue empty', async () => ((await queueEmpty(t.ground, c.queueUrl)) ? true : undefined), 30_000);
    const lines = said(c, 'spot signal for a node that is not spot capacity; not acting on it');
    assert.deepEqual(
      lines.map((l) => [l.kind, l.node]),
      [
        ['spot_interrupted', onDemand.node],
        ['rebalance_recommendation', onDemand.node],
      ],
    );
    assert.deepEqual(lines[0]!.capacityLabels, {
      'compute-type': null,
      'eks.amazonaws.com/capacityType': 'ON_DEMAND',
      'karpenter.sh/capacity-type': 'on-demand',
    });
    assert.deepEqual(nodeState(await t.core.readNode({ name: onDemand.node })), before.node, 'neither marked nor sealed');
    const d = await t.apps.readNamespacedDeployment({ name: onDemand.name, namespace });
    assert.equal(d.metadata?.generation, before.deployment.metadata?.generation, 'not moved');
    // One Event each on the node (their messages differ: the warning, the recommendation).
    await eventually('the NotSpotCapacity Events', async () =>
      (await nodeEvents(onDemand.node)).filter((r) => r === 'NotSpotCapacity').length === 2 ? true : undefined,
    );

    // Capacity Reservations are on-demand capacity: their warning moves the Deployment off the node.
    await injector.interruptCapacityReservation([onDemand.node], { terminate: false });
    await eventually('moved to Fargate', () => onFargate(namespace, onDemand.name), 60_000);
    assert.equal((await t.core.readNode({ name: onDemand.node })).spec?.unschedulable, true, 'sealed off');
    assert.ok((await nodeEvents(onDemand.node)).includes('CapacityReservationInterruption'));
  });

  it('a fresh spot warning for the spot node is acted on by the same controller', async () => {
    await injector.interrupt([spot.node], { terminate: false });
    await eventually('moved to Fargate', () => onFargate(namespace, spot.name), 60_000);
    assert.ok((await nodeEvents(spot.node)).includes('SpotInterruption'));
    assert.equal(await dropped(c, 'stale'), 3, 'nothing more dropped');
  });
});
