import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseFargateSettings, realThrottle } from './settings.js';

describe('Fargate simulator settings', () => {
  it('defaults to the EKS-only bucket and 50-75 s starts', () => {
    assert.deepEqual(parseFargateSettings({ seed: '7' }), {
      throttle: { burst: 20, perSecond: 20 },
      start: { kind: 'uniform', minMs: 50_000, maxMs: 75_000 },
      seed: 7,
    });
  });

  it('reads every setting', () => {
    assert.deepEqual(parseFargateSettings({ burst: '100', rate: '0.5', start: 'fixed:45', seed: '4294967295' }), {
      throttle: { burst: 100, perSecond: 0.5 },
      start: { kind: 'fixed', ms: 45_000 },
      seed: 4294967295,
    });
  });

  it('names the variable that is wrong', () => {
    assert.throws(() => parseFargateSettings({ seed: '1', burst: '0' }), /TESTGROUND_FARGATE_BURST/);
    assert.throws(() => parseFargateSettings({ seed: '1', burst: '2.5' }), /TESTGROUND_FARGATE_BURST/);
    assert.throws(() => parseFargateSettings({ seed: '1', rate: '0' }), /TESTGROUND_FARGATE_RATE/);
    assert.throws(() => parseFargateSettings({ seed: '1', rate: 'fast' }), /TESTGROUND_FARGATE_RATE/);
    assert.throws(() => parseFargateSettings({ seed: '1', start: 'soon' }), /TESTGROUND_FARGATE_START/);
    assert.throws(() => parseFargateSettings({ seed: '-1' }), /TESTGROUND_FARGATE_SEED/);
    assert.throws(() => parseFargateSettings({}), /TESTGROUND_FARGATE_SEED/);
  });

  it('turns the simulated rate into a real one with the time scale; the burst is a count and stays', () => {
    assert.deepEqual(realThrottle({ burst: 20, perSecond: 20 }, 0.1), { burst: 20, perSecond: 200 });
    assert.deepEqual(realThrottle({ burst: 20, perSecond: 20 }, 1), { burst: 20, perSecond: 20 });
  });
});
