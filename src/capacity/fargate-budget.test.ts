import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forecastLaunches, tokenAtMs } from './fargate-budget.js';

const EKS_ONLY = { burst: 20, ratePerSecond: 20, startEstimateMs: 60_000 };

describe('Fargate launch forecast', () => {
  it('gives the burst at once, then one token every 1/rate seconds', () => {
    assert.equal(tokenAtMs(0, EKS_ONLY), 0);
    assert.equal(tokenAtMs(19, EKS_ONLY), 0);
    assert.equal(tokenAtMs(20, EKS_ONLY), 50);
    assert.equal(tokenAtMs(39, EKS_ONLY), 1000);
  });

  it('about 1,220 pods can be Ready inside a 120 s warning with a 60 s start', () => {
    const f = forecastLaunches([{ key: 'big', launches: 5000 }], EKS_ONLY, 120_000);
    assert.equal(f.launchesNeeded, 5000);
    assert.equal(f.launchesInTime, 20 + 60 * 20);
    assert.equal(f.expectedWhole, 0);
  });

  it('marks whole the Deployments whose last replica is Ready by the deadline, in launch order', () => {
    const budget = { burst: 2, ratePerSecond: 1, startEstimateMs: 10_000 };
    // Launch tokens: 0, 0, 1 s, 2 s, 3 s, 4 s ...
    const f = forecastLaunches(
      [
        { key: 'a', launches: 2 },
        { key: 'b', launches: 1 },
        { key: 'c', launches: 3 },
      ],
      budget,
      12_000,
    );
    assert.deepEqual(
      f.deployments.map((d) => [d.key, d.readyAfterMs, d.whole]),
      [
        ['a', 10_000, true],
        ['b', 11_000, true],
        ['c', 14_000, false],
      ],
    );
    assert.deepEqual([f.expectedWhole, f.expectedLate, f.launchesNeeded, f.launchesInTime], [2, 1, 6, 4]);
  });

  it('nothing is in time when the start alone outlasts the window', () => {
    const f = forecastLaunches([{ key: 'a', launches: 1 }], EKS_ONLY, 30_000);
    assert.deepEqual([f.launchesInTime, f.expectedWhole], [0, 0]);
  });
});
