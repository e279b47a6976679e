// The SQS intake against an in-memory queue client: visibility heartbeats while a message is handled,
// deletion only after the handler says so, a clear line when IAM refuses the heartbeat, and messages
// for instances outside this cluster deleted or kept, with one warning when they are many.
// (Against a real SQS server: test/e2e/*, through moto.)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ChangeMessageVisibilityCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { SAMPLES_DIR } from '../events/test-support.js';
import { capturingLog } from '../log-test-support.js';
import { createMetrics } from '../metrics/metrics.js';
import { SHARED_QUEUE_FOREIGN_MESSAGES } from './foreign-messages.js';
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

  /** Runs the source over `messages`, every one foreign, until each has been handled and acted on. */
  async function foreignBatch(messages: Message[], keepForeign: boolean) {
    const { sqs, calls } = fakeQueue(messages);
    const { log, lines } = capturingLog();
    const metrics = createMetrics();
    let handled = 0;
    let all!: () => void;
    const done = new Promise<void>((r) => (all = r));
    const source = new QueueSource({
      sqs,
      queueUrl: 'q',
      log,
      metrics,
      errorBackoffMs: 10,
      visibilityTimeoutSeconds: 30,
      keepForeign,
      handle: async () => {
        if (++handled === messages.length) all();
        return { ack: true, foreign: true };
      },
    });
    source.start();
    await done;
    await source.stop();
    return { calls, lines, metrics };
  }

  const warnings = (n: number) => Array.from({ length: n }, (_, i) => ({ MessageId: `f${i}`, ReceiptHandle: `rh-f${i}`, Body: WARNING }));
  const SHARED_LINE = /^many messages for instances not in this cluster/;

  it('deletes foreign messages by default, and says once that the queue looks shared when they are many', async () => {
    const { calls, lines, metrics } = await foreignBatch(warnings(SHARED_QUEUE_FOREIGN_MESSAGES + 3), false);
    assert.equal(calls.filter((c) => c.command === 'DeleteMessageBatch').length, SHARED_QUEUE_FOREIGN_MESSAGES + 3);
    assert.equal(calls.filter((c) => c.command === 'ChangeMessageVisibility').length, 0);
    const shared = lines.filter((l) => SHARED_LINE.test(l.msg));
    assert.equal(shared.length, 1, 'once, not per message');
    assert.equal(shared[0]!.level, 40, 'at warn');
    assert.equal(shared[0]!.msg, 'many messages for instances not in this cluster: the queue looks shared with another cluster');
    assert.equal(shared[0]!.foreignMessages, SHARED_QUEUE_FOREIGN_MESSAGES);
    assert.equal(shared[0]!.windowSeconds, 600);
    assert.match(String(shared[0]!.detail), /its own queue.*aws\.keep_foreign_messages = true \(SQS_KEEP_FOREIGN_MESSAGES\)/);
    const foreign = await metrics.messagesForeign.get();
    const count = (action: string) => foreign.values.find((v) => v.labels.kind === 'spot_interrupted' && v.labels.action === action)?.value;
    assert.deepEqual([count('deleted'), count('released'), count('held')], [SHARED_QUEUE_FOREIGN_MESSAGES + 3, 0, 0]);
  });

  it('with keepForeign, never deletes a foreign message: makes it visible again at once for its owner', async () => {
    const { calls, lines, metrics } = await foreignBatch(warnings(SHARED_QUEUE_FOREIGN_MESSAGES), true);
    assert.equal(calls.filter((c) => c.command === 'DeleteMessageBatch').length, 0);
    const changes = calls.filter((c) => c.command === 'ChangeMessageVisibility').map((c) => [c.input.ReceiptHandle, c.input.VisibilityTimeout]);
    assert.deepEqual(
      changes.sort(),
      warnings(SHARED_QUEUE_FOREIGN_MESSAGES)
        .map((m) => [m.ReceiptHandle, 0])
        .sort(),
    );
    const shared = lines.filter((l) => SHARED_LINE.test(l.msg));
    assert.equal(shared.length, 1);
    assert.equal(shared[0]!.level, 30, 'the operator chose to share: info, not warn');
    assert.equal(shared[0]!.keepForeign, true);
    const released = (await metrics.messagesForeign.get()).values.find((v) => v.labels.kind === 'spot_interrupted' && v.labels.action === 'released');
    assert.equal(released?.value, SHARED_QUEUE_FOREIGN_MESSAGES);
  });

  it('with keepForeign, a message for this cluster is still deleted after its work', async () => {
    const { sqs, calls } = fakeQueue([{ MessageId: 'own', ReceiptHandle: 'rh-own', Body: WARNING }]);
    let handled!: () => void;
    const done = new Promise<void>((r) => (handled = r));
    const source = new QueueSource({
      sqs,
      queueUrl: 'q',
      log: capturingLog().log,
      metrics: createMetrics(),
      errorBackoffMs: 10,
      visibilityTimeoutSeconds: 30,
      keepForeign: true,
      handle: async () => (handled(), { ack: true, foreign: false }),
    });
    source.start();
    await done;
    await source.stop();
    assert.deepEqual(
      calls.filter((c) => c.command === 'DeleteMessageBatch').map((c) => (c.input.Entries as { ReceiptHandle: string }[])[0]!.ReceiptHandle),
      ['rh-own'],
    );
  });

  describe('event trust', () => {
    const ORIGIN = { account: '210987654321', region: 'eu-west-1', maxAgeMs: 600_000 };
    /** The sample warning (account 210987654321, eu-west-1, 2026-11-24T16:52:12Z), judged at `now`. */
    async function judged(bodies: string[], now: Date, keepForeign = false) {
      const messages = bodies.map((Body, i) => ({ MessageId: `t${i}`, ReceiptHandle: `rh-t${i}`, Body }));
      const { sqs, calls } = fakeQueue(messages);
      const { log, lines } = capturingLog();
      const metrics = createMetrics();
      const handled: string[] = [];
      const source = new QueueSource({
        sqs,
        queueUrl: 'https://sqs.eu-west-1.amazonaws.com/210987654321/q',
        log,
        metrics,
        errorBackoffMs: 10,
        visibilityTimeoutSeconds: 30,
        keepForeign,
        trust: ORIGIN,
        clock: { now: () => now, sleep: async (ms) => void (await sleep(ms)), setRepeating: () => ({ cancel() {} }) },
        handle: async (event) => (handled.push(event.id), { ack: true }),
      });
      source.start();
      const settled = () => calls.filter((c) => c.command === 'DeleteMessageBatch' || c.command === 'ChangeMessageVisibility').length + handled.length;
      for (let i = 0; i < 200 && settled() < messages.length; i++) await sleep(5);
      await source.stop();
      const dropped = async (reason: string) =>
        (await metrics.eventsDropped.get()).values.find((v) => v.labels.kind === 'spot_interrupted' && v.labels.reason === reason)?.value;
      return { calls, lines, handled, dropped };
    }
    const withAccount = (account: string) => WARNING.replace('"210987654321"', `"${account}"`);

    it('hands a fresh event of the expected account and Region to the handler', async () => {
      const { handled, dropped } = await judged([WARNING], new Date('2026-11-24T16:53:00Z'));
      assert.deepEqual(handled, ['9c3f1a72-5d0e-4b8a-a1f6-2e7d4c90b315']);
      assert.equal(await dropped('stale'), 0);
    });

    it('deletes a stale event without handling it, counts it, and says why in one line', async () => {
      const { calls, lines, handled, dropped } = await judged([WARNING], new Date('2026-11-27T16:52:12Z'));
      assert.deepEqual(handled, [], 'the handler never saw it');
      assert.equal(calls.filter((c) => c.command === 'DeleteMessageBatch').length, 1);
      assert.equal(await dropped('stale'), 1);
      const line = lines.filter((l) => l.msg === 'event older than aws.max_event_age; dropped without acting on it');
      assert.equal(line.length, 1);
      assert.equal(line[0]!.level, 40);
      assert.equal(line[0]!.reason, 'stale');
      assert.deepEqual(line[0]!.instances, ['i-07c4e2a9d1b3f5e68']);
    });

    it('drops a flood of foreign-account events with one log line, and counts every one', async () => {
      const { calls, lines, handled, dropped } = await judged(
        Array.from({ length: 10 }, () => withAccount('999999999999')),
        new Date('2026-11-24T16:53:00Z'),
      );
      assert.deepEqual(handled, []);
      assert.equal(calls.filter((c) => c.command === 'DeleteMessageBatch').length, 10);
      assert.equal(await dropped('foreign_account'), 10);
      assert.equal(lines.filter((l) => l.msg === 'event from another AWS account; dropped without acting on it').length, 1, 'rate-limited');
    });

    it("with keepForeign, leaves another account's event in the queue for its owner, and still deletes a stale one", async () => {
      const now = new Date('2026-11-24T16:53:00Z');
      const { calls, handled } = await judged([withAccount('999999999999')], now, true);
      assert.deepEqual(handled, []);
      assert.equal(calls.filter((c) => c.command === 'DeleteMessageBatch').length, 0);
      assert.deepEqual(
        calls.filter((c) => c.command === 'ChangeMessageVisibility').map((c) => c.input.VisibilityTimeout),
        [0],
      );
      const stale = await judged([WARNING], new Date('2026-11-27T16:52:12Z'), true);
      assert.equal(stale.calls.filter((c) => c.command === 'DeleteMessageBatch').length, 1);
    });
  });
});
