// What every part of the benchmark shares: the ground, clients bound to it, the options, the
// progress display, and small helpers (bounded concurrency, sleeping, naming).
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, PolicyV1Api, type KubeConfig } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { kubeConfigFrom, scaled, type Ground } from '../../testground/src/ground.js';
import type { BenchOptions } from './options.js';

export interface Bench {
  ground: Ground;
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  policy: PolicyV1Api;
  options: BenchOptions;
  /** Scratch space for logs of this run (bench/results/tmp/…, ignored by git). */
  workDir: string;
  say: (section: string, line: string) => void;
  /** Simulated (AWS) milliseconds to wall-clock milliseconds on this ground. */
  scaled: (realMs: number) => number;
  /** What this run has made and not yet removed, for a best-effort cleanup on Ctrl-C. */
  live: { namespaces: Set<string>; nodes: Set<string>; pids: Set<number> };
  /**
   * The kubeconfig the controller and the floor use (identity.ts); the admin one until the run has
   * installed the controller's identity.
   */
  controllerKubeconfig: string;
}

export function makeBench(ground: Ground, options: BenchOptions, workDir: string, out: (line: string) => void = console.log): Bench {
  const kc = kubeConfigFrom(ground.kubeconfig);
  mkdirSync(workDir, { recursive: true });
  return {
    ground,
    kc,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    policy: kc.makeApiClient(PolicyV1Api),
    options,
    workDir,
    say: (section, line) => out(`[${new Date().toISOString().slice(11, 19)}] ${section.padEnd(11)} ${line}`),
    scaled: (realMs) => scaled(ground, realMs),
    live: { namespaces: new Set(), nodes: new Set(), pids: new Set() },
    controllerKubeconfig: ground.kubeconfig,
  };
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done);
  });

export function shortId(): string {
  return randomBytes(3).toString('hex');
}

/** Runs `fn` over `items` with at most `concurrency` in flight; resolves with results in order. */
export async function mapLimit<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const limit = pLimit(concurrency);
  return Promise.all(items.map((item, i) => limit(() => fn(item, i))));
}

/** Retries an API call on 429/5xx/network errors a few times, with a short backoff. */
export async function retrying<T>(fn: () => Promise<T>, attempts = 6): Promise<T> {
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const transient = typeof code !== 'number' || code === 429 || code >= 500;
      if (!transient || attempt >= attempts) throw err;
      await sleep(delay);
      delay = Math.min(delay * 2, 4000);
    }
  }
}

export const logPath = (b: Bench, name: string) => join(b.workDir, name);

export const seconds = (ms: number) => ms / 1000;
