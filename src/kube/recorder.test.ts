// The Event recorder against an in-memory CoreV1Api: writes are bounded, a flood past the waiting
// limit is dropped with one log line per thousand (never queued without end), repeats bump count, and
// a failed write is logged, not thrown. (Against a real API server: test/e2e/operations.test.ts.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';
import { capturingLog } from '../log-test-support.js';
import { EventRecorder } from './recorder.js';

/** Creates and patches Events in memory; each call waits for `release()` while `held` is set. */
function fakeCore(options: { failCreates?: boolean } = {}) {
  let inFlight = 0;
  let maxInFlight = 0;
  let held = true;
  const waiting: (() => void)[] = [];
  const created: CoreV1Event[] = [];
  const patches: { name: string; body: { count: number } }[] = [];
  const gate = async () => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    if (held) await new Promise<void>((r) => waiting.push(r));
    inFlight--;
  };
  const core = {
    createNamespacedEvent: async ({ body }: { body: CoreV1Event }) => {
      await gate();
      if (options.failCreates) throw Object.assign(new Error('etcdserver: request timed out'), { code: 500 });
      const event = { ...body, metadata: { ...body.metadata, name: `${body.metadata!.generateName}${created.length}` } };
      created.push(event);
      return event;
    },
    patchNamespacedEvent: async ({ name, body }: { name: string; body: { count: number } }) => {
      await gate();
      patches.push({ name, body });
      return {};
    },
  } as unknown as CoreV1Api;
  return {
    core,
    created,
    patches,
    get maxInFlight() {
      return maxInFlight;
    },
    release() {
      held = false;
      for (const r of waiting.splice(0)) r();
    },
  };
}

const settle = async (recorder: EventRecorder) => {
  while (recorder.pending > 0) await new Promise((r) => setTimeout(r, 1));
};

describe('EventRecorder', () => {
  it('writes at most writesAtOnce Events at a time and drops past maxPending, logging the drop', async () => {
    const fake = fakeCore();
    const { log, lines } = capturingLog();
    const recorder = new EventRecorder(fake.core, log, 'default', false, { writesAtOnce: 3, maxPending: 50 });
    for (let i = 0; i < 2000; i++) recorder.record({ kind: 'Deployment', namespace: 'shop', name: `d${i}` }, 'Normal', 'MigratingToFargate', `move ${i}`);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(fake.maxInFlight, 3);
    // 3 being written + 50 waiting; the other 1947 were dropped, and said so twice (the 1st and 1001st).
    assert.equal(recorder.pending, 53);
    const drops = lines.filter((l) => l.msg.includes('dropping'));
    assert.deepEqual(
      drops.map((l) => l.dropped),
      [1, 1001],
    );
    fake.release();
    await settle(recorder);
    assert.equal(fake.created.length, 53);
    assert.equal(fake.maxInFlight, 3);
    assert.deepEqual(
      fake.created.slice(0, 3).map((e) => e.involvedObject.name),
      ['d0', 'd1', 'd2'],
    );
  });

  it('bumps count on a repeat instead of creating a second Event; Node Events go to the configured namespace', async () => {
    const fake = fakeCore();
    fake.release();
    const { log } = capturingLog();
    const recorder = new EventRecorder(fake.core, log, 'kube-system');
    const node = { kind: 'Node', name: 'ip-10-0-1-5.ec2.internal' } as const;
    recorder.record(node, 'Warning', 'SpotInterruptionWarning', 'terminating at 12:00');
    await settle(recorder);
    recorder.record(node, 'Warning', 'SpotInterruptionWarning', 'terminating at 12:00');
    await settle(recorder);
    assert.equal(fake.created.length, 1);
    assert.equal(fake.created[0]!.metadata!.namespace, 'kube-system');
    assert.deepEqual(
      fake.patches.map((p) => p.body.count),
      [2],
    );
  });

  it('writes a Node Event outside default as a new-style Event (eventTime with microseconds, reportingInstance, action), as the API server requires there', async () => {
    const fake = fakeCore();
    fake.release();
    const recorder = new EventRecorder(fake.core, capturingLog().log, 'kube-system', false, undefined, undefined, 'sfo-7d9c-abcde');
    recorder.record({ kind: 'Node', name: 'ip-10-0-1-5.ec2.internal' }, 'Warning', 'SpotInterruption', 'terminating at 12:00');
    recorder.record({ kind: 'Deployment', namespace: 'shop', name: 'cart' }, 'Normal', 'MigratedToFargate', 'done');
    await settle(recorder);
    const [node, deployment] = fake.created;
    assert.match(String(node!.eventTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.equal(node!.reportingInstance, 'sfo-7d9c-abcde');
    assert.equal(node!.action, 'SpotInterruption');
    assert.equal(deployment!.eventTime, undefined, "Events in the object's own namespace stay as they were");

    const legacy = fakeCore();
    legacy.release();
    const inDefault = new EventRecorder(legacy.core, capturingLog().log, 'default');
    inDefault.record({ kind: 'Node', name: 'n1' }, 'Warning', 'SpotInterruption', 'x');
    await settle(inDefault);
    assert.equal(legacy.created[0]!.eventTime, undefined, 'in default, as kubelet writes them');
  });

  it('logs a write that fails, with the object it was about, and goes on', async () => {
    const fake = fakeCore({ failCreates: true });
    fake.release();
    const { log, lines } = capturingLog();
    const recorder = new EventRecorder(fake.core, log);
    recorder.record({ kind: 'Deployment', namespace: 'shop', name: 'cart' }, 'Normal', 'MigratedToFargate', 'done');
    await settle(recorder);
    const failure = lines.find((l) => l.msg === 'could not record a Kubernetes Event');
    assert.ok(failure, 'no log line for the failed write');
    assert.equal(failure.object, 'Deployment/shop/cart');
    assert.match(String(failure.err), /request timed out/);
  });

  it('writes nothing in dry-run mode', async () => {
    const fake = fakeCore();
    fake.release();
    const recorder = new EventRecorder(fake.core, capturingLog().log, 'default', true);
    recorder.record({ kind: 'Deployment', namespace: 'shop', name: 'cart' }, 'Normal', 'MigratedToFargate', 'done');
    await settle(recorder);
    assert.equal(fake.created.length, 0);
  });

  it('holds every write while phase 1 is in flight, then writes what was recorded meanwhile', async () => {
    const fake = fakeCore();
    fake.release();
    const recorder = new EventRecorder(fake.core, capturingLog().log);
    let endFirst!: () => void;
    let endSecond!: () => void;
    recorder.holdWhile(new Promise<void>((r) => (endFirst = r)));
    recorder.holdWhile(new Promise<void>((r) => (endSecond = r)));
    recorder.record({ kind: 'Deployment', namespace: 'shop', name: 'cart' }, 'Normal', 'MigratingToFargate', 'moving');
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(fake.created.length, 0, 'nothing written while a phase 1 is in flight');
    endFirst();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(fake.created.length, 0, 'nor while another one still is');
    endSecond();
    await settle(recorder);
    assert.deepEqual(
      fake.created.map((e) => e.reason),
      ['MigratingToFargate'],
    );
    recorder.holdWhile(Promise.reject(new Error('phase 1 failed')));
    recorder.record({ kind: 'Deployment', namespace: 'shop', name: 'cart' }, 'Warning', 'MigrationSkipped', 'skipped');
    await settle(recorder);
    assert.equal(fake.created.length, 2, 'a failed phase 1 releases the hold too');
  });
});
