import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeFargate, groundFargateSettings, meanStartMs, startBoundsMs } from './ground.js';

describe('the Fargate settings a ground describes', () => {
  const settings = groundFargateSettings({ fargate: { burst: '20', rate: '20', start: 'uniform:50-75', seed: '42' } });

  it('scales start-up times and the refill with the time scale, not the burst', () => {
    assert.deepEqual(startBoundsMs(settings, 0.1), { min: 5000, max: 7500 });
    assert.equal(meanStartMs(settings, 0.1), 6250);
    assert.equal(
      describeFargate(settings, 0.1),
      'launch throttle burst 20, 20 launches/s simulated (200 real); start-up uniform 50000-75000 ms simulated ' +
        '(uniform 5000-7500 ms real, mean start-up 6250 ms); seed 42 (replay with TESTGROUND_FARGATE_SEED=42)',
    );
  });

  it('reads a fixed start, and a ground.json written before these settings as the defaults', () => {
    const fixed = groundFargateSettings({ fargate: { start: 'fixed:45', seed: '1' } });
    assert.deepEqual(startBoundsMs(fixed, 1), { min: 45_000, max: 45_000 });
    assert.deepEqual(groundFargateSettings({}), {
      throttle: { burst: 20, perSecond: 20 },
      start: { kind: 'uniform', minMs: 50_000, maxMs: 75_000 },
      seed: 0,
    });
  });
});
