// A seeded random source for the fault suite: every random kill point, delay and garbage body comes
// from FAULTS_SEED, so a failing run can be replayed exactly (the seed is printed with the figures).
export const FAULTS_SEED: number = (() => {
  const fromEnv = Number(process.env.FAULTS_SEED);
  return Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : 1 + Math.floor(Math.random() * 2 ** 31);
})();

/** Short form (`make test`): fewer iterations, and the load scenario at a tenth of its size or less. */
export const FAULTS_SHORT = process.env.FAULTS_SHORT === '1' || process.env.FAULTS_SHORT === 'true';

export function full<T>(fullValue: T, shortValue: T): T {
  return FAULTS_SHORT ? shortValue : fullValue;
}

export class Random {
  private state: number;

  /** `stream` separates the scenarios, so adding draws to one does not move the others. */
  constructor(stream: string, seed = FAULTS_SEED) {
    let h = seed >>> 0;
    for (const c of stream) h = Math.imul(h ^ c.charCodeAt(0), 2654435761) >>> 0;
    this.state = h || 1;
  }

  /** mulberry32: in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(values: readonly T[]): T {
    return values[Math.floor(this.next() * values.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }
}
