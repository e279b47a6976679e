// A small seeded generator (mulberry32) for the simulator's random draws, so that a run's start-up
// times replay from its printed seed. Not for anything that needs to be unpredictable.

export type Random = () => number;

/** Numbers in [0, 1), the same sequence for the same 32-bit seed. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed for a run that names none: any 32-bit value. */
export function freshSeed(): number {
  return Math.floor(Math.random() * 4294967296);
}
