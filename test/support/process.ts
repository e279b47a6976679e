// The controller as users run it: `spot-orchestrator run` in a process of its own, so tests can
// kill it (SIGKILL) at any point and start another one.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import type { TestGround } from './ground.js';
import { FAST_ENV } from './controller.js';
import { imageCommand } from '../../testground/src/image.js';
import { freePort } from '../../testground/src/net.js';

export interface ControllerProcess {
  child: ChildProcess;
  metricsPort: number;
  logFile: string;
  output(): string;
  exited: Promise<number | null>;
}

let counter = 0;

/**
 * `bare: true` gives the controller only what ties it to the ground (kubeconfig, the local SQS
 * endpoint and its credentials, a free metrics port) plus `env`: no test-speed settings, and nothing
 * of this process's environment but PATH, so it runs on its config file as a user's would.
 */
export async function spawnController(t: TestGround, env: Record<string, string>, { bare = false }: { bare?: boolean } = {}): Promise<ControllerProcess> {
  const metricsPort = await freePort();
  const logFile = join(t.ground.logDir, `controller-process-${process.pid}-${++counter}.log`);
  const log = createWriteStream(logFile);
  let output = '';
  const wiring = {
    KUBECONFIG: t.ground.kubeconfig,
    AWS_ENDPOINT_URL_SQS: t.ground.sqsEndpoint,
    AWS_ACCESS_KEY_ID: 'testground',
    AWS_SECRET_ACCESS_KEY: 'testground',
    METRICS_PORT: String(metricsPort),
  };
  // The image's node flags (its heap sizing) and ENV (glibc's tunables among them), so the tests run
  // the controller's process as it ships.
  const image = imageCommand();
  const child = spawn(process.execPath, [...image.nodeFlags, '--import', 'tsx', 'src/cli.ts', 'run'], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: bare
      ? { ...image.env, PATH: process.env.PATH, ...wiring, ...env }
      : { ...process.env, ...image.env, ...wiring, AWS_REGION: t.ground.region, LOG_FORMAT: 'json', ...FAST_ENV, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    log.write(chunk);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, metricsPort, logFile, output: () => output, exited };
}
