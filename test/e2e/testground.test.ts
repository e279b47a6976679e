// The local test ground behaves as EKS with spot node groups, Fargate profiles and EventBridge -> SQS.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ensureQueueAndRule, removeQueueAndRule } from '../../testground/src/aws.js';
import { awsClientConfig, groundFargateSettings, startBoundsMs } from '../../testground/src/ground.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, isPodReady, podsOf, testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const start = startBoundsMs(groundFargateSettings(t.ground), t.ground.timeScale);

describe('local test ground', () => {
  let namespace: string;
  before(async () => {
    namespace = await createNamespace(t, 'ground');
  });
  after(async () => {
    await deleteNamespace(t, namespace);
  });

  it('has Ready spot and on-demand pools labelled as EKS and Karpenter label them', async () => {
    const nodes = (await t.core.listNode()).items.filter((n) => n.metadata?.labels?.['eks.amazonaws.com/nodegroup']);
    const spot = nodes.filter((n) => n.metadata?.labels?.['eks.amazonaws.com/capacityType'] === 'SPOT');
    const onDemand = nodes.filter((n) => n.metadata?.labels?.['eks.amazonaws.com/capacityType'] === 'ON_DEMAND');
    assert.ok(spot.length >= 2, `expected a spot pool, found ${spot.length} spot nodes`);
    assert.ok(onDemand.length >= 1, `expected an on-demand pool, found ${onDemand.length}`);
    for (const node of nodes) {
      const labels = node.metadata!.labels!;
      const isSpot = labels['eks.amazonaws.com/capacityType'] === 'SPOT';
      assert.equal(labels['karpenter.sh/capacity-type'], isSpot ? 'spot' : 'on-demand');
      assert.match(labels['node.kubernetes.io/instance-type'] ?? '', /^[a-z0-9]+\.[a-z0-9]+$/);
      assert.match(labels['topology.kubernetes.io/zone'] ?? '', /^us-east-1[a-z]$/);
      assert.equal(labels['compute-type'], isSpot ? 'spot' : undefined);
      assert.match(node.spec?.providerID ?? '', new RegExp(`^aws:///${labels['topology.kubernetes.io/zone']}/i-[0-9a-f]{17}$`));
      assert.ok(
        node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        `${node.metadata?.name} not Ready`,
      );
    }
  });

  it('runs pods selected by a Fargate profile on a node of their own, after the start-up time', async () => {
    const name = uniqueName('fg');
    const created = Date.now();
    await t.apps.createNamespacedDeployment({ namespace, body: appDeployment({ namespace, name, replicas: 2, podLabels: { 'compute-type': 'fargate' } }) });
    const pods = await eventually('two Ready Fargate pods', async () => {
      const ps = await podsOf(t, namespace, name);
      return ps.length === 2 && ps.every(isPodReady) ? ps : undefined;
    });
    const elapsed = Date.now() - created;
    assert.ok(elapsed >= start.min, `pods Ready after ${elapsed} ms, before the shortest start-up (${start.min} ms)`);
    const nodeNames = pods.map((p) => p.spec!.nodeName!);
    assert.equal(new Set(nodeNames).size, 2, 'each Fargate pod gets a node of its own');
    for (const pod of pods) {
      assert.equal(pod.spec?.schedulerName, 'fargate-scheduler');
      const node = await t.core.readNode({ name: pod.spec!.nodeName! });
      assert.match(node.metadata!.name!, /^fargate-ip-/);
      assert.equal(node.metadata?.labels?.['eks.amazonaws.com/compute-type'], 'fargate');
      // node.kubernetes.io/not-ready may still be there for a moment: the node is brand new.
      const taints = node.spec?.taints?.map((x) => `${x.key}=${x.value}:${x.effect}`) ?? [];
      assert.ok(taints.includes('eks.amazonaws.com/compute-type=fargate:NoSchedule'), taints.join(', '));
    }
    // The node goes when its pod goes.
    await t.apps.deleteNamespacedDeployment({ name, namespace });
    await eventually('Fargate nodes removed with their pods', async () => {
      const left = (await t.core.listNode()).items.filter((n) => nodeNames.includes(n.metadata!.name!));
      return left.length === 0 ? true : undefined;
    });
  });

  it('keeps a pod Fargate refuses Pending with an Event that says why', async () => {
    const name = uniqueName('priv');
    await t.apps.createNamespacedDeployment({
      namespace,
      body: appDeployment({
        namespace,
        name,
        replicas: 1,
        podLabels: { 'compute-type': 'fargate' },
        spec: { containers: [{ name: 'app', image: 'registry.example/app:1.0', securityContext: { privileged: true } }] },
      }),
    });
    const pod = await eventually('the pod to exist', async () => (await podsOf(t, namespace, name))[0]);
    const event = await eventually('a FailedScheduling event', async () => {
      const events = await t.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${pod.metadata!.name}` });
      return events.items.find((e) => e.reason === 'FailedScheduling');
    });
    assert.match(event.message ?? '', /privileged container "app" is not supported on Fargate/);
    await new Promise((r) => setTimeout(r, start.max + 500));
    const after = await t.core.readNamespacedPod({ name: pod.metadata!.name!, namespace });
    assert.equal(after.status?.phase, 'Pending');
    assert.equal(after.spec?.nodeName, undefined);
  });

  it('delivers an interruption warning through EventBridge to SQS and kills the instance at the deadline', async () => {
    const queueName = uniqueName('q');
    const { queueUrl } = await ensureQueueAndRule(t.ground, queueName);
    const sqs = new SQSClient(awsClientConfig(t.ground));
    const injector = new InterruptionInjector(t.ground, t);
    const [node] = await injector.addSpotNodes(1);
    const name = uniqueName('doomed');
    await t.apps.createNamespacedDeployment({
      namespace,
      body: appDeployment({ namespace, name, replicas: 2, nodeSelector: { 'kubernetes.io/hostname': node! } }),
    });
    await eventually('pods Ready on the doomed node', async () => {
      const ps = await podsOf(t, namespace, name);
      return ps.length === 2 && ps.every(isPodReady) ? ps : undefined;
    });

    const interruption = await injector.interrupt([node!]);
    const [instance] = interruption.instances;
    const message = await eventually('the warning in the queue', async () => {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      return out.Messages?.map((m) => JSON.parse(m.Body!)).find((b) => b.detail?.['instance-id'] === instance!.instanceId);
    });
    assert.equal(message['detail-type'], 'EC2 Spot Instance Interruption Warning');
    assert.equal(message.source, 'aws.ec2');
    assert.equal(message.version, '0');
    assert.equal(message.region, t.ground.region);
    assert.match(message.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(message.detail, { 'instance-id': instance!.instanceId, 'instance-action': 'terminate' });
    assert.deepEqual(message.resources, [`arn:aws:ec2:${instance!.zone}:instance/${instance!.instanceId}`]);
    assert.ok(!Number.isNaN(Date.parse(message.time)));

    // Before the deadline the node is alive; right after it, node and pods are gone.
    assert.ok((await t.core.readNode({ name: node! })).metadata);
    await interruption.terminated;
    assert.ok(Date.now() >= interruption.terminatesAt.getTime());
    await assert.rejects(t.core.readNode({ name: node! }), (err: { code?: number }) => err.code === 404);
    const left = await t.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` });
    assert.equal(left.items.length, 0);
    await removeQueueAndRule(t.ground, queueName, queueUrl);
  });

  it('reuses the cached control-plane binaries on a second start', () => {
    const started = Date.now();
    const out = execFileSync('bash', ['testground/scripts/build-binaries.sh'], { encoding: 'utf8' });
    assert.equal(out.match(/^cached: /gm)?.length, 3, out);
    assert.ok(Date.now() - started < 10_000);
    const again = execFileSync('bash', ['testground/scripts/cluster-up.sh'], { encoding: 'utf8', env: { ...process.env } });
    assert.match(again, /test ground already up/);
  });
});
