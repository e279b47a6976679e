// The Fargate simulator's settings, as cluster-up resolves them from the environment and writes them
// into ground.json (so the simulator, the tests and the benchmark read the same values):
//
// | variable                     | default       | meaning                                                      |
// |------------------------------|---------------|--------------------------------------------------------------|
// | TESTGROUND_FARGATE_BURST     | 20            | launch throttle: tokens when full (AWS, EKS-only accounts)   |
// | TESTGROUND_FARGATE_RATE      | 20            | launch throttle: tokens per simulated second                 |
// | TESTGROUND_FARGATE_START     | uniform:50-75 | start-up time per pod, seconds at time scale 1 (timing.ts)   |
// | TESTGROUND_FARGATE_SEED      | random        | seed of the start-up draws; cluster-up prints it for replays |
//
// The rate is in simulated time: at TESTGROUND_TIME_SCALE 0.1 every simulated second lasts 100 ms,
// so 20 launches a simulated second are 200 a real one, just as the start-up times shrink tenfold.
import { DEFAULT_START, parseStartDistribution, type StartDistribution } from './timing.js';
import type { TokenBucketSettings } from './token-bucket.js';

/** As written into ground.json: the raw values, so one parser (below) serves every reader. */
export interface RawFargateSettings {
  burst?: string;
  rate?: string;
  start?: string;
  seed?: string;
}

export interface FargateSettings {
  /** In simulated time (per second at time scale 1). */
  throttle: TokenBucketSettings;
  /** Real milliseconds at time scale 1. */
  start: StartDistribution;
  seed: number;
}

export const DEFAULT_THROTTLE: TokenBucketSettings = { burst: 20, perSecond: 20 };

function integer(name: string, text: string, min: number, max: number): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isInteger(v) || v < min || v > max) throw new Error(`${name}: "${text}" is not an integer in [${min}, ${max}]`);
  return v;
}

export function parseFargateSettings(raw: RawFargateSettings = {}): FargateSettings {
  const perSecond = raw.rate === undefined ? DEFAULT_THROTTLE.perSecond : Number(raw.rate);
  if (!(Number.isFinite(perSecond) && perSecond > 0)) throw new Error(`TESTGROUND_FARGATE_RATE: "${raw.rate}" is not a number > 0`);
  let start: StartDistribution;
  try {
    start = raw.start === undefined ? DEFAULT_START : parseStartDistribution(raw.start);
  } catch (cause) {
    throw new Error(`TESTGROUND_FARGATE_START: ${(cause as Error).message}`, { cause });
  }
  if (raw.seed === undefined) throw new Error('TESTGROUND_FARGATE_SEED: no seed (cluster-up picks one when the variable is unset)');
  return {
    throttle: { burst: raw.burst === undefined ? DEFAULT_THROTTLE.burst : integer('TESTGROUND_FARGATE_BURST', raw.burst, 1, 1_000_000), perSecond },
    start,
    seed: integer('TESTGROUND_FARGATE_SEED', raw.seed, 0, 2 ** 32 - 1),
  };
}

/** The throttle in real time on a ground whose simulated delays are multiplied by `timeScale`. */
export function realThrottle(throttle: TokenBucketSettings, timeScale: number): TokenBucketSettings {
  return { burst: throttle.burst, perSecond: throttle.perSecond / timeScale };
}
