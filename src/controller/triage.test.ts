import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { StakeQueue, type Stakes, stakeReason, triageOrder } from './triage.js';

const stakes = (key: string, o: Partial<Stakes> = {}): Stakes => ({ key, replicas: 3, ready: 3, readyOnDoomed: 1, behindService: false, priority: 0, ...o });

describe('triage', () => {
  it('puts first what would hit zero, then what is behind a Service, then priority, then fewer replicas', () => {
    const order = triageOrder([
      stakes('plain-big', { replicas: 5, ready: 5 }),
      stakes('plain-small', { replicas: 1, ready: 1, readyOnDoomed: 0 }),
      stakes('served', { behindService: true }),
      stakes('important', { priority: 1000 }),
      stakes('all-on-doomed', { readyOnDoomed: 3 }),
      stakes('all-on-doomed-important', { readyOnDoomed: 3, priority: 10 }),
    ]);
    assert.deepEqual(
      order.map((s) => s.key),
      ['all-on-doomed-important', 'all-on-doomed', 'served', 'important', 'plain-small', 'plain-big'],
    );
  });

  it('a Deployment with nothing Ready counts as one that would hit zero', () => {
    assert.equal(stakeReason(stakes('down', { ready: 0, readyOnDoomed: 0 })), 'would-hit-zero');
  });

  it('is a permutation, stable whatever the arrival order', () => {
    const arb = fc.uniqueArray(
      fc.record({
        key: fc.string({ minLength: 1, maxLength: 6 }),
        replicas: fc.integer({ min: 1, max: 10 }),
        ready: fc.integer({ min: 0, max: 10 }),
        readyOnDoomed: fc.integer({ min: 0, max: 10 }),
        behindService: fc.boolean(),
        priority: fc.integer({ min: -10, max: 10 }),
      }),
      { selector: (s) => s.key, maxLength: 30 },
    );
    fc.assert(
      fc.property(arb, (all) => {
        const order = triageOrder(all);
        assert.deepEqual(order.map((s) => s.key).sort(), all.map((s) => s.key).sort());
        assert.deepEqual(triageOrder([...all].reverse()), order);
      }),
    );
  });
});

describe('StakeQueue', () => {
  /** Runs tasks that end when released, recording the order they start in. */
  function harness(concurrency: number, byStakes: boolean) {
    const queue = new StakeQueue(concurrency, byStakes);
    const started: string[] = [];
    const releases = new Map<string, () => void>();
    const submit = (s: Stakes) =>
      queue.run(
        s,
        () =>
          new Promise<void>((resolve) => {
            started.push(s.key);
            releases.set(s.key, resolve);
          }),
      );
    const release = async (key: string) => {
      releases.get(key)!();
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    };
    return { submit, release, started };
  }

  it('gives a freed slot to the waiting task with most at stake, whichever warning queued it', async () => {
    const { submit, release, started } = harness(1, true);
    // The first warning's tasks, then a second warning's, queued while the first one runs.
    const all = [
      submit(stakes('first-a', { replicas: 1 })),
      submit(stakes('first-b', { replicas: 5 })),
      submit(stakes('second-zero', { readyOnDoomed: 3 })),
      submit(stakes('second-served', { behindService: true })),
    ];
    assert.deepEqual(started, ['first-a'], 'one at a time');
    for (const key of ['first-a', 'second-zero', 'second-served', 'first-b']) await release(key);
    await Promise.all(all);
    assert.deepEqual(started, ['first-a', 'second-zero', 'second-served', 'first-b']);
  });

  it('with triage off, starts tasks in the order they were queued', async () => {
    const { submit, release, started } = harness(1, false);
    const all = [submit(stakes('a', { replicas: 5 })), submit(stakes('b', { replicas: 5 })), submit(stakes('c', { readyOnDoomed: 3 }))];
    for (const key of ['a', 'b', 'c']) await release(key);
    await Promise.all(all);
    assert.deepEqual(started, ['a', 'b', 'c']);
  });

  it('runs at most `concurrency` tasks at once, and a failed task frees its slot', async () => {
    const queue = new StakeQueue(2, true);
    let running = 0;
    let most = 0;
    const task = (fail: boolean) => async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 2));
      running--;
      if (fail) throw new Error('refused');
    };
    const results = await Promise.allSettled(Array.from({ length: 7 }, (_, i) => queue.run(stakes(`d${i}`), task(i % 3 === 0))));
    assert.equal(most, 2);
    assert.equal(results.filter((r) => r.status === 'rejected').length, 3);
  });
});
