// Queue ownership on the ground (real control plane, moto SQS): messages for instances with no Node in
// this cluster ("foreign": another cluster's, when the queue is shared). By default they are deleted,
// and many of them make the controller say once that the queue looks shared. With
// SQS_KEEP_FOREIGN_MESSAGES they stay in the queue for the other cluster's consumer (played here by
// the test), while a warning for this cluster's own node is still handled and deleted.
// The messages are the EventBridge samples of test/fixtures/events/ with other instance and event ids.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { readSample } from '../../src/events/test-support.js';
import { KEPT_FIRST_HIDE_SECONDS, SHARED_QUEUE_FOREIGN_MESSAGES } from '../../src/intake/foreign-messages.js';
import type { ForeignAction } from '../../src/metrics/metrics.js';
import { queueDepth } from '../../testground/src/aws.js';
import { awsClientConfig } from '../../testground/src/ground.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { controllerStarter, type TestController } from '../support/controller.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const sqs = new SQSClient(awsClientConfig(t.ground));
const OPT_IN = { 'spot-orchestrator/enabled': 'true' };
const SHARED_LINE = /^many messages for instances not in this cluster/;

/** Each sample with the ids it carries, so a copy can name another instance and be another event. */
const SAMPLES = [
  { file: 'spot-interruption-warning.json', kind: 'spot_interrupted', instances: ['i-07c4e2a9d1b3f5e68'], id: '9c3f1a72-5d0e-4b8a-a1f6-2e7d4c90b315' },
  {
    file: 'capacity-reservation-interruption-warning.json',
    kind: 'capacity_reservation_interrupted',
    instances: ['i-0d5a8c3e1f7b92460'],
    id: 'b7e2c4d1-0a93-4f6e-9d58-3c1f7a2e6b90',
  },
  { file: 'rebalance-recommendation.json', kind: 'rebalance_recommendation', instances: ['i-07c4e2a9d1b3f5e68'], id: '4b81d6e0-73a2-4f19-9c5e-d08a6f2b17c4' },
  // As an SNS topic delivers it to a subscribed queue.
  { file: 'sns-spot-interruption-warning.json', kind: 'spot_interrupted', instances: ['i-07c4e2a9d1b3f5e68'], id: '0f6a2c48-91d7-4e35-b8a0-5c2e7f14d9a3' },
] as const;

/**
 * The sample, about `instanceId`, as a new event sent at `time` from the ground's account and Region
 * (the controller drops events of any other: intake/event-trust.ts).
 */
function fromSample(sample: (typeof SAMPLES)[number], instanceId: string, time = new Date()): string {
  let body = readSample(sample.file).replaceAll('210987654321', t.ground.account).replaceAll('eu-west-1', t.ground.region);
  for (const id of sample.instances) body = body.replaceAll(id, instanceId);
  const at = time.toISOString().replace(/\.\d{3}Z$/, 'Z');
  // The time of an event as it is, and of one inside an SNS envelope's Message (quotes escaped).
  return body
    .replaceAll(sample.id, randomUUID())
    .replace(/"time": ?"[^"]+"/, `"time": "${at}"`)
    .replace(/\\"time\\":\\"[^\\]+\\"/, `\\"time\\":\\"${at}\\"`);
}

/** A made-up instance id no Node of the ground has. */
const foreignInstance = (n: number) => `i-0f${n.toString(16).padStart(15, '0')}`;

/** `count` messages for foreign instances, the samples in turn. */
function foreignBodies(count: number, from: number): string[] {
  return Array.from({ length: count }, (_, i) => fromSample(SAMPLES[i % SAMPLES.length]!, foreignInstance(from + i)));
}

async function send(queueUrl: string, bodies: string[]): Promise<void> {
  for (let i = 0; i < bodies.length; i += 10) {
    const out = await sqs.send(
      new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: bodies.slice(i, i + 10).map((MessageBody, j) => ({ Id: String(j), MessageBody })) }),
    );
    assert.equal(out.Failed?.length ?? 0, 0, JSON.stringify(out.Failed));
  }
}

const sharedLines = (c: TestController) => c.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => SHARED_LINE.test(String(l.msg)));

async function foreignCount(c: TestController, action: ForeignAction): Promise<number> {
  const values = (await c.controller.ctx.metrics.messagesForeign.get()).values;
  return values.filter((v) => v.labels.action === action).reduce((sum, v) => sum + v.value, 0);
}

async function deletedCount(c: TestController): Promise<number> {
  return (await c.controller.ctx.metrics.messagesDeleted.get()).values.reduce((sum, v) => sum + v.value, 0);
}

describe('queue ownership: messages for instances outside this cluster', () => {
  let namespace: string;
  const { start, stop, stopAll } = controllerStarter(t, () => namespace);
  before(async () => {
    namespace = await createNamespace(t, 'queueown');
  });
  after(async () => {
    injector.cancel();
    await stopAll();
    await deleteNamespace(t, namespace);
  });

  it('default: deletes them, and warns once, when they are many, that the queue looks shared', async () => {
    const c = await start();
    // One short of the threshold: deleted, and no warning yet.
    await send(c.queueUrl, foreignBodies(SHARED_QUEUE_FOREIGN_MESSAGES - 1, 0));
    await eventually('the foreign messages deleted', async () => ((await deletedCount(c)) === SHARED_QUEUE_FOREIGN_MESSAGES - 1 ? true : undefined));
    assert.deepEqual(await queueDepth(t.ground, c.queueUrl), { visible: 0, hidden: 0 });
    assert.equal(sharedLines(c).length, 0, 'no warning below the threshold');

    // The threshold-th: one warn line, naming the count, the window and what to do.
    await send(c.queueUrl, foreignBodies(1, 100));
    const [line] = await eventually('the shared-queue warning', async () => (sharedLines(c).length > 0 ? sharedLines(c) : undefined));
    assert.equal(line!.level, 40, 'at warn');
    assert.equal(line!.msg, 'many messages for instances not in this cluster: the queue looks shared with another cluster');
    assert.equal(line!.foreignMessages, SHARED_QUEUE_FOREIGN_MESSAGES);
    assert.equal(line!.windowSeconds, 600);
    assert.match(String(line!.detail), /its own queue and EventBridge rule.*Karpenter.*aws\.keep_foreign_messages = true \(SQS_KEEP_FOREIGN_MESSAGES\)/);

    // More of them: still deleted, and the warning is not repeated.
    await send(c.queueUrl, foreignBodies(SHARED_QUEUE_FOREIGN_MESSAGES, 200));
    const total = 2 * SHARED_QUEUE_FOREIGN_MESSAGES;
    await eventually('every foreign message deleted', async () => ((await deletedCount(c)) === total ? true : undefined));
    assert.deepEqual(await queueDepth(t.ground, c.queueUrl), { visible: 0, hidden: 0 });
    assert.equal(await foreignCount(c, 'deleted'), total);
    assert.equal(await foreignCount(c, 'released'), 0);
    assert.equal(sharedLines(c).length, 1, 'warned once, not per message');
    await stop(c);
  });

  it('SQS_KEEP_FOREIGN_MESSAGES: leaves them for the other cluster, without spinning on them, and still handles its own', async () => {
    const pool = uniqueName('pool');
    const [node] = await injector.addSpotNodes(1, { name: pool, suffix: '' });
    const providerID = (await t.core.readNode({ name: node! })).spec!.providerID!;
    const ownInstance = providerID.split('/').at(-1)!;
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

    const c = await start({ SQS_KEEP_FOREIGN_MESSAGES: 'true' });
    const foreign = 6;
    await send(c.queueUrl, [...foreignBodies(foreign, 300), fromSample(SAMPLES[0], ownInstance)]);

    // Its own warning: handled (the Deployment moves) and deleted.
    await eventually(
      'the own Deployment moved to Fargate',
      async () =>
        (await t.apps.readNamespacedDeployment({ name, namespace })).metadata?.annotations?.['spot-orchestrator/state'] === 'fargate' ? true : undefined,
      60_000,
    );
    await eventually('the own warning deleted', async () => ((await deletedCount(c)) === 1 ? true : undefined));
    await eventually('every foreign message seen', async () => ((await foreignCount(c, 'released')) === foreign ? true : undefined));

    // The foreign ones: none deleted, and not received over and over. Each is released once and, when
    // the controller's own next receive takes it again, hidden for KEPT_FIRST_HIDE_SECONDS.
    await new Promise((r) => setTimeout(r, 3000));
    const depth = await queueDepth(t.ground, c.queueUrl);
    assert.equal(depth.visible + depth.hidden, foreign, `all ${foreign} still in the queue: ${JSON.stringify(depth)}`);
    assert.equal(await deletedCount(c), 1, 'only its own message deleted');
    const receipts = (await foreignCount(c, 'released')) + (await foreignCount(c, 'held'));
    assert.ok(receipts <= 2 * foreign, `no receive loop on kept messages: ${receipts} receipts of ${foreign} messages in about 3 s`);

    assert.equal(sharedLines(c).length, 0, `${foreign} foreign messages are below the threshold`);

    // They are there for the other cluster's consumer (played by the test, once this controller has
    // stopped receiving so that it does not race it): it receives every one of them, those this
    // controller took twice after KEPT_FIRST_HIDE_SECONDS, and deletes them.
    await c.controller.queue.stop();
    const taken = new Set<string>();
    const deadline = Date.now() + (KEPT_FIRST_HIDE_SECONDS + 15) * 1000;
    while (taken.size < foreign && Date.now() < deadline) {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: c.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30 }));
      for (const m of out.Messages ?? []) {
        assert.doesNotMatch(m.Body!, new RegExp(ownInstance), 'its own warning was deleted, not left');
        taken.add(m.MessageId!);
        await sqs.send(new DeleteMessageCommand({ QueueUrl: c.queueUrl, ReceiptHandle: m.ReceiptHandle! }));
      }
    }
    assert.equal(taken.size, foreign, 'the other consumer received every foreign message');
    assert.deepEqual(await queueDepth(t.ground, c.queueUrl), { visible: 0, hidden: 0 });
    assert.equal(await deletedCount(c), 1, 'the controller deleted none of them');
    await stop(c);
    await injector.terminateNode(node!);
  });
});
