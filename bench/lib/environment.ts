// What the figures were measured on: the machine, the versions, the ground's timings.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { VersionApi } from '@kubernetes/client-node';
import { describeFargate, groundFargateSettings, meanStartMs } from '../../testground/src/ground.js';
import { WARNING_WINDOW_MS } from '../../testground/src/injector.js';
import type { Bench } from './context.js';
import { imageCommand } from '../../testground/src/image.js';
import { PROJECT_DIR, withoutEmpty } from './controller-process.js';

export interface Environment {
  date: string;
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  loadAverageAtStart: number[];
  node: string;
  kubernetesServer: string;
  kubectl: string;
  etcd: string;
  kwok: string;
  moto: string;
  timeScale: number;
  /** The Fargate simulator's provisioning delay as it logged it at start (wall-clock ms). */
  fargateDelayMs: number;
  fargateDelaySource: string;
  windowMs: number;
  apiServer: string;
  gitCommit: string;
  gitDirty: boolean;
  /** Who the controller and the floor were to the API server (identity.ts); set once installed. */
  controllerIdentity?: string;
  /** What the controller's environment had beyond the bench's own settings: the image's ENV and BENCH_CONTROLLER_ENV. */
  controllerEnv?: Record<string, string>;
}

function moduleVersion(dir: string, module: string): string {
  try {
    const text = readFileSync(join(PROJECT_DIR, 'testground/go', dir, 'go.mod'), 'utf8');
    const m = new RegExp(`^\\s*(?:require\\s+)?${module.replaceAll('.', '\\.')}\\s+(v\\S+)`, 'm').exec(text);
    return m?.[1] ?? '?';
  } catch {
    return '?';
  }
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: PROJECT_DIR, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

export async function captureEnvironment(b: Bench): Promise<Environment> {
  const server = await b.kc.makeApiClient(VersionApi).getCode();
  let kubectl = '?';
  try {
    const out = JSON.parse(execFileSync(b.ground.kubectl, ['version', '--client', '-o', 'json'], { encoding: 'utf8' })) as {
      clientVersion?: { gitVersion?: string };
    };
    kubectl = out.clientVersion?.gitVersion ?? '?';
  } catch {
    // reported as ?
  }
  // The simulator's settings are in ground.json (cluster-up wrote them); a start-up time is drawn per pod.
  const fargate = groundFargateSettings(b.ground);
  const fargateDelayMs = meanStartMs(fargate, b.ground.timeScale);
  const fargateDelaySource = `mean; ${describeFargate(fargate, b.ground.timeScale)}`;
  const cpu = cpus();
  return {
    date: new Date().toISOString(),
    cores: cpu.length,
    cpuModel: cpu[0]?.model ?? '?',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
    node: process.version,
    kubernetesServer: server.gitVersion,
    kubectl,
    etcd: moduleVersion('etcd', 'go.etcd.io/etcd/server/v3'),
    kwok: moduleVersion('kwok', 'sigs.k8s.io/kwok'),
    moto: /MOTO_VERSION="([^"]+)"/.exec(readFileSync(join(PROJECT_DIR, 'testground/scripts/lib.sh'), 'utf8'))?.[1] ?? '?',
    timeScale: b.ground.timeScale,
    fargateDelayMs,
    fargateDelaySource,
    windowMs: b.scaled(WARNING_WINDOW_MS),
    apiServer: b.ground.apiServer,
    gitCommit: git(['rev-parse', '--short', 'HEAD']),
    gitDirty: git(['status', '--porcelain']) !== '',
    controllerEnv: withoutEmpty({ ...imageCommand().env, ...b.options.controllerEnv }),
  };
}
