// The doomed node sealed off: after phase 1 it is cordoned, tainted spot-orchestrator/interrupted
// (NoSchedule) and excluded from external load balancers; a node still Ready survivor_grace after
// its deadline gets back exactly what it had.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { V1Node } from '@kubernetes/client-node';
import { MERGE_PATCH } from '../../src/kube/api.js';
import { EXCLUDE_FROM_LB_LABEL, INTERRUPTED_TAINT_KEY, NODE_ANNOTATIONS } from '../../src/state/annotations.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { controllerStarter } from '../support/controller.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const OPT_IN = { 'spot-orchestrator/enabled': 'true' };
const USER_TAINT = { key: 'example.com/keep', value: 'yes', effect: 'PreferNoSchedule' };

const ourTaint = (n: V1Node) => (n.spec?.taints ?? []).find((x) => x.key === INTERRUPTED_TAINT_KEY);
const sealed = (n: V1Node) => ourTaint(n)?.effect === 'NoSchedule' && n.metadata?.labels?.[EXCLUDE_FROM_LB_LABEL] === 'true' && n.spec?.unschedulable === true;

async function freshNodeWith(namespace: string): Promise<{ node: string; name: string }> {
  const pool = uniqueName('pool');
  const [node] = await injector.addSpotNodes(1, { name: pool, suffix: '' });
  const name = uniqueName('app');
  await t.apps.createNamespacedDeployment({
    namespace,
    body: appDeployment({ namespace, name, replicas: 1, annotations: OPT_IN, nodeSelector: { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool } }),
  });
  await eventually(
    'ready on spot',
    async () => ((await t.apps.readNamespacedDeployment({ name, namespace })).status?.readyReplicas === 1 ? true : undefined),
    60_000,
  );
  return { node: node!, name };
}

describe('the doomed node sealed off', () => {
  let namespace: string;
  const { start, stopAll } = controllerStarter(t, () => namespace);
  before(async () => {
    namespace = await createNamespace(t, 'seal');
  });
  after(async () => {
    injector.cancel();
    await stopAll();
    await deleteNamespace(t, namespace);
  });

  it('an interrupted node gets the taint and the load-balancer label, behind the patches', async () => {
    const { node, name } = await freshNodeWith(namespace);
    await start();
    await injector.interrupt([node], { windowMs: 600_000, terminate: false });
    const n = await eventually('the node sealed off', async () => {
      const got = await t.core.readNode({ name: node });
      return sealed(got) ? got : undefined;
    });
    assert.deepEqual(JSON.parse(n.metadata!.annotations![NODE_ANNOTATIONS.sealed]!), { taint: true, label: true, cordon: true });
    // The patch came first: by the time the node is sealed the Deployment is already patched.
    const d = await t.apps.readNamespacedDeployment({ name, namespace });
    assert.equal(d.spec?.template.metadata?.labels?.['compute-type'], 'fargate');
    const patchedAt = Date.parse(d.metadata!.annotations!['spot-orchestrator/migrated-at']!);
    assert.ok(patchedAt <= new Date(ourTaint(n)!.timeAdded!).getTime() + 1000, 'the seal comes behind the patch');
    await injector.terminateNode(node);
  });

  it('a node that outlives a scheduled change gets back exactly what it had', async () => {
    const { node } = await freshNodeWith(namespace);
    // Someone else's taint, there before: the controller's writes must keep it.
    await t.core.patchNode({ name: node, body: { spec: { taints: [USER_TAINT] } } }, MERGE_PATCH);
    await start({ SCHEDULED_CHANGE_LEAD: '5s', SURVIVOR_GRACE: '4s' });
    const { startTime } = await injector.scheduleChange([node], new Date(Date.now() + 12_000), {
      eventTypeCode: 'AWS_EC2_SYSTEM_REBOOT_MAINTENANCE_SCHEDULED',
    });
    const whileSealed = await eventually(
      'the node sealed off at the lead time',
      async () => {
        const got = await t.core.readNode({ name: node });
        return sealed(got) ? got : undefined;
      },
      30_000,
    );
    assert.ok(Date.now() < startTime.getTime() + 4_000, 'sealed before the grace ran out');
    // The node lifecycle controller adds node.kubernetes.io/unschedulable for the cordon, in between.
    const keys = whileSealed.spec?.taints?.map((x) => x.key) ?? [];
    assert.ok(keys.includes(USER_TAINT.key) && keys.includes(INTERRUPTED_TAINT_KEY), `taints: ${keys.join(', ')}`);
    // The maintenance passes and the node is still Ready: after the grace, the seal goes.
    const after = await eventually(
      'the seal taken back',
      async () => {
        const got = await t.core.readNode({ name: node });
        return got.metadata?.annotations?.[NODE_ANNOTATIONS.survivedAt] ? got : undefined;
      },
      30_000,
    );
    assert.ok(Date.now() >= startTime.getTime() + 4_000, 'not before the grace');
    assert.equal(ourTaint(after), undefined);
    // node.kubernetes.io/unschedulable is the node lifecycle controller's to take away, once uncordoned.
    await eventually('only the taint there before left', async () => {
      const got = await t.core.readNode({ name: node });
      const left = got.spec?.taints?.map(({ key, value, effect }) => ({ key, value, effect }));
      return JSON.stringify(left) === JSON.stringify([USER_TAINT]) ? true : undefined;
    });
    assert.equal(after.metadata?.labels?.[EXCLUDE_FROM_LB_LABEL], undefined);
    assert.equal(after.spec?.unschedulable, undefined, 'uncordoned: the cordon was its own');
    for (const key of [NODE_ANNOTATIONS.sealed, NODE_ANNOTATIONS.interruptedAt, NODE_ANNOTATIONS.terminationDeadline, NODE_ANNOTATIONS.scheduledChangeAt]) {
      assert.equal(after.metadata?.annotations?.[key], undefined, `${key} removed`);
    }
    const reasons = (await t.core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${node}` })).items.map((e) => e.reason);
    assert.ok(reasons.includes('NodeSurvived'), `events: ${reasons.join(', ')}`);
    await injector.terminateNode(node);
  });
});
