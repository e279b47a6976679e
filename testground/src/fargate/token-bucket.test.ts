import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('starts full: a burst of launches goes at once, the next waits', () => {
    const b = new TokenBucket({ burst: 20, perSecond: 20 }, 0);
    for (let i = 0; i < 20; i++) assert.equal(b.tryTake(0), true, `launch ${i}`);
    assert.equal(b.tryTake(0), false);
    assert.equal(b.msUntilToken(0), 50);
  });

  it('refills at the rate, a token every 1/rate seconds', () => {
    const b = new TokenBucket({ burst: 2, perSecond: 4 }, 1000);
    assert.ok(b.tryTake(1000) && b.tryTake(1000));
    assert.equal(b.tryTake(1249), false);
    assert.equal(b.msUntilToken(1249), 1);
    assert.equal(b.tryTake(1250), true);
    assert.equal(b.tryTake(1250), false);
  });

  it('holds at most the burst however long it sat idle', () => {
    const b = new TokenBucket({ burst: 3, perSecond: 10 }, 0);
    assert.equal(b.available(3_600_000), 3);
    let taken = 0;
    while (b.tryTake(3_600_000)) taken++;
    assert.equal(taken, 3);
  });

  it('sustains exactly the rate under constant demand', () => {
    const b = new TokenBucket({ burst: 20, perSecond: 20 }, 0);
    let launched = 0;
    for (let t = 0; t <= 10_000; t += 10) while (b.tryTake(t)) launched++;
    assert.equal(launched, 20 + 200);
  });

  it('ignores a clock that steps back', () => {
    const b = new TokenBucket({ burst: 1, perSecond: 1 }, 5000);
    assert.equal(b.tryTake(5000), true);
    assert.equal(b.tryTake(1000), false);
    assert.equal(b.msUntilToken(1000), 1000);
    assert.equal(b.tryTake(6000), true);
  });

  it('refuses settings that make no bucket', () => {
    assert.throws(() => new TokenBucket({ burst: 0, perSecond: 1 }, 0), /burst/);
    assert.throws(() => new TokenBucket({ burst: 1.5, perSecond: 1 }, 0), /burst/);
    assert.throws(() => new TokenBucket({ burst: 1, perSecond: 0 }, 0), /rate/);
    assert.throws(() => new TokenBucket({ burst: 1, perSecond: Number.NaN }, 0), /rate/);
  });
});
