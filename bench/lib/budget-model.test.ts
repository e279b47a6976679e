import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../../testground/src/fargate/random.js';
import { drawStartMs } from '../../testground/src/fargate/timing.js';
import { TokenBucket } from '../../testground/src/fargate/token-bucket.js';
import { type BudgetDeployment, budgetOptimum, drawnStarts, launchTimes, scheduleOutcome, slotReadyTimes, triageOrder } from './budget-model.js';

const T = { burst: 20, perSecond: 20 };
const dep = (name: string, replicas: number, survivors = 0): BudgetDeployment => ({ name, replicas, survivors });

describe('budget model', () => {
  it('launches as the simulator bucket lets them: the burst at once, then one per 1/rate s', () => {
    const times = launchTimes(45, T);
    assert.deepEqual(times.slice(0, 20), Array(20).fill(0));
    assert.equal(times[20], 0.05);
    assert.equal(times[39], 1);
    // The same as the ground's TokenBucket asked at those times.
    const bucket = new TokenBucket(T, 0);
    for (const t of times) assert.ok(bucket.tryTake(Math.round(t * 1000)), `a token at ${t} s`);
    assert.ok(!bucket.tryTake(Math.round(times[44]! * 1000)));
  });

  it('reproduces the draws of the seeded sequence from an offset', () => {
    const start = { kind: 'uniform' as const, minMs: 50_000, maxMs: 75_000 };
    const random = seededRandom(1234);
    const all = Array.from({ length: 30 }, () => drawStartMs(start, random) / 1000);
    assert.deepEqual(drawnStarts(1234, 10, 20, start), all.slice(10));
    for (const s of all) assert.ok(s >= 50 && s < 75);
  });

  it('bounds hit zero by the good slots, and wholes by the smallest needs first', () => {
    // 6 slots: good, good, good, bad, good, bad.
    const ready = [10, 10, 10, 200, 10, 200];
    const ds = [dep('a', 2), dep('b', 1), dep('c', 1, 0), dep('d', 2, 1)];
    const m = budgetOptimum(ds, ready, 120);
    assert.equal(m.launches, 6);
    assert.equal(m.goodSlots, 4);
    assert.equal(m.atRisk, 3);
    assert.equal(m.fewestHitZero, 0);
    // needs: a 2, b 1, c 1, d 1 -> 1 + 1 + 1 fit in 4, then 2 does not.
    assert.equal(m.mostWhole, 3);
  });

  it('counts at-risk Deployments beyond the good slots as lost', () => {
    const ready = [10, 200, 200, 200, 200];
    const m = budgetOptimum([dep('a', 1), dep('b', 1), dep('c', 3)], ready, 120);
    assert.equal(m.goodSlots, 1);
    assert.equal(m.fewestHitZero, 2);
    assert.equal(m.mostWhole, 1);
  });

  it('orders at risk first, then by launches needed, and replays that order over consecutive slots', () => {
    const ds = [dep('big', 3, 2), dep('risky-2', 2), dep('safe-1', 2, 1), dep('risky-1', 1)];
    assert.deepEqual(
      triageOrder(ds).map((d) => d.name),
      ['risky-1', 'risky-2', 'safe-1', 'big'],
    );
    // Slots: good for the first 3 only.
    const ready = [1, 1, 1, 200, 200, 200, 200, 200];
    assert.deepEqual(scheduleOutcome(triageOrder(ds), ready, 120), { hitZero: 0, whole: 2 });
    // Arrival order puts both risky ones late.
    assert.deepEqual(scheduleOutcome(ds, ready, 120), { hitZero: 2, whole: 1 });
  });

  it('never lets the schedule beat the bound', () => {
    const random = seededRandom(99);
    for (let trial = 0; trial < 200; trial++) {
      const ds = Array.from({ length: 1 + Math.floor(random() * 60) }, (_, i) => {
        const r = 1 + Math.floor(random() * 5);
        return dep(`d${i}`, r, Math.floor(random() * (r + 1)) * Number(random() < 0.6));
      });
      const launches = ds.reduce((s, d) => s + d.replicas, 0);
      const ready = slotReadyTimes(drawnStarts(trial, 0, launches, { kind: 'uniform', minMs: 50_000, maxMs: 75_000 }), { burst: 2, perSecond: 1 });
      const m = budgetOptimum(ds, ready, 70);
      assert.ok(m.schedule.hitZero >= m.fewestHitZero, `trial ${trial}`);
      assert.ok(m.schedule.whole <= m.mostWhole, `trial ${trial}`);
    }
  });
});
