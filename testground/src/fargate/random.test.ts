import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from './random.js';

const draws = (seed: number, n: number) => Array.from({ length: n }, seededRandom(seed));

describe('seededRandom', () => {
  it('replays the same sequence from the same seed', () => {
    assert.deepEqual(draws(12345, 50), draws(12345, 50));
  });

  it('gives other sequences for other seeds, also for seeds past 31 bits', () => {
    assert.notDeepEqual(draws(1, 10), draws(2, 10));
    assert.notDeepEqual(draws(2 ** 32 - 1, 10), draws(2 ** 31 - 1, 10));
  });

  it('draws in [0, 1), spread evenly', () => {
    const values = draws(7, 20_000);
    assert.ok(values.every((v) => v >= 0 && v < 1));
    const buckets = new Array(10).fill(0);
    for (const v of values) buckets[Math.floor(v * 10)]++;
    for (const count of buckets) assert.ok(count > 1800 && count < 2200, `bucket holds ${count} of 20000`);
  });
});
