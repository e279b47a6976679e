// The SQS intake against an in-memory queue client: visibility heartbeats while a message is handled,
// deletion only after the handler says so, and a clear line when IAM refuses the heartbeat.
// (Against a real SQS server: test/e2e/*, through moto.)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ChangeMessageVisibilityCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { SAMPLES_DIR } from '../events/test-support.js';
import { capturingLog } from '../log-test-support.js';
import { createMetrics } from '../metrics/metrics.js';
import { QueueSource, type QueueClient } from './queue-source.js';

const WARNING = readFileSync(new URL('spot-interruption-warning.json', SAMPLES_DIR), 'utf8');

interface Call {
  command: string;
  input: Record<string, unknown>;
}

/** Hands out `messages` once, then long-polls empty; records every call. */
function fakeQueue(messages: Message[], refuse?: { ChangeMessageVisibility?: Error }) {
  const calls: Call[] = [];
  let served = false;
  const sqs: QueueClient = {
    send: (async (command: { constructor: { name: string }; input: Record<string, unknown> }, options?: { abortSignal?: AbortSignal }) => {
      const name = command.constructor.name.replace(/Command$/, '');
      calls.push({ command: name, input: command.input });
      if (command instanceof ReceiveMessageCommand) {
        if (!served) {
          served = true;
          return { Messages: messages };
        }
        await new Promise<void>((resolve) => options?.abortSignal?.addEventListener('abort', () => resolve(), { once: true }));
        throw Object.assign(new Error('aborted'), { name: 'AbortError' });
      }
      if (command instanceof ChangeMessageVisibilityCommand && refuse?.ChangeMessageVisibility) throw refuse.ChangeMessageVisibility;
      if (command instanceof DeleteMessageBatchCommand) return { Successful: [{ Id: '0' }], Failed: [] };
      return {};
    }) as QueueClient['send'],
  };
  return { sqs, calls };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('QueueSource', () => {
  it('receives with its own visibility timeout and renews it while a long phase 1 runs, then deletes', async () => {
    const { sqs, calls } = fakeQueue([{ MessageId: 'm1', ReceiptHandle: 'rh-1', Body: WARNING }]);
    const { log } = capturingLog();
    let handled!: () => void;
    const done = new Promise<void>((r) => (handled = r));
    const source = new QueueSource({
      sqs,
      queueUrl: 'http://sqs.local/000000000000/q',
      log,
      metrics: createMetrics(),
      errorBackoffMs: 10,
      visibilityTimeoutSeconds: 0.3,
      handle: async () => {
        await sleep(450); // longer than the visibility timeout
        handled();
        return { ack: true };
      },
    });
    source.start();
    await done;
    await sleep(20);
    await source.stop();

    const receive = calls.find((c) => c.command === 'ReceiveMessage')!;
    assert.equal(receive.input.VisibilityTimeout, 0.3);
    const heartbeats = calls.filter((c) => c.command === 'ChangeMessageVisibility');
    assert.ok(heartbeats.length >= 3, `expected a heartbeat every 100 ms over 450 ms, got ${heartbeats.length}`);
    for (const h of heartbeats) assert.deepEqual({ handle: h.input.ReceiptHandle, timeout: h.input.VisibilityTimeout }, { handle: 'rh-1', timeout: 0.3 });
    const deleteAt = calls.findIndex((c) => c.command === 'DeleteMessageBatch');
    assert.ok(deleteAt > calls.lastIndexOf(heartbeats.at(-1)!), 'deleted after the last heartbeat, not before the work');
    const countAtStop = calls.filter((c) => c.command === 'ChangeMessageVisibility').length;
    await sleep(250);
    assert.equal(calls.filter((c) => c.command === 'ChangeMessageVisibility').length, countAtStop, 'no heartbeat after the message is done');
  });

  it('leaves a message whose work did not start safely, without deleting it', async () => {
    const { sqs, calls } = fakeQueue([{ MessageId: 'm2', ReceiptHandle: 'rh-2', Body: WARNING }]);
    const { log, lines } = capturingLog();
    let handled!: () => void;
    const done = new Promise<void>((r) => (handled = r));
    const source = new QueueSource({
      sqs,
      queueUrl: 'q',
      log,
      metrics: createMetrics(),
      errorBackoffMs: 10,
      visibilityTimeoutSeconds: 30,
      handle: async () => (handled(), { ack: false }),
    });
    source.start();
    await done;
    await source.stop();
    assert.equal(calls.filter((c) => c.command === 'DeleteMessageBatch').length, 0);
    assert.ok(lines.some((l) => l.msg === 'work not safely started; leaving the message for redelivery'));
  });

  it('says once, clearly, when IAM refuses the heartbeat, and stops asking', async () => {
    const denied = Object.assign(new Error('User is not authorized to perform: sqs:changemessagevisibility'), { name: 'AccessDenied' });
    const { sqs, calls } = fakeQueue(
      [
        { MessageId: 'a', ReceiptHandle: 'rh-a', Body: WARNING },
        { MessageId: 'b', ReceiptHandle: 'rh-b', Body: WARNING },
      ],
      { ChangeMessageVisibility: denied },
    );
    const { log, lines } = capturingLog();
    let count = 0;
    let handled!: () => void;
    const done = new Promise<void>((r) => (handled = r));
    const source = new QueueSource({
      sqs,
      queueUrl: 'q',
      log,
      metrics: createMetrics(),
      errorBackoffMs: 10,
      visibilityTimeoutSeconds: 0.15,
      handle: async () => {
        await sleep(400);
        if (++count === 2) handled();
        return { ack: true };
      },
    });
    source.start();
    await done;
    await source.stop();
    const refusals = lines.filter((l) => /does not allow sqs:ChangeMessageVisibility/.test(l.msg));
    assert.equal(refusals.length, 1, 'logged once');
    assert.ok(calls.filter((c) => c.command === 'ChangeMessageVisibility').length <= 2, 'at most one refused attempt per message in flight');
    assert.equal(calls.filter((c) => c.command === 'DeleteMessageBatch').length, 2, 'both messages still deleted after their work');
  });

  it('answers readiness at once: the first receive, and the first after a failure, do not long-poll', async () => {
    const waits: unknown[] = [];
    const ticks: boolean[] = [];
    let receives = 0;
    let stopped!: () => void;
    const enough = new Promise<void>((r) => (stopped = r));
    const sqs: QueueClient = {
      send: (async (command: { input: Record<string, unknown> }) => {
        if (!(command instanceof ReceiveMessageCommand)) return {};
        waits.push(command.input.WaitTimeSeconds);
        receives++;
        if (receives === 3) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4566'), { name: 'Error' });
        if (receives === 5) stopped();
        return { Messages: [] };
      }) as QueueClient['send'],
    };
    const source = new QueueSource({
      sqs,
      queueUrl: 'q',
      log: capturingLog().log,
      metrics: createMetrics(),
      errorBackoffMs: 5,
      waitTimeSeconds: 20,
      visibilityTimeoutSeconds: 30,
      onTick: (ok) => ticks.push(ok),
      handle: async () => ({ ack: true }),
    });
    source.start();
    await enough;
    await source.stop();
    assert.deepEqual(waits.slice(0, 5), [0, 20, 20, 0, 20]);
    assert.deepEqual(ticks.slice(0, 4), [true, true, false, true]);
  });
});
