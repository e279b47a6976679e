// A move whose last patch fails is not left in flight until the next restart: the API server refuses
// the patch that ends a migration (a ValidatingAdmissionPolicy plays an admission policy or a flaky
// webhook), and once it accepts again, the move registry's periodic pass finishes the move in the
// same controller process.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { JSON_PATCH } from '../../src/kube/api.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { startController, type TestController } from '../support/controller.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, testGround, uniqueName } from '../support/ground.js';
import { spotAppsOnFreshPool } from '../support/spot-apps.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const admission = t.kc.makeApiClient(AdmissionregistrationV1Api);
const PHASE = 'spot-orchestrator/phase';

describe('a move whose finishing patch is refused', () => {
  let namespace: string;
  let c: TestController | undefined;
  const policy = uniqueName('refuse-move-end');

  before(async () => {
    namespace = await createNamespace(t, 'orphan');
  });

  after(async () => {
    injector.cancel();
    await c?.stop();
    await admission.deleteValidatingAdmissionPolicyBinding({ name: policy }).catch(() => undefined);
    await admission.deleteValidatingAdmissionPolicy({ name: policy }).catch(() => undefined);
    await deleteNamespace(t, namespace);
  });

  /** Refuses, in this namespace only, any update that takes the phase annotation away. */
  async function refuseEndOfMoves(): Promise<void> {
    await admission.createValidatingAdmissionPolicy({
      body: {
        metadata: { name: policy },
        spec: {
          failurePolicy: 'Fail',
          matchConstraints: { resourceRules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['UPDATE'], resources: ['deployments'] }] },
          validations: [
            {
              expression: `!(has(oldObject.metadata.annotations) && '${PHASE}' in oldObject.metadata.annotations) || (has(object.metadata.annotations) && '${PHASE}' in object.metadata.annotations)`,
              message: 'the test refuses the end of a move',
            },
          ],
        },
      },
    });
    await admission.createValidatingAdmissionPolicyBinding({
      body: {
        metadata: { name: policy },
        spec: {
          policyName: policy,
          validationActions: ['Deny'],
          matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } } },
        },
      },
    });
    // The policy takes effect once the API server has loaded it: prove it on a Deployment of its own.
    const probe = uniqueName('probe');
    await t.apps.createNamespacedDeployment({ namespace, body: appDeployment({ namespace, name: probe, replicas: 0, annotations: { [PHASE]: 'migrating' } }) });
    await eventually(
      'the policy to refuse taking the phase away',
      async () => {
        try {
          const body = [{ op: 'remove', path: `/metadata/annotations/${PHASE.replace('/', '~1')}` }];
          await t.apps.patchNamespacedDeployment({ name: probe, namespace, body, dryRun: 'All' }, JSON_PATCH);
          return undefined;
        } catch (err) {
          return String(err).includes('the test refuses the end of a move') ? true : undefined;
        }
      },
      30_000,
      250,
    );
  }

  it('is finished by the periodic pass once the API server accepts it again, without a restart', async () => {
    await refuseEndOfMoves();
    const fresh = await spotAppsOnFreshPool(t, injector, namespace, { apps: 1, nodes: 1 });
    const name = fresh.names[0]!;
    const nodes = fresh.nodes;
    const original = (await t.apps.readNamespacedDeployment({ name, namespace })).spec?.strategy;
    c = await startController(t, namespace);
    const controller = c.controller;
    const logs = c.logs;
    const said = (message: string) => logs.filter((l) => (JSON.parse(l) as { msg?: string }).msg?.startsWith(message)).length;

    await injector.interrupt(nodes, { windowMs: 600_000, terminate: false });
    await eventually('the end of the move refused', async () => (said('could not record the end of the move (migrated)') > 0 ? true : undefined), 120_000);
    const refused = await t.apps.readNamespacedDeployment({ name, namespace });
    assert.equal(refused.metadata?.annotations?.[PHASE], 'migrating', 'the move is still marked in flight');
    assert.equal(refused.status?.readyReplicas, 2, 'healthy on Fargate meanwhile');
    // The move has ended in this process; the periodic pass finds it orphaned and resumes it (and is refused again).
    await eventually(
      'the periodic pass to resume the move',
      async () => (said('the phase annotation says a move is in flight, and no move here owns it; resuming it') > 0 ? true : undefined),
      60_000,
    );
    const refusalsBefore = said('could not record the end of the move (migrated)');
    await eventually(
      'a resumed attempt refused too',
      async () => (said('could not record the end of the move (migrated)') > refusalsBefore ? true : undefined),
      60_000,
    );

    await admission.deleteValidatingAdmissionPolicyBinding({ name: policy });
    await admission.deleteValidatingAdmissionPolicy({ name: policy });
    const done = await eventually(
      'the move finished',
      async () => {
        const d = await t.apps.readNamespacedDeployment({ name, namespace });
        return d.metadata?.annotations?.[PHASE] === undefined ? d : undefined;
      },
      60_000,
    );
    assert.equal(c.controller, controller, 'the same controller, never restarted');
    assert.equal(done.metadata?.annotations?.['spot-orchestrator/state'], 'fargate');
    assert.deepEqual(done.spec?.strategy, original, "the Deployment's own strategy is back");
    // The recorder writes Events behind the patches, a few at a time: the Event may follow the patch.
    await eventually('a MigratedToFargate Event once finished', async () => {
      const events = (await t.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` })).items;
      return events.some((e) => e.reason === 'MigratedToFargate') ? true : undefined;
    });
  });
});
