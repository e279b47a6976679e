// Faults in the ground itself: restarting its components (testground/scripts/restart-component.sh)
// and an identity for the controller that, unlike the admin (system:masters), the API server
// throttles.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_GROUND_FILE, ensureClusterAdminServiceAccount, writeServiceAccountKubeconfig } from '../../testground/src/ground.js';
import type { TestGround } from './ground.js';

const run = promisify(execFile);
const SCRIPT = new URL('../../testground/scripts/restart-component.sh', import.meta.url).pathname;

export function groundFile(): string {
  return resolve(process.env.TESTGROUND_FILE ?? DEFAULT_GROUND_FILE);
}

/** The ground file the tests use, unless it is the shared ground, whose components are not ours to `verb`. */
function assertOwnGround(verb: string): string {
  const file = groundFile();
  if (file === resolve(DEFAULT_GROUND_FILE) && process.env.FAULTS_ALLOW_SHARED_GROUND !== '1') {
    throw new Error(
      `refusing to ${verb} components of the shared test ground (${file}); run the fault suite on its own ground (make test-faults, or TESTGROUND_FILE=…/.testground-faults/ground.json)`,
    );
  }
  return file;
}

/**
 * The environment that points the ground scripts at the ground the tests use. The shared ground
 * (.testground, which other people's tests run on) is refused: its components are not ours to stop.
 */
export function groundScriptEnv(t: TestGround): NodeJS.ProcessEnv {
  const file = assertOwnGround('restart');
  const apiPort = Number(new URL(t.ground.apiServer).port);
  return { ...process.env, TESTGROUND_PORT_BASE: String(apiPort - 443), SPOT_TESTGROUND_STATE: dirname(file) };
}

export interface RestartOptions {
  /** SIGKILL (a crash) rather than SIGTERM. */
  kill?: boolean;
  downForSeconds?: number;
  /** Appended to the original flags (the last of a repeated flag wins). */
  extraFlags?: string[];
  /** Only stop it (leave it down), or only start it again. */
  only?: 'stop' | 'start';
}

/** Restarts one component and resolves once it is healthy again; returns the script's report. */
export async function restartComponent(t: TestGround, component: string, o: RestartOptions = {}): Promise<string> {
  const args = [
    SCRIPT,
    ...(o.only ? [`--${o.only}-only`] : []),
    ...(o.kill ? ['--kill'] : []),
    ...(o.downForSeconds ? ['--down-for', String(o.downForSeconds)] : []),
    component,
    ...(o.extraFlags ?? []),
  ];
  const { stdout, stderr } = await run('bash', args, { env: groundScriptEnv(t), timeout: 180_000 });
  return `${stdout}${stderr}`.trim();
}

/**
 * Freezes one component (SIGSTOP) until the returned function thaws it (SIGCONT): its connections
 * stay open but nothing is read, as with a process stalled on a starved machine. The pid comes from
 * the ground's pid file, so only this ground's process is touched.
 */
export function freezeComponent(component: 'kwok' | 'kube-controller-manager' | 'kube-scheduler' | 'eks-simulator'): () => void {
  const file = assertOwnGround('freeze');
  const pid = Number(readFileSync(join(dirname(file), 'pids', `${component}.pid`), 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`no pid for ${component} in the ground's pid file`);
  process.kill(pid, 'SIGSTOP');
  let thawed = false;
  return () => {
    if (thawed) return;
    thawed = true;
    process.kill(pid, 'SIGCONT');
  };
}

/**
 * A kubeconfig for a ServiceAccount bound to cluster-admin through RBAC. Unlike the admin
 * certificate (group system:masters, which the API server never throttles), this identity gets the
 * 429s that --max-requests-inflight produces.
 */
export async function serviceAccountKubeconfig(t: TestGround, name = 'spot-faults-controller'): Promise<string> {
  const namespace = 'spot-faults-system';
  await ensureClusterAdminServiceAccount(t, { namespace, name });
  return writeServiceAccountKubeconfig(t, { namespace, name }, join(dirname(t.ground.kubeconfig), `${name}.kubeconfig`));
}
