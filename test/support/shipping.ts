// Helpers for the shipping tests: the tools the project builds or installs (helm, the AWS CLI), the
// chart rendered and parsed, and a kubeconfig that authenticates as a ServiceAccount.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dumpYaml, loadYaml, type KubernetesObject } from '@kubernetes/client-node';
import { writeServiceAccountKubeconfig } from '../../testground/src/ground.js';
import type { TestGround } from './ground.js';

export const PROJECT_DIR = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
export const CHART_DIR = join(PROJECT_DIR, 'charts/spot-fargate-orchestrator');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never throws for a non-zero exit (callers assert on it). */
export function run(command: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? PROJECT_DIR, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** Like run, but a non-zero exit is an error that quotes the command's output. */
export async function runOk(command: string, args: string[], options: Parameters<typeof run>[2] = {}): Promise<RunResult> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
  }
  return result;
}

/** The last line a build/install script prints is the path of what it built (cached after the first run). */
async function toolFromScript(script: string): Promise<string> {
  const { stdout } = await runOk('bash', [join(PROJECT_DIR, script)]);
  const path = stdout.trim().split('\n').pop();
  if (!path) throw new Error(`${script} printed no path`);
  return path;
}

let helmPath: Promise<string> | undefined;
export const helmBinary = () => (helmPath ??= toolFromScript('testground/scripts/build-helm.sh'));

let awsPath: Promise<string> | undefined;
export const awsCliBinary = () => (awsPath ??= toolFromScript('testground/scripts/install-awscli.sh'));

export async function helm(args: string[]): Promise<RunResult> {
  return run(await helmBinary(), args);
}

/**
 * `helm template` of the chart; `set` values go through --set-string unless they are booleans or
 * numbers, and lists of names as --set key={a,b}.
 */
export async function renderChart(
  release: string,
  namespace: string,
  set: Record<string, string | number | boolean | readonly string[]> = {},
): Promise<string> {
  const args = ['template', release, CHART_DIR, '--namespace', namespace];
  for (const [key, value] of Object.entries(set)) {
    if (Array.isArray(value)) args.push('--set', `${key}={${value.join(',')}}`);
    // --set reads a comma as the start of the next key: one inside a value (a selector) is escaped.
    else args.push(typeof value === 'string' ? '--set-string' : '--set', `${key}=${typeof value === 'string' ? value.replaceAll(',', '\\,') : value}`);
  }
  const { stdout } = await runOk(await helmBinary(), args);
  return stdout;
}

/** The objects of a multi-document manifest (comment-only documents skipped). */
export function parseManifests(text: string): KubernetesObject[] {
  return text
    .split(/^---[ \t]*$/m)
    .filter((doc) => /^kind:/m.test(doc))
    .map((doc) => loadYaml<KubernetesObject>(doc));
}

export function toManifest(objects: KubernetesObject[]): string {
  return objects.map((o) => dumpYaml(o)).join('---\n');
}

export const ofKind = <T extends KubernetesObject = KubernetesObject>(objects: KubernetesObject[], kind: string): T[] =>
  objects.filter((o) => o.kind === kind) as T[];

export function kubectl(t: TestGround, args: string[], input?: string, kubeconfig = t.ground.kubeconfig): Promise<RunResult> {
  return run(t.ground.kubectl, ['--kubeconfig', kubeconfig, ...args], { input });
}

/**
 * A kubeconfig that authenticates as the ServiceAccount with a token from the TokenRequest API, as
 * the kubelet would mount it in the pod, against the ground's API server.
 */
export function serviceAccountKubeconfig(t: TestGround, namespace: string, name: string): Promise<string> {
  return writeServiceAccountKubeconfig(t, { namespace, name }, join(tempDir('sa-kubeconfig'), 'kubeconfig'));
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `sfo-${prefix}-`));
}
