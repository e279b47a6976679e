// Phase 1 under a tiny Fargate launch budget: the Deployment that would hit zero (all its Ready
// replicas on the doomed node) is patched before one with a single replica there, though it has more
// replicas; the forecast names the one expected late, in the log and in the Slack summary.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { startController, type TestController } from '../support/controller.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const OPT_IN = { 'spot-orchestrator/enabled': 'true' };

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
        spec: {
          containers: [{ name: 'app', image: 'registry.example/app:1.0' }],
          affinity: {
            podAntiAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app: spread } } }],
            },
          },
        },
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
});
