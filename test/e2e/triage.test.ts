// Phase 1 under a tiny Fargate launch budget: the Deployment that would hit zero (all its Ready
// replicas on the doomed node) is patched before one with a single replica there, though it has more
// replicas; the forecast names the one expected late, in the log and in the Slack summary.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { startController, type TestController } from '../support/controller.js';
import { MERGE_PATCH } from '../../src/kube/api.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, isPodReady, testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const OPT_IN = { 'spot-orchestrator/enabled': 'true' };
/** A pod spec whose replicas never share a node. */
const onePerNode = (app: string) => ({
  containers: [{ name: 'app', image: 'registry.example/app:1.0' }],
  affinity: {
    podAntiAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app } } }],
    },
  },
});

describe('phase 1 triage', () => {
  let namespace: string;
  let c: TestController | undefined;

  before(async () => {
    namespace = await createNamespace(t, 'triage');
  });

  after(async () => {
    injector.cancel();
    await c?.stop();
    await deleteNamespace(t, namespace);
  });

  it('patches what would hit zero first under a tiny launch budget, and names the Deployment expected late', async () => {
    const pool = uniqueName('pool');
    const [doomed, survivor] = await injector.addSpotNodes(2, { name: pool, suffix: '' });
    // "whole": all 3 replicas on the doomed node. "spread": 2 replicas, one per node, so one survives.
    const whole = uniqueName('whole');
    const spread = uniqueName('spread');
    await t.apps.createNamespacedDeployment({
      namespace,
      body: appDeployment({
        namespace,
        name: whole,
        replicas: 3,
        annotations: OPT_IN,
        nodeSelector: { 'compute-type': 'spot', 'kubernetes.io/hostname': doomed! },
      }),
    });
    await t.apps.createNamespacedDeployment({
      namespace,
      body: appDeployment({
        namespace,
        name: spread,
        replicas: 2,
        annotations: OPT_IN,
        nodeSelector: { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool },
        spec: onePerNode(spread),
      }),
    });
    await eventually(
      'both ready on spot, spread over the two nodes',
      async () => {
        for (const name of [whole, spread]) {
          const d = await t.apps.readNamespacedDeployment({ name, namespace });
          if ((d.status?.readyReplicas ?? 0) < (d.spec?.replicas ?? 1)) return undefined;
        }
        const pods = (await t.core.listNamespacedPod({ namespace, labelSelector: `app=${spread}` })).items;
        return new Set(pods.map((p) => p.spec?.nodeName)).size === 2 ? true : undefined;
      },
      60_000,
    );
    const onSurvivor = (await t.core.listNamespacedPod({ namespace, fieldSelector: `spec.nodeName=${survivor}` })).items.length;
    assert.equal(onSurvivor, 1, 'one replica of spread on the surviving node');

    // Three launches at once, then one every 100 s: only the first Deployment patched can be whole.
    c = await startController(t, namespace, {
      MAX_CONCURRENT_PATCHES: '1',
      FARGATE_LAUNCH_BURST: '3',
      FARGATE_LAUNCH_RATE: '0.01/s',
      FARGATE_START_ESTIMATE: '1s',
    });
    const logs = c.logs;
    await injector.interrupt([doomed!], { windowMs: 600_000, terminate: false });
    const lines = () => logs.map((l) => JSON.parse(l) as { msg?: string; deployment?: string; expectedWhole?: number; expectedLate?: number; late?: string[] });
    await eventually(
      'both patched',
      async () => (lines().filter((l) => l.msg === 'patched onto Fargate; rollout started').length === 2 ? true : undefined),
      60_000,
    );
    const patchOrder = lines()
      .filter((l) => l.msg === 'patched onto Fargate; rollout started')
      .map((l) => l.deployment);
    assert.deepEqual(patchOrder, [`${namespace}/${whole}`, `${namespace}/${spread}`], 'the one that would hit zero first, though it has more replicas');

    const forecast = lines().find((l) => l.msg === 'Fargate launch forecast');
    assert.ok(forecast, 'the forecast is logged');
    assert.equal(forecast.expectedWhole, 1);
    assert.equal(forecast.expectedLate, 1);
    assert.deepEqual(forecast.late, [`${namespace}/${spread}`]);

    const summary = await eventually('the interruption summary', async () => c!.alerter.of('migration_summary')[0], 120_000);
    assert.deepEqual(
      summary.expectedLate?.map((l) => l.name),
      [spread],
    );
    assert.match(summary.expectedLate![0]!.why, /^its 2 Fargate launch\(es\) come after 3 others \(other, priority 0\): Ready about \d+ s after the warning/);
    assert.ok(
      summary.outcomes.every((o) => o.result === 'migrated'),
      `both still moved: ${JSON.stringify(summary.outcomes)}`,
    );
  });

  it('ranks across warnings handled together: a Deployment spread over two warned nodes goes before one that keeps a replica', async () => {
    await c?.stop();
    c = undefined;
    const pool = uniqueName('pool');
    const [a, b, spare] = await injector.addSpotNodes(3, { name: pool, suffix: '' });
    // Each Deployment has two replicas, one on each of its two nodes: spread on a and b (both
    // warned), x on a and the spare, y on b and the spare. Neither warning alone puts all of
    // spread's Ready replicas at stake; the two together do.
    const groups = { spread: [a!, b!], x: [a!, spare!], y: [b!, spare!] } as const;
    const GROUP_LABEL = (g: string) => `triage.example/${g}`;
    // Valued with the pool, so that nodes an earlier run left labelled draw no pod.
    for (const node of [a!, b!, spare!]) {
      const labels = Object.fromEntries(
        Object.entries(groups).flatMap(([g, nodes]) => ((nodes as readonly string[]).includes(node) ? [[GROUP_LABEL(g), pool]] : [])),
      );
      await t.core.patchNode({ name: node, body: { metadata: { labels } } }, MERGE_PATCH);
    }
    const names = { spread: uniqueName('spread'), x: uniqueName('x'), y: uniqueName('y') };
    // x and y outrank spread on priority, so by what each warning alone sees, they go first.
    const priority = { spread: undefined, x: '1000', y: '500' };
    for (const g of ['spread', 'x', 'y'] as const) {
      const name = names[g];
      await t.apps.createNamespacedDeployment({
        namespace,
        body: appDeployment({
          namespace,
          name,
          replicas: 2,
          annotations: { ...OPT_IN, ...(priority[g] ? { 'spot-orchestrator/priority': priority[g] } : {}) },
          nodeSelector: { 'compute-type': 'spot', [GROUP_LABEL(g)]: pool },
          spec: onePerNode(name),
        }),
      });
    }
    await eventually(
      'all Ready, one replica on each of their two nodes',
      async () => {
        for (const g of ['spread', 'x', 'y'] as const) {
          const pods = (await t.core.listNamespacedPod({ namespace, labelSelector: `app=${names[g]}` })).items.filter(isPodReady);
          const on = new Set(pods.map((p) => p.spec?.nodeName));
          if (pods.length !== 2 || groups[g].some((n) => !on.has(n))) return undefined;
        }
        return true;
      },
      60_000,
    );

    // Both warnings are queued before the controller starts, so its first receive gets them together
    // and both are ranked before the first patch (one at a time) returns.
    c = await startController(
      t,
      namespace,
      { MAX_CONCURRENT_PATCHES: '1' },
      {
        beforeStart: async () => void (await injector.interrupt([a!, b!], { windowMs: 600_000, terminate: false })),
      },
    );
    const logs = c.logs;
    const lines = () => logs.map((l) => JSON.parse(l) as { msg?: string; deployment?: string });
    const patched = () => lines().filter((l) => l.msg === 'patched onto Fargate; rollout started');
    await eventually('all three patched', async () => (patched().length === 3 ? true : undefined), 60_000);
    const firstPatch = lines().findIndex((l) => l.msg === 'patched onto Fargate; rollout started');
    const warnings = lines()
      .map((l, i) => (l.msg === 'spot interruption warning' ? i : -1))
      .filter((i) => i >= 0);
    assert.equal(warnings.length, 2);
    assert.ok(
      warnings.every((i) => i < firstPatch),
      'both warnings were ranked before the first patch returned (else this scenario tests nothing)',
    );
    const order = patched().map((l) => l.deployment);
    assert.equal(
      order[1],
      `${namespace}/${names.spread}`,
      `spread, with every Ready replica on a warned node, goes right after the patch already in flight: ${order.join(', ')}`,
    );
    assert.ok([`${namespace}/${names.x}`, `${namespace}/${names.y}`].includes(order[0]!), order.join(', '));
    const summary = await eventually('the interruption summary', async () => c!.alerter.of('migration_summary')[0], 120_000);
    assert.ok(
      summary.outcomes.every((o) => o.result === 'migrated'),
      `all moved: ${JSON.stringify(summary.outcomes)}`,
    );
    for (const node of [a!, b!, spare!]) await injector.terminateNode(node);
  });
});
