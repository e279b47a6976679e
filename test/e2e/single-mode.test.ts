// single mode: the one named Deployment (and its Service) is managed without any annotation, and
// nothing else is touched, even when it opted in.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, testGround, uniqueName } from '../support/ground.js';
import { startController, type TestController } from '../support/controller.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);

describe('single mode', () => {
  let namespace: string;
  let c: TestController;
  const target = uniqueName('checkout');
  const bystander = uniqueName('bystander');
  before(async () => {
    namespace = await createNamespace(t, 'single');
    c = await startController(t, namespace, { MODE: 'single', DEPLOYMENT_NAME: target, SERVICE_NAME: target });
  });
  after(async () => {
    injector.cancel();
    await c?.stop();
    await deleteNamespace(t, namespace);
  });

  it('moves the named Deployment, verified through its Service, and leaves the others alone', async () => {
    const pool = uniqueName('pool');
    const [node] = await injector.addSpotNodes(1, { name: pool, suffix: '' });
    const selector = { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool };
    await t.apps.createNamespacedDeployment({ namespace, body: appDeployment({ namespace, name: target, replicas: 2, nodeSelector: selector }) });
    await t.apps.createNamespacedDeployment({
      namespace,
      body: appDeployment({ namespace, name: bystander, replicas: 1, nodeSelector: selector, annotations: { 'spot-orchestrator/enabled': 'true' } }),
    });
    await t.core.createNamespacedService({
      namespace,
      body: { metadata: { name: target }, spec: { selector: { app: target }, ports: [{ port: 80, targetPort: 8080 }] } },
    });
    await eventually(
      'both ready',
      async () => {
        for (const name of [target, bystander]) {
          const d = await t.apps.readNamespacedDeployment({ name, namespace });
          if ((d.status?.readyReplicas ?? 0) < (d.spec?.replicas ?? 1)) return undefined;
        }
        return true;
      },
      60_000,
    );
    const bystanderBefore = await t.apps.readNamespacedDeployment({ name: bystander, namespace });
    await injector.interrupt([node!], { terminate: false });

    const d = await eventually(
      'the named Deployment healthy on Fargate',
      async () => {
        const cur = await t.apps.readNamespacedDeployment({ name: target, namespace });
        const a = cur.metadata?.annotations ?? {};
        return a['spot-orchestrator/state'] === 'fargate' && !a['spot-orchestrator/phase'] ? cur : undefined;
      },
      60_000,
    );
    assert.equal(d.spec?.template.metadata?.labels?.['compute-type'], 'fargate');
    const summary = await eventually('the summary', async () => c.alerter.of('migration_summary')[0]);
    assert.deepEqual(
      summary.outcomes.map((o) => [o.name, o.result]),
      [[target, 'migrated']],
    );
    const after = await t.apps.readNamespacedDeployment({ name: bystander, namespace });
    assert.deepEqual(after.spec?.template, bystanderBefore.spec?.template);
    assert.equal(after.metadata?.annotations?.['spot-orchestrator/state'], undefined);
    await injector.terminateNode(node!);
  });
});
