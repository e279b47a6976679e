// How long EKS takes from launching a Fargate pod (a token taken, see token-bucket.ts) to its micro-VM
// running it. AWS quotes 50-90 s from creation to Ready with no image cache; each pod draws its own
// time from a distribution, in real (unscaled) milliseconds, from the simulator's seeded generator.
import type { Random } from './random.js';

export type StartDistribution = { kind: 'fixed'; ms: number } | { kind: 'uniform'; minMs: number; maxMs: number };

/** The default start-up time: uniform over 50-75 s at time scale 1. */
export const DEFAULT_START: StartDistribution = { kind: 'uniform', minMs: 50_000, maxMs: 75_000 };

/**
 * Parses a start-up distribution as TESTGROUND_FARGATE_START spells it, in seconds at time scale 1:
 * `uniform:50-75` (every value in [50, 75) equally likely) or `fixed:45` (always 45 s).
 */
export function parseStartDistribution(text: string): StartDistribution {
  const seconds = (s: string) => {
    const v = Number(s);
    if (s.trim() === '' || !Number.isFinite(v) || v < 0) throw new Error(`"${s}" is not a number of seconds >= 0`);
    return Math.round(v * 1000);
  };
  const [kind, args, ...rest] = text.trim().split(':');
  if (rest.length === 0 && kind === 'fixed' && args !== undefined) return { kind: 'fixed', ms: seconds(args) };
  if (rest.length === 0 && kind === 'uniform' && args !== undefined) {
    const bounds = args.split('-');
    if (bounds.length === 2) {
      const [minMs, maxMs] = bounds.map(seconds) as [number, number];
      if (minMs > maxMs) throw new Error(`uniform:${args}: the lower bound is above the upper`);
      return { kind: 'uniform', minMs, maxMs };
    }
  }
  throw new Error(`unknown start-up distribution "${text}": expected uniform:<min s>-<max s> or fixed:<s>`);
}

export function describeStart(d: StartDistribution): string {
  return d.kind === 'fixed' ? `fixed ${d.ms} ms` : `uniform ${d.minMs}-${d.maxMs} ms`;
}

/** One pod's start-up time in real milliseconds (scale it with the ground's time scale). */
export function drawStartMs(d: StartDistribution, random: Random): number {
  return d.kind === 'fixed' ? d.ms : d.minMs + Math.floor(random() * (d.maxMs - d.minMs));
}
