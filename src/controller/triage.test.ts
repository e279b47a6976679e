import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Stakes, stakeReason, triageOrder } from './triage.js';

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
