// Moving on a rebalance recommendation is opt-in: off, the recommendation only marks the node; on, the
// node's Deployments move at once, once per node, and the node is sealed; a node that no warning
// followed gets its seal back after survivor_grace, and the metric says which way each move went.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EXCLUDE_FROM_LB_LABEL, INTERRUPTED_TAINT_KEY, NODE_ANNOTATIONS } from '../../src/state/annotations.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { controllerStarter, type TestController } from '../support/controller.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const OPT_IN = { 'spot-orchestrator/enabled': 'true' };

async function deploymentOnFreshNode(namespace: string): Promise<{ node: string; name: string }> {
  const pool = uniqueName('pool');
  const [node] = await injector.addSpotNodes(1, { name: pool, suffix: '' });
  const name = uniqueName('app');
  await t.apps.createNamespacedDeployment({
    namespace,
    body: appDeployment({ namespace, name, replicas: 2, annotations: OPT_IN, nodeSelector: { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool } }),
  });
  await eventually(
    'ready on spot',
    async () => ((await t.apps.readNamespacedDeployment({ name, namespace })).status?.readyReplicas === 2 ? true : undefined),
    60_000,
  );
  return { node: node!, name };
}

const stateOf = async (namespace: string, name: string) =>
  (await t.apps.readNamespacedDeployment({ name, namespace })).metadata?.annotations?.['spot-orchestrator/state'];
const annotationsOf = async (node: string) => (await t.core.readNode({ name: node })).metadata?.annotations ?? {};
const isSealed = async (node: string) => {
  const n = await t.core.readNode({ name: node });
  return (n.spec?.taints ?? []).some((x) => x.key === INTERRUPTED_TAINT_KEY) && n.metadata?.labels?.[EXCLUDE_FROM_LB_LABEL] === 'true';
};
const said = (c: TestController, message: string) => c.logs.filter((l) => (JSON.parse(l) as { msg?: string }).msg === message).length;
const MOVING = 'rebalance recommendation, moving the Deployments that opted in';

async function rebalanceMoves(c: TestController): Promise<Record<string, number>> {
  const values = (await c.controller.ctx.metrics.rebalanceMoves.get()).values;
  return Object.fromEntries(values.map((v) => [String(v.labels.followed_by_warning), v.value]));
}

describe('moving on a rebalance recommendation', () => {
  let namespace: string;
  let c: TestController | undefined;
  const { start, stopAll } = controllerStarter(t, () => namespace);
  before(async () => {
    namespace = await createNamespace(t, 'rebal');
  });
  after(async () => {
    injector.cancel();
    await stopAll();
    await deleteNamespace(t, namespace);
  });

  it('off (the default): the node is marked, nothing moves, nothing is sealed', async () => {
    const { node, name } = await deploymentOnFreshNode(namespace);
    c = await start();
    await injector.rebalance([node]);
    await eventually('the node marked', async () => ((await annotationsOf(node))[NODE_ANNOTATIONS.rebalanceRecommendedAt] ? true : undefined));
    // The recommendation has been handled (the mark is its last step); give a stray move time to show.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(await stateOf(namespace, name), undefined, 'still on spot');
    assert.equal(await isSealed(node), false);
    assert.equal(said(c, MOVING), 0);
    await injector.terminateNode(node);
  });

  it('on: moves at once, once per node, seals the node; the warning that follows is counted', async () => {
    const { node, name } = await deploymentOnFreshNode(namespace);
    c = await start({ MIGRATION_ON_REBALANCE: 'true' });
    await injector.rebalance([node]);
    await eventually('moved to Fargate on the recommendation', async () => ((await stateOf(namespace, name)) === 'fargate' ? true : undefined), 60_000);
    await eventually('the node sealed off', async () => ((await isSealed(node)) ? true : undefined));
    assert.ok((await annotationsOf(node))[NODE_ANNOTATIONS.rebalanceMovedAt]);
    assert.equal((await annotationsOf(node))[NODE_ANNOTATIONS.interruptedAt], undefined, 'recommended, not interrupted');

    // A second recommendation for the same node moves nothing more.
    await injector.rebalance([node]);
    const handled = c.logs.length;
    await eventually('the second recommendation handled', async () =>
      c!.logs.slice(handled).some((l) => (JSON.parse(l) as { msg?: string }).msg === 'noted: spot capacity at risk') ? true : undefined,
    );
    assert.equal(said(c, MOVING), 1, 'once per node');

    const interruption = await injector.interrupt([node], { windowMs: 600_000, terminate: false });
    await eventually('the warning handled', async () => ((await annotationsOf(node))[NODE_ANNOTATIONS.interruptedAt] ? true : undefined), 30_000);
    assert.deepEqual(await rebalanceMoves(c), { true: 1 });
    assert.ok(interruption.instances.length === 1);
    await injector.terminateNode(node);
  });

  it('on, and no warning follows: after survivor_grace the seal goes, counted as not followed', async () => {
    const { node, name } = await deploymentOnFreshNode(namespace);
    c = await start({ MIGRATION_ON_REBALANCE: 'true', SURVIVOR_GRACE: '5s' });
    await injector.rebalance([node]);
    await eventually('moved to Fargate on the recommendation', async () => ((await stateOf(namespace, name)) === 'fargate' ? true : undefined), 60_000);
    await eventually('the seal taken back', async () => ((await annotationsOf(node))[NODE_ANNOTATIONS.survivedAt] ? true : undefined), 30_000);
    const n = await t.core.readNode({ name: node });
    assert.equal(n.spec?.unschedulable, undefined);
    assert.equal(n.metadata?.labels?.[EXCLUDE_FROM_LB_LABEL], undefined);
    assert.ok(!(n.spec?.taints ?? []).some((x) => x.key === INTERRUPTED_TAINT_KEY));
    assert.ok(n.metadata?.annotations?.[NODE_ANNOTATIONS.rebalanceRecommendedAt], 'recovery still stays off it');
    assert.deepEqual(await rebalanceMoves(c), { false: 1 });
    await injector.terminateNode(node);
  });
});
