import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from './random.js';
import { DEFAULT_START, drawStartMs, parseStartDistribution } from './timing.js';

describe('start-up distribution', () => {
  it('parses uniform and fixed, in seconds at time scale 1', () => {
    assert.deepEqual(parseStartDistribution('uniform:50-75'), DEFAULT_START);
    assert.deepEqual(parseStartDistribution(' uniform:0.5-1.25 '), { kind: 'uniform', minMs: 500, maxMs: 1250 });
    assert.deepEqual(parseStartDistribution('fixed:45'), { kind: 'fixed', ms: 45_000 });
  });

  it('refuses what it cannot read, naming the accepted forms', () => {
    for (const bad of ['', 'uniform', 'uniform:75-50', 'uniform:50', 'uniform:-5-10', 'fixed:', 'fixed:abc', 'normal:60', 'fixed:45:1']) {
      assert.throws(() => parseStartDistribution(bad), /start-up distribution|seconds|lower bound/, bad);
    }
  });

  it('draws uniform times inside the bounds, covering them, and the same ones from the same seed', () => {
    const d = parseStartDistribution('uniform:50-75');
    const random = seededRandom(42);
    const times = Array.from({ length: 5000 }, () => drawStartMs(d, random));
    assert.ok(times.every((t) => t >= 50_000 && t < 75_000 && Number.isInteger(t)));
    assert.ok(Math.min(...times) < 50_500 && Math.max(...times) > 74_500);
    const mean = times.reduce((s, t) => s + t, 0) / times.length;
    assert.ok(Math.abs(mean - 62_500) < 500, `mean ${mean}`);
    const again = seededRandom(42);
    assert.deepEqual(
      Array.from({ length: 5000 }, () => drawStartMs(d, again)),
      times,
    );
  });

  it('draws a fixed time every time', () => {
    const random = seededRandom(1);
    assert.deepEqual(
      [1, 2, 3].map(() => drawStartMs({ kind: 'fixed', ms: 45_000 }, random)),
      [45_000, 45_000, 45_000],
    );
  });
});
