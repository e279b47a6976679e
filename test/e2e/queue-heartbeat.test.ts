// The visibility heartbeat against a real SQS server (moto on the ground): while a warning is being
// handled for longer than the visibility timeout, no other receiver (a second replica, a restarted
// controller) gets it, and it is deleted once the handler says the work is safely started. The
// control case drops the heartbeat calls, as a controller that died would: the message must come
// back (to the rival or to the source's own next receive) within about one timeout, which shows the
// first case is the heartbeat's doing and not moto's.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { queueDepth } from '../../testground/src/aws.js';
import { awsClientConfig } from '../../testground/src/ground.js';
import { SAMPLES_DIR } from '../../src/events/test-support.js';
import { QueueSource, type QueueClient } from '../../src/intake/queue-source.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const VISIBILITY_S = 2;
/** Three and a half visibility timeouts: without renewals the message would be handed out again. */
const HANDLING_MS = 7_000;
const WARNING = readFileSync(new URL('spot-interruption-warning.json', SAMPLES_DIR), 'utf8');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SQS visibility heartbeat (moto)', () => {
  const sqs = new SQSClient(awsClientConfig(t.ground));
  let queueUrl: string;
  before(async () => {
    // The queue's own timeout is long: only the receive's and the heartbeat's 2 s apply.
    ({ QueueUrl: queueUrl } = (await sqs.send(new CreateQueueCommand({ QueueName: uniqueName('heartbeatq'), Attributes: { VisibilityTimeout: '300' } }))) as {
      QueueUrl: string;
    });
  });
  after(async () => {
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
  });

  /**
   * Handles one warning for HANDLING_MS while a rival receiver polls the same queue. Returns every
   * delivery of the message after the first, to the rival or to the source itself (it keeps
   * receiving while it handles), with the time since the handling began.
   */
  async function handleWhileRivalPolls(client: QueueClient) {
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: WARNING }));
    const metrics = createMetrics();
    let handlingStarted = 0;
    let firstDone = false;
    const redeliveries: { to: 'rival' | 'source'; afterMs: number }[] = [];
    const source = new QueueSource({
      sqs: client,
      queueUrl,
      log: pino({ level: 'silent' }),
      metrics,
      errorBackoffMs: 200,
      waitTimeSeconds: 1,
      visibilityTimeoutSeconds: VISIBILITY_S,
      handle: async () => {
        if (handlingStarted) {
          redeliveries.push({ to: 'source', afterMs: Date.now() - handlingStarted });
          return { ack: false };
        }
        handlingStarted = Date.now();
        await sleep(HANDLING_MS);
        firstDone = true;
        return { ack: true };
      },
    });
    source.start();
    try {
      while (!handlingStarted) await sleep(50);
      while (!firstDone && redeliveries.length === 0) {
        const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
        if (out.Messages?.length) redeliveries.push({ to: 'rival', afterMs: Date.now() - handlingStarted });
      }
      while (!firstDone) await sleep(50);
    } finally {
      await source.stop();
    }
    return { redeliveries, metrics };
  }

  it('keeps a message hidden from other receivers for as long as it is handled, then deletes it', async () => {
    const { redeliveries, metrics } = await handleWhileRivalPolls(sqs);
    assert.deepEqual(redeliveries, [], 'the message was delivered again while it was being handled');
    assert.deepEqual(await queueDepth(t.ground, queueUrl), { visible: 0, hidden: 0 }, 'the message was not deleted after the handler acknowledged it');
    const deleted = await metrics.registry.getSingleMetricAsString('spot_orchestrator_queue_messages_deleted_total');
    assert.match(deleted, /kind="spot_interrupted"} 1/);
  });

  it('control: without the heartbeat (a controller that died) the message comes back within about one timeout', async () => {
    const noHeartbeat: QueueClient = {
      send: ((command: unknown, options?: unknown) => {
        if (command instanceof ChangeMessageVisibilityCommand) return Promise.resolve({});
        return (sqs.send as (c: unknown, o?: unknown) => Promise<unknown>)(command, options);
      }) as QueueClient['send'],
    };
    const { redeliveries } = await handleWhileRivalPolls(noHeartbeat);
    assert.ok(redeliveries.length >= 1, 'the message never came back');
    const back = redeliveries[0]!.afterMs;
    assert.ok(back >= (VISIBILITY_S - 1) * 1000 && back < (VISIBILITY_S + 3) * 1000, `came back after ${back} ms, to the ${redeliveries[0]!.to}`);
  });
});
