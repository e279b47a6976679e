// Two more ways AWS takes an instance, end to end through EventBridge: a Capacity Reservation
// interruption warning moves the Deployments like a spot warning, and an AWS Health scheduled change
// moves them `scheduled_change_lead` before its startTime, from the node marks, across a restart too.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { V1Deployment } from '@kubernetes/client-node';
import { NODE_ANNOTATIONS } from '../../src/state/annotations.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { startController, type TestController } from '../support/controller.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, isPodReady, podsOf, testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const OPT_IN = { 'spot-orchestrator/enabled': 'true' };

/** A fresh spot node pool with one opted-in Deployment on it, Ready. */
async function deploymentOnFreshNode(namespace: string, replicas = 2): Promise<{ node: string; name: string }> {
  const pool = uniqueName('pool');
  const [node] = await injector.addSpotNodes(1, { name: pool, suffix: '' });
  const name = uniqueName('app');
  await t.apps.createNamespacedDeployment({
    namespace,
    body: appDeployment({ namespace, name, replicas, annotations: OPT_IN, nodeSelector: { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool } }),
  });
  await eventually(
    `${name} ready on spot`,
    async () => ((await t.apps.readNamespacedDeployment({ name, namespace })).status?.readyReplicas === replicas ? true : undefined),
    60_000,
  );
  return { node: node!, name };
}

/** Every replica Ready on a Fargate node, and the move recorded as done. */
async function wholeOnFargate(namespace: string, name: string): Promise<V1Deployment | undefined> {
  const d = await t.apps.readNamespacedDeployment({ name, namespace });
  const a = d.metadata?.annotations ?? {};
  if (a['spot-orchestrator/state'] !== 'fargate' || a['spot-orchestrator/phase'] !== undefined) return undefined;
  const pods = (await podsOf(t, namespace, name)).filter((p) => !p.metadata?.deletionTimestamp);
  const onFargate = pods.filter((p) => /^fargate-ip-/.test(p.spec?.nodeName ?? '') && isPodReady(p));
  return onFargate.length === d.spec?.replicas && pods.length === onFargate.length ? d : undefined;
}

async function nodeEvents(node: string): Promise<string[]> {
  return (await t.core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${node}` })).items.map((e) => e.reason ?? '');
}

async function nodeAnnotation(node: string, key: string): Promise<string | undefined> {
  return (await t.core.readNode({ name: node })).metadata?.annotations?.[key];
}

const said = (c: TestController, message: string) => c.logs.filter((l) => (JSON.parse(l) as { msg?: string }).msg === message).length;

describe('Capacity Reservation interruption warnings and AWS Health scheduled changes', () => {
  let namespace: string;
  const controllers: TestController[] = [];
  before(async () => {
    namespace = await createNamespace(t, 'sched');
  });
  after(async () => {
    injector.cancel();
    for (const c of controllers) await c.stop().catch(() => undefined);
    await deleteNamespace(t, namespace);
  });

  it('a Capacity Reservation interruption warning moves the Deployment to Fargate before the instance goes', async () => {
    const { node, name } = await deploymentOnFreshNode(namespace);
    const c = await startController(t, namespace);
    controllers.push(c);
    const interruption = await injector.interruptCapacityReservation([node]);
    const moved = await eventually('moved whole to Fargate', () => wholeOnFargate(namespace, name), 60_000);
    assert.ok(Date.now() < interruption.terminatesAt.getTime(), 'healthy on Fargate before the instance died');
    assert.equal(moved.spec?.template.metadata?.labels?.['compute-type'], 'fargate');
    assert.ok((await nodeEvents(node)).includes('CapacityReservationInterruption'));
    const deadline = await nodeAnnotation(node, NODE_ANNOTATIONS.terminationDeadline);
    assert.equal(
      Date.parse(deadline ?? '') - Date.parse((await nodeAnnotation(node, NODE_ANNOTATIONS.interruptedAt)) ?? ''),
      120_000,
      'its own two-minute deadline',
    );
    assert.equal(said(c, 'capacity reservation interruption warning'), 1);
    await interruption.terminated;
    await c.stop();
    controllers.pop();
  });

  it('a scheduled change is moved after startTime - lead and before its startTime', async () => {
    const { node, name } = await deploymentOnFreshNode(namespace);
    const leadMs = 15_000;
    const c = await startController(t, namespace, { SCHEDULED_CHANGE_LEAD: '15s' });
    controllers.push(c);
    const { startTime } = await injector.scheduleChange([node], new Date(Date.now() + 35_000));
    await eventually(
      'the node marked with startTime',
      async () => ((await nodeAnnotation(node, NODE_ANNOTATIONS.scheduledChangeAt)) === startTime.toISOString() ? true : undefined),
      20_000,
    );
    assert.ok((await nodeEvents(node)).includes('ScheduledChange'));
    assert.equal(
      (await t.apps.readNamespacedDeployment({ name, namespace })).metadata?.annotations?.['spot-orchestrator/state'],
      undefined,
      'nothing moves at once',
    );

    const moved = await eventually('moved whole to Fargate', () => wholeOnFargate(namespace, name), 60_000);
    const doneAt = Date.now();
    assert.ok(doneAt < startTime.getTime(), `whole on Fargate ${doneAt - startTime.getTime()} ms after startTime`);
    // migrated-at is written in whole seconds by phase 1.
    const migratedAt = Date.parse(moved.metadata!.annotations!['spot-orchestrator/migrated-at']!);
    assert.ok(migratedAt >= startTime.getTime() - leadMs - 1000, `moved ${startTime.getTime() - migratedAt} ms before startTime, more than the lead`);
    assert.deepEqual(JSON.parse((await nodeAnnotation(node, NODE_ANNOTATIONS.scheduledChangeMoved)) ?? '{}'), { [namespace]: startTime.toISOString() });
    assert.equal(await nodeAnnotation(node, NODE_ANNOTATIONS.terminationDeadline), startTime.toISOString());
    assert.ok((await nodeEvents(node)).includes('ScheduledChangeDue'));
    assert.equal(said(c, 'scheduled change: the lead time has come; moving its Deployments'), 1, 'moved once');
    await c.stop();
    controllers.pop();
    await injector.terminateNode(node);
  });

  it('a controller restarted between the Health event and the lead time still moves it, from the node mark alone', async () => {
    const { node, name } = await deploymentOnFreshNode(namespace);
    const env = { SCHEDULED_CHANGE_LEAD: '15s' };
    const first = await startController(t, namespace, env);
    controllers.push(first);
    const { startTime } = await injector.scheduleChange([node], new Date(Date.now() + 40_000));
    await eventually(
      'the node marked with startTime',
      async () => ((await nodeAnnotation(node, NODE_ANNOTATIONS.scheduledChangeAt)) === startTime.toISOString() ? true : undefined),
      20_000,
    );
    assert.equal(said(first, 'AWS Health scheduled change noted on the nodes'), 1);
    // The first process goes before the lead time; its queue and rule go with it, so the second never
    // receives the Health event.
    await first.stop();
    controllers.pop();
    assert.ok(Date.now() < startTime.getTime() - 15_000, 'stopped before the lead time');
    assert.equal((await t.apps.readNamespacedDeployment({ name, namespace })).metadata?.annotations?.['spot-orchestrator/state'], undefined);

    const second = await startController(t, namespace, env);
    controllers.push(second);
    await eventually('moved whole to Fargate', () => wholeOnFargate(namespace, name), 60_000);
    assert.ok(Date.now() < startTime.getTime(), 'before startTime');
    assert.equal(said(second, 'AWS Health scheduled change noted on the nodes'), 0, 'the second process never saw the event');
    assert.equal(said(second, 'scheduled change: the lead time has come; moving its Deployments'), 1);
    assert.deepEqual(JSON.parse((await nodeAnnotation(node, NODE_ANNOTATIONS.scheduledChangeMoved)) ?? '{}'), { [namespace]: startTime.toISOString() });
    await second.stop();
    controllers.pop();
    await injector.terminateNode(node);
  });
});
