// AWS's Fargate launch throttle: a token bucket per account and Region. A launch takes a token; the
// bucket refills continuously at `perSecond` up to `burst` ("Fargate throttling quotas": burst 20 and
// 20 launches a second for accounts that launch only EKS pods). Time is passed in (ms, any origin),
// so the bucket is pure and the simulator decides whether its milliseconds are real or scaled.

export interface TokenBucketSettings {
  /** Tokens the bucket holds when full, and starts with. */
  burst: number;
  /** Tokens added per second of the caller's time. */
  perSecond: number;
}

// Fractions of a token are summed in floating point; a token short by less than this is a whole
// token, so 10 refills of 0.1 make one launch and not one a millisecond later.
const EPSILON = 1e-9;

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly settings: TokenBucketSettings,
    now: number,
  ) {
    if (!(Number.isInteger(settings.burst) && settings.burst >= 1)) throw new Error(`burst must be an integer >= 1, got ${settings.burst}`);
    if (!(Number.isFinite(settings.perSecond) && settings.perSecond > 0)) throw new Error(`rate must be > 0 per second, got ${settings.perSecond}`);
    this.tokens = settings.burst;
    this.last = now;
  }

  private refill(now: number): void {
    // A clock that steps back adds nothing rather than taking tokens away.
    if (now > this.last) {
      this.tokens = Math.min(this.settings.burst, this.tokens + ((now - this.last) * this.settings.perSecond) / 1000);
      this.last = now;
    }
  }

  /** Takes a token if one is there. */
  tryTake(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1 - EPSILON) return false;
    this.tokens = Math.max(0, this.tokens - 1);
    return true;
  }

  /** Milliseconds from `now` until a whole token is there (0 when one is). */
  msUntilToken(now: number): number {
    this.refill(now);
    return this.tokens >= 1 - EPSILON ? 0 : Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.settings.perSecond - EPSILON * 1000));
  }

  /** Whole tokens available at `now`. */
  available(now: number): number {
    this.refill(now);
    return Math.floor(this.tokens + EPSILON);
  }
}
