// The real controller, `spot-orchestrator run`, in a process of its own so that its CPU time and
// peak memory can be read from /proc/<pid>/stat (utime + stime) and /proc/<pid>/status (VmHWM).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { imageCommand } from '../../testground/src/image.js';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureQueueAndRule, removeQueueAndRule } from '../../testground/src/aws.js';
import { bundleController } from '../../scripts/build.js';
import { type Bench, shortId, sleep } from './context.js';
import { freePort } from '../../testground/src/net.js';

export const PROJECT_DIR = new URL('../..', import.meta.url).pathname;
export const BUILD_DIR = join(PROJECT_DIR, 'bench/results/tmp/build');

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface ProcSample {
  cpuSeconds: number;
  rssMiB: number;
  peakRssMiB: number;
}

/** CPU seconds (user + system) and resident memory, current and peak, of a live process. */
export function sampleProc(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { cpuSeconds: (utime + stime) / ticksPerSecond(), rssMiB: kib('VmRSS') / 1024, peakRssMiB: kib('VmHWM') / 1024 };
}

/** The text of a running controller's /metrics; null when it does not answer within 2 s. */
export async function readMetricsText(metricsPort: number): Promise<string | null> {
  try {
    return await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  } catch {
    return null;
  }
}

/**
 * Builds the controller into bench/results/tmp/build the way the image does (scripts/build.ts: one
 * bundle), so the measured process is `node dist/src/cli.js run` without a TypeScript loader in it.
 * Returns the entry point, or undefined when the build fails (the caller falls back to tsx and says so).
 */
export async function buildController(say: (line: string) => void): Promise<string | undefined> {
  try {
    return await bundleController(BUILD_DIR);
  } catch (err) {
    say(`the build of src/ failed; the controller will run through tsx instead: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

export interface RunningController {
  pid: number;
  queueUrl: string;
  logFile: string;
  /** CPU seconds when the warning went out (set by the caller). */
  cpuAtWarning?: number;
  /** Where its /metrics is served (controller.metrics_port). */
  metricsPort: number;
  /** phase1Seconds of every "phase 1 done" line the controller logged. */
  phase1Logged: number[];
  /** When the controller logged its latest Deployment patch (ms since the epoch, its log's clock: this machine's). */
  lastPatchLoggedAt?: number;
  sample(): ProcSample;
  stop(): Promise<{ exitCode: number | null }>;
}

/**
 * The controller as users run it: its default timers (rollout timeout 120 s, verification delay 5 s,
 * health checks 2 s apart) whatever the ground's time scale, namespace mode, JSON logs at info.
 * Recovery to spot and Slack are off: neither is part of the scenario.
 */
export function controllerEnv(b: Bench, namespace: string, queueUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return withoutEmpty({
    // The image's environment first (its glibc tunables), so what is measured is what ships.
    ...imageCommand().env,
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    KUBECONFIG: b.controllerKubeconfig,
    AWS_REGION: b.ground.region,
    AWS_ENDPOINT_URL_SQS: b.ground.sqsEndpoint,
    AWS_ACCESS_KEY_ID: 'testground',
    AWS_SECRET_ACCESS_KEY: 'testground',
    MODE: 'namespace',
    // "*": every namespace (the scaling series' spread over several), watched cluster-wide.
    ...(namespace === '*' ? { NAMESPACES: '*' } : { NAMESPACE: namespace }),
    SQS_QUEUE_URL: queueUrl,
    LOG_FORMAT: 'json',
    LOG_LEVEL: 'info',
    ALERTS_ENABLED: 'false',
    RECOVERY_ENABLED: 'false',
    MAX_CONCURRENT_PATCHES: String(b.options.patchConcurrency),
    ...b.options.controllerEnv,
    ...extra,
  });
}

/**
 * BENCH_CONTROLLER_ENV's `NAME=` (empty) takes NAME out, so a run can compare against glibc's defaults:
 * an empty MALLOC_MMAP_THRESHOLD_ would not mean "the default" to glibc but 0, mapping every block.
 */
export function withoutEmpty(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
}

export async function startController(
  b: Bench,
  namespace: string,
  section: string,
  entry: string | undefined,
  extraEnv: Record<string, string> = {},
  nodeFlags: string[] = imageCommand().nodeFlags,
): Promise<RunningController> {
  const queueName = `bench-${shortId()}`;
  const { queueUrl } = await ensureQueueAndRule(b.ground, queueName);
  const metricsPort = await freePort();
  const logFile = join(b.workDir, `controller-${namespace === '*' ? 'all-namespaces' : namespace}-${queueName}.log`);
  const log = createWriteStream(logFile);
  // The image's node flags by default, so what is measured is what ships (the scaling series can
  // compare others: BENCH_NODE_FLAGS).
  const args = entry ? [...nodeFlags, entry, 'run'] : [...nodeFlags, '--import', 'tsx', join(PROJECT_DIR, 'src/cli.ts'), 'run'];
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd: PROJECT_DIR,
    env: controllerEnv(b, namespace, queueUrl, { METRICS_PORT: String(metricsPort), ...extraEnv }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const phase1Logged: number[] = [];
  const patches: { lastAt?: number } = {};
  let started = false;
  let pending = '';
  const onData = (chunk: Buffer) => {
    log.write(chunk);
    pending += chunk.toString();
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.includes('"controller started"')) started = true;
      if (line.includes('"patched onto Fargate; rollout started"')) {
        try {
          const at = Date.parse((JSON.parse(line) as { time?: string }).time ?? '');
          if (!Number.isNaN(at)) patches.lastAt = Math.max(patches.lastAt ?? 0, at);
        } catch {
          // not JSON: ignore
        }
      }
      if (line.includes('phase 1 done')) {
        try {
          const seconds = (JSON.parse(line) as { phase1Seconds?: number }).phase1Seconds;
          if (typeof seconds === 'number') phase1Logged.push(seconds);
        } catch {
          // not JSON: ignore
        }
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));
  const deadline = Date.now() + 60_000;
  while (!started) {
    const failure =
      exitCode !== undefined
        ? `the controller exited (${exitCode}) before starting`
        : Date.now() > deadline
          ? 'the controller did not start in 60 s'
          : undefined;
    if (failure) {
      child.kill('SIGKILL');
      log.end();
      await removeQueueAndRule(b.ground, queueName, queueUrl).catch(() => undefined);
      throw new Error(`${failure}; see ${logFile}`);
    }
    await sleep(100);
  }
  const pid = child.pid!;
  b.live.pids.add(pid);
  b.say(section, `controller running (pid ${pid}, ${entry ? 'the build' : 'tsx'}), queue ${queueName}`);
  return {
    pid,
    queueUrl,
    logFile,
    metricsPort,
    phase1Logged,
    get lastPatchLoggedAt() {
      return patches.lastAt;
    },
    sample: () => sampleProc(pid),
    async stop() {
      if (exitCode === undefined) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(killer);
      }
      log.end();
      b.live.pids.delete(pid);
      await removeQueueAndRule(b.ground, queueName, queueUrl).catch((err: unknown) => b.say(section, `removing queue ${queueName}: ${String(err)}`));
      return { exitCode: exitCode ?? null };
    },
  };
}
