// Phase 1 and 2 end to end: a spot interruption in SQS moves every opted-in Deployment with pods on
// the doomed nodes to Fargate inside the window, without a ready replica lost.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { V1Deployment } from '@kubernetes/client-node';
import { buildSpotInterruption } from '../../src/events/build.js';
import { MERGE_PATCH, USER_AGENT } from '../../src/kube/api.js';
import { awsClientConfig, GROUND_USER_AGENT } from '../../testground/src/ground.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, isPodReady, podsOf, testGround, uniqueName } from '../support/ground.js';
import { ReadinessSampler, startController, type TestController } from '../support/controller.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const OPT_IN = { 'spot-orchestrator/enabled': 'true' };

async function poolNodes(count: number): Promise<{ pool: string; nodes: string[] }> {
  const pool = uniqueName('pool');
  const nodes = await injector.addSpotNodes(count, { name: pool, suffix: '' });
  return { pool, nodes };
}

function pinnedToPool(pool: string) {
  return { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool };
}

async function create(namespace: string, d: V1Deployment): Promise<V1Deployment> {
  return t.apps.createNamespacedDeployment({ namespace, body: d });
}

async function allReady(namespace: string, names: string[]): Promise<void> {
  await eventually(
    `Deployments ready: ${names.join(', ')}`,
    async () => {
      for (const name of names) {
        const d = await t.apps.readNamespacedDeployment({ name, namespace });
        if ((d.status?.readyReplicas ?? 0) < (d.spec?.replicas ?? 1) || d.status?.updatedReplicas !== d.spec?.replicas) return undefined;
      }
      return true;
    },
    60_000,
  );
}

async function eventsFor(namespace: string, name: string) {
  return (await t.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` })).items;
}

async function queueIsEmpty(c: TestController): Promise<boolean> {
  const sqs = new SQSClient(awsClientConfig(t.ground));
  const out = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: c.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return out.Attributes?.ApproximateNumberOfMessages === '0' && out.Attributes?.ApproximateNumberOfMessagesNotVisible === '0';
}

/** Who wrote a Deployment, as the API server records it. */
const writers = (d: V1Deployment) => (d.metadata?.managedFields ?? []).map((e) => e.manager ?? '');

describe('migration to Fargate on a spot interruption', () => {
  let namespace: string;
  let c: TestController;
  before(async () => {
    namespace = await createNamespace(t, 'mig');
    c = await startController(t, namespace);
  });
  after(async () => {
    injector.cancel();
    await c?.stop();
    await deleteNamespace(t, namespace);
  });

  it('moves every opted-in Deployment on the interrupted nodes, inside the window, never below desired ready replicas', async () => {
    const { pool, nodes } = await poolNodes(3);
    const selector = pinnedToPool(pool);
    const migratable = ['api', 'web', 'worker', 'cache', 'solo'].map((n) => uniqueName(n));
    const replicas = [3, 2, 2, 1, 1];
    for (const [i, name] of migratable.entries()) {
      await create(
        namespace,
        appDeployment({
          namespace,
          name,
          replicas: replicas[i],
          annotations: OPT_IN,
          nodeSelector: selector,
          strategy: i === 0 ? { type: 'Recreate' } : undefined,
        }),
      );
    }
    // Services in front of two of them: their endpoints must list the new pods before success.
    for (const name of migratable.slice(0, 2)) {
      await t.core.createNamespacedService({
        namespace,
        body: { metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] } },
      });
    }
    const invalid = uniqueName('badoverride');
    await create(
      namespace,
      appDeployment({ namespace, name: invalid, replicas: 1, annotations: { ...OPT_IN, 'spot-orchestrator/rollout-timeout': 'soon' }, nodeSelector: selector }),
    );
    const notOptedIn = uniqueName('other');
    await create(namespace, appDeployment({ namespace, name: notOptedIn, replicas: 1, nodeSelector: selector }));
    const noFargate = uniqueName('nofargate');
    await create(
      namespace,
      appDeployment({
        namespace,
        name: noFargate,
        replicas: 1,
        annotations: { ...OPT_IN, 'spot-orchestrator/allow-fargate': 'false' },
        nodeSelector: selector,
      }),
    );
    const refused = uniqueName('hostport');
    await create(
      namespace,
      appDeployment({
        namespace,
        name: refused,
        replicas: 1,
        annotations: OPT_IN,
        nodeSelector: selector,
        spec: { containers: [{ name: 'app', image: 'registry.example/app:1.0', ports: [{ containerPort: 8080, hostPort: 8080 }] }] },
      }),
    );
    const paused = uniqueName('paused');
    await create(namespace, appDeployment({ namespace, name: paused, replicas: 2, annotations: OPT_IN, nodeSelector: selector }));
    const moving = [...migratable, invalid];
    const untouched = [notOptedIn, noFargate, refused, paused];
    const all = [...moving, ...untouched];
    await allReady(namespace, all);
    // Paused once running: no rollout of it can start, so moving it would only wait out the window.
    await t.apps.patchNamespacedDeployment({ namespace, name: paused, body: { spec: { paused: true } } }, MERGE_PATCH);
    const before = new Map<string, V1Deployment>();
    for (const name of all) before.set(name, await t.apps.readNamespacedDeployment({ name, namespace }));

    const sampler = new ReadinessSampler();
    await sampler.start(t, namespace);
    const interruption = await injector.interrupt(nodes);

    // AWS sends one warning per instance; the three arrive together and are told as one interruption.
    const considered = [...moving, noFargate, refused, paused];
    const byName = await eventually(
      'a summary for every Deployment',
      async () => {
        const outcomes = new Map(c.alerter.of('migration_summary').flatMap((s) => s.outcomes.map((o) => [o.name, o] as const)));
        return considered.every((n) => outcomes.has(n)) ? outcomes : undefined;
      },
      60_000,
    );
    sampler.stop();
    const detected = c.alerter.of('interruption_detected');
    assert.equal(detected.length, 1, `one announcement for the three warnings: ${detected.map((d) => d.eventId).join(', ')}`);
    assert.deepEqual(detected[0]!.instances.map((i) => i.node).sort(), [...nodes].sort());
    assert.equal(c.alerter.of('migration_summary').length, 1, 'one summary for the three warnings');
    for (const name of moving) {
      const outcome = byName.get(name);
      assert.equal(outcome?.result, 'migrated', `${name}: ${JSON.stringify(outcome)}`);
    }
    assert.equal(byName.get(noFargate)?.result, 'skipped');
    assert.equal(byName.get(refused)?.result, 'skipped');
    const pausedOutcome = byName.get(paused);
    assert.equal(pausedOutcome?.result, 'skipped');
    assert.equal(pausedOutcome?.result === 'skipped' && pausedOutcome.reason, 'paused');
    assert.match(pausedOutcome?.result === 'skipped' ? pausedOutcome.detail : '', /pods on the interrupted nodes will be lost/, 'the alert says what is lost');
    assert.equal(byName.has(notOptedIn), false, 'a Deployment that did not opt in is not even considered');
    const finishedAt = Date.now();
    assert.ok(
      finishedAt < interruption.terminatesAt.getTime(),
      `all healthy on Fargate ${finishedAt - interruption.terminatesAt.getTime()} ms after the instances died`,
    );

    for (const name of moving) {
      const d = await t.apps.readNamespacedDeployment({ name, namespace });
      const a = d.metadata!.annotations!;
      assert.equal(a['spot-orchestrator/state'], 'fargate');
      assert.equal(a['spot-orchestrator/reason'], 'spot-interruption');
      assert.match(a['spot-orchestrator/migrated-at'] ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(a['spot-orchestrator/phase'], undefined, 'no move left in flight');
      assert.equal(d.spec?.template.metadata?.labels?.['compute-type'], 'fargate');
      assert.deepEqual(d.spec?.template.spec?.nodeSelector, { 'eks.amazonaws.com/nodegroup': pool }, 'only the spot entry is removed');
      assert.deepEqual(d.spec?.strategy, before.get(name)!.spec?.strategy, 'the Deployment gets its own strategy back');
      const pods = (await podsOf(t, namespace, name)).filter((p) => !p.metadata?.deletionTimestamp);
      assert.equal(pods.length, d.spec?.replicas);
      for (const pod of pods) {
        assert.ok(isPodReady(pod));
        assert.match(pod.spec?.nodeName ?? '', /^fargate-ip-/);
      }
      assert.ok(
        (sampler.lowestReady.get(name) ?? 0) >= (d.spec?.replicas ?? 1),
        `${name} dipped to ${sampler.lowestReady.get(name)} ready of ${d.spec?.replicas}`,
      );
      assert.ok((sampler.lowestAvailable.get(name) ?? 0) >= (d.spec?.replicas ?? 1));
      assert.ok(writers(d).includes(USER_AGENT), `the API server names the controller's writes after it: ${writers(d).join(', ')}`);
    }
    for (const name of untouched) {
      const d = await t.apps.readNamespacedDeployment({ name, namespace });
      assert.deepEqual(d.spec?.template, before.get(name)!.spec?.template, `${name} left untouched`);
      assert.equal(d.metadata?.annotations?.['spot-orchestrator/state'], undefined);
      // Skipped ones carry only Events, never a write (what the fault suite's audit relies on).
      assert.ok(!writers(d).includes(USER_AGENT) && writers(d).includes(GROUND_USER_AGENT), `${name} written by ${writers(d).join(', ')}`);
    }
    const skippedEvents = async (name: string) => (await eventsFor(namespace, name)).filter((e) => e.reason === 'MigrationSkipped').map((e) => e.message);
    assert.match((await skippedEvents(noFargate)).join(), /allow_fargate_false/);
    assert.match((await skippedEvents(refused)).join(), /fargate_refuses.*hostPort/);
    assert.match((await skippedEvents(paused)).join(), /^paused: .* is paused \(spec\.paused\)/);
    assert.match(
      (await eventsFor(namespace, invalid))
        .filter((e) => e.reason === 'InvalidOverride')
        .map((e) => e.message)
        .join(),
      /rollout-timeout/,
    );
    for (const node of nodes) {
      const n = await t.core.readNode({ name: node }).catch(() => undefined);
      if (n) assert.equal(n.spec?.unschedulable, true, `${node} cordoned`);
    }
    assert.ok(await eventually('the queue to be empty', async () => ((await queueIsEmpty(c)) ? true : undefined)));
    await interruption.terminated;
  });

  it('does no harm with a duplicate delivery and deletes a malformed message', async () => {
    const { pool, nodes } = await poolNodes(1);
    const name = uniqueName('dup');
    await create(namespace, appDeployment({ namespace, name, replicas: 2, annotations: OPT_IN, nodeSelector: pinnedToPool(pool) }));
    await allReady(namespace, [name]);
    const node = await t.core.readNode({ name: nodes[0]! });
    const instanceId = node.spec!.providerID!.split('/').pop()!;
    const body = buildSpotInterruption({ instanceId, time: new Date(), region: t.ground.region, account: t.ground.account, zone: 'us-east-1a' });
    const sqs = new SQSClient(awsClientConfig(t.ground));
    await sqs.send(new SendMessageCommand({ QueueUrl: c.queueUrl, MessageBody: '{"detail-type": "EC2 Spot Instance Interruption Warning", "detail": 42' }));
    await sqs.send(new SendMessageCommand({ QueueUrl: c.queueUrl, MessageBody: body }));
    await sqs.send(new SendMessageCommand({ QueueUrl: c.queueUrl, MessageBody: body }));
    await eventually(
      'healthy on Fargate',
      async () => {
        const d = await t.apps.readNamespacedDeployment({ name, namespace });
        const a = d.metadata?.annotations ?? {};
        return a['spot-orchestrator/state'] === 'fargate' && !a['spot-orchestrator/phase'] ? d : undefined;
      },
      30_000,
    );
    await eventually('the queue to be empty', async () => ((await queueIsEmpty(c)) ? true : undefined));
    const d = await t.apps.readNamespacedDeployment({ name, namespace });
    // One move patch and one strategy restore: the duplicate changed nothing.
    assert.equal(d.metadata?.generation, 3);
    assert.ok(
      c.logs.some((l) => l.includes('malformed message') && l.includes('messageId')),
      'malformed message logged with its id',
    );
    await injector.terminateNode(nodes[0]!);
  });

  it('rolls back, on its own, a Deployment whose Fargate rollout cannot complete', async () => {
    const { pool, nodes } = await poolNodes(2);
    const broken = uniqueName('broken');
    const healthy = uniqueName('healthy');
    const selector = pinnedToPool(pool);
    await create(
      namespace,
      appDeployment({
        namespace,
        name: broken,
        replicas: 2,
        annotations: { ...OPT_IN, 'spot-orchestrator/rollout-timeout': '3s' },
        podAnnotations: { 'testground.spot-fargate.io/never-ready-on': 'fargate' },
        nodeSelector: selector,
        spec: {
          affinity: {
            podAntiAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: broken } }, topologyKey: 'kubernetes.io/hostname' }],
            },
          },
        },
      }),
    );
    await create(
      namespace,
      appDeployment({ namespace, name: healthy, replicas: 1, annotations: OPT_IN, nodeSelector: { ...selector, 'kubernetes.io/hostname': nodes[0]! } }),
    );
    await allReady(namespace, [broken, healthy]);
    const original = await t.apps.readNamespacedDeployment({ name: broken, namespace });
    // One of the two nodes is interrupted; the other stays, so there is spot capacity to go back to.
    const interruption = await injector.interrupt([nodes[0]!], { terminate: false });
    const rollbacks = await eventually(
      'a rollback alert',
      async () => c.alerter.of('rollback').find((a) => a.deployment.name === broken && a.to === 'spot'),
      60_000,
    );
    assert.match(rollbacks.reason, /back on spot/);
    const d = await eventually('the rolled back Deployment settled', async () => {
      const cur = await t.apps.readNamespacedDeployment({ name: broken, namespace });
      return cur.metadata?.annotations?.['spot-orchestrator/phase'] === undefined ? cur : undefined;
    });
    assert.equal(d.metadata?.annotations?.['spot-orchestrator/state'], 'spot');
    assert.equal(d.metadata?.annotations?.['spot-orchestrator/reason'], 'rollback');
    assert.deepEqual(d.spec?.template, original.spec?.template, 'the template it had before');
    assert.deepEqual(d.spec?.strategy, original.spec?.strategy);
    const other = await eventually('the healthy Deployment on Fargate', async () => {
      const cur = await t.apps.readNamespacedDeployment({ name: healthy, namespace });
      return cur.metadata?.annotations?.['spot-orchestrator/state'] === 'fargate' && !cur.metadata?.annotations?.['spot-orchestrator/phase'] ? cur : undefined;
    });
    assert.equal(other.spec?.template.metadata?.labels?.['compute-type'], 'fargate', 'the other Deployment carried on');
    assert.ok((await eventsFor(namespace, broken)).some((e) => e.reason === 'RolledBack'));
    void interruption;
    for (const n of nodes) await injector.terminateNode(n);
  });

  it('keeps the Fargate template when no healthy spot node is left to roll back to', async () => {
    const { pool, nodes } = await poolNodes(1);
    const name = uniqueName('stranded');
    await create(
      namespace,
      appDeployment({
        namespace,
        name,
        replicas: 1,
        annotations: { ...OPT_IN, 'spot-orchestrator/rollout-timeout': '2s' },
        podAnnotations: { 'testground.spot-fargate.io/never-ready-on': 'fargate' },
        nodeSelector: pinnedToPool(pool),
      }),
    );
    await allReady(namespace, [name]);
    const original = await t.apps.readNamespacedDeployment({ name, namespace });
    await injector.interrupt(nodes, { terminate: false });
    const alert = await eventually('the rollback-skipped alert', async () => c.alerter.of('rollback').find((a) => a.deployment.name === name), 60_000);
    assert.equal(alert.to, 'none');
    const d = await eventually('the phase cleared', async () => {
      const cur = await t.apps.readNamespacedDeployment({ name, namespace });
      return cur.metadata?.annotations?.['spot-orchestrator/phase'] === undefined ? cur : undefined;
    });
    assert.equal(d.metadata?.annotations?.['spot-orchestrator/state'], 'fargate');
    assert.equal(d.spec?.template.metadata?.labels?.['compute-type'], 'fargate', 'still on the Fargate template');
    assert.equal(d.spec?.strategy?.rollingUpdate?.maxUnavailable, 0, 'no running pod is taken down');
    assert.ok((await eventsFor(namespace, name)).some((e) => e.reason === 'RollbackSkipped'));
    // The old pod still serves on its node, so the move's strategy must stay while it runs.
    await sleep(3000);
    const held = await t.apps.readNamespacedDeployment({ name, namespace });
    assert.equal(held.spec?.strategy?.rollingUpdate?.maxUnavailable, 0, 'kept while a pod of the older ReplicaSet runs');
    assert.ok(!(await eventsFor(namespace, name)).some((e) => e.reason === 'StrategyRestored'));
    // The instance dies with the old pod: nothing is left to protect, and the next rollout must not surge to twice the pods.
    await injector.terminateNode(nodes[0]!);
    const restored = await eventually('its own strategy back', async () => {
      const cur = await t.apps.readNamespacedDeployment({ name, namespace });
      return cur.spec?.strategy?.rollingUpdate?.maxUnavailable !== 0 ? cur : undefined;
    });
    assert.deepEqual(restored.spec?.strategy, original.spec?.strategy);
    // What the old ReplicaSet does once its pod is gone: it recreates it, and with its pool gone the
    // pod stays Pending. It serves nothing, so it must not hold the strategy (CI met this case).
    const recreated = await eventually('the old ReplicaSet to recreate its pod', async () =>
      (await podsOf(t, namespace, name)).find((p) => p.metadata?.labels?.['compute-type'] !== 'fargate' && !p.metadata?.deletionTimestamp),
    );
    assert.equal(recreated.spec?.nodeName, undefined, 'Pending: nowhere to run');
    assert.equal(restored.spec?.template.metadata?.labels?.['compute-type'], 'fargate', 'still on the Fargate template');
    assert.equal(restored.metadata?.annotations?.['spot-orchestrator/state'], 'fargate');
    await eventually('a StrategyRestored Event', async () => (await eventsFor(namespace, name)).find((e) => e.reason === 'StrategyRestored'));
  });
});
