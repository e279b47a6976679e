// Waiting for a quiet machine before a clock starts. A ground keeps working after a setup or a
// teardown says it is done (the namespace controller's deletions, the deployment controller's status
// writes, KWOK's heartbeats catching up), and on two cores that leftover work can halve the API
// server's share of the CPU. A measurement started in it measures the leftover, not what it names:
// the floor varied from 3.5 to 7 s at the same N for this reason. The load average cannot tell, as it
// trails by a minute; the idle share of /proc/stat over the last second can.
import { readFile } from 'node:fs/promises';
import { sleep } from './context.js';

export interface CpuTimes {
  idle: number;
  total: number;
}

/** The machine-wide line of /proc/stat as idle (idle + iowait) and total jiffies. */
export function parseProcStat(text: string): CpuTimes {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) throw new Error('no "cpu " line in /proc/stat');
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  if (fields.length < 4 || fields.some((f) => !Number.isFinite(f))) throw new Error(`unreadable /proc/stat cpu line: "${line}"`);
  // guest and guest_nice (fields 9 and 10) are already counted in user and nice.
  const total = fields.slice(0, 8).reduce((a, f) => a + f, 0);
  return { idle: fields[3]! + (fields[4] ?? 0), total };
}

/** Share of CPU time idle between two readings, 0..1 (1 when no time passed). */
export function idleShare(before: CpuTimes, after: CpuTimes): number {
  const total = after.total - before.total;
  return total <= 0 ? 1 : (after.idle - before.idle) / total;
}

export interface Quiet {
  /** Seconds waited for the machine to become quiet. */
  waitedSeconds: number;
  /** Idle share of the CPU over the last second before the clock started, in %. */
  idlePct: number;
  /** False when the wait gave up: the measurement ran on a busy machine, and says so. */
  quiet: boolean;
}

export interface QuietOptions {
  /** Idle share each second must reach (default 0.85: on two cores, less than 0.3 of a core busy). */
  threshold?: number;
  /** Consecutive quiet seconds needed (default 3). */
  seconds?: number;
  /** Longest wait (default 120 s), after which the measurement goes ahead and is marked busy. */
  maxWaitMs?: number;
  read?: () => Promise<string>;
  wait?: (ms: number) => Promise<void>;
}

export async function awaitQuietMachine(say: (line: string) => void, options: QuietOptions = {}): Promise<Quiet> {
  const { threshold = 0.85, seconds = 3, maxWaitMs = 120_000, read = () => readFile('/proc/stat', 'utf8'), wait = sleep } = options;
  let waited = 0;
  let prev = parseProcStat(await read());
  let run = 0;
  let last = 1;
  let announced = false;
  for (;;) {
    await wait(1000);
    waited += 1000;
    const cur = parseProcStat(await read());
    last = idleShare(prev, cur);
    prev = cur;
    run = last >= threshold ? run + 1 : 0;
    const result = { waitedSeconds: Math.round(waited / 100) / 10, idlePct: Math.round(last * 1000) / 10 };
    if (run >= seconds) {
      if (announced) say(`quiet after ${result.waitedSeconds} s (${result.idlePct} % idle)`);
      return { ...result, quiet: true };
    }
    if (waited >= maxWaitMs) {
      say(`the machine did not become quiet in ${maxWaitMs / 1000} s (${result.idlePct} % idle); measuring anyway, marked busy`);
      return { ...result, quiet: false };
    }
    if (!announced && waited >= 5000) {
      say(`waiting for a quiet machine (${result.idlePct} % idle, ${Math.round(threshold * 100)} % wanted for ${seconds} s)`);
      announced = true;
    }
  }
}
