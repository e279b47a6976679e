// What cluster-up wrote about the running test ground, and clients bound to it.
import { readFileSync } from 'node:fs';
import { AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { PooledKubeConfig } from '../../src/kube/api.js';

export interface Ground {
  kubeconfig: string;
  fargateKubeconfig: string;
  apiServer: string;
  sqsEndpoint: string;
  webhookPort: number;
  webhookCert: string;
  webhookKey: string;
  webhookCA: string;
  /** Multiplies every simulated delay: 0.05 turns Fargate's 45 s start into 2.25 s. */
  timeScale: number;
  region: string;
  account: string;
  kubectl: string;
  logDir: string;
  /** Written by setup once the queue and its EventBridge rule exist. */
  queueUrl: string;
  queueArn: string;
}

export const DEFAULT_GROUND_FILE = new URL('../../.testground/ground.json', import.meta.url).pathname;

export function loadGround(path = process.env.TESTGROUND_FILE ?? DEFAULT_GROUND_FILE): Ground {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new Error(`reading the test ground description ${path}: is the ground up? (make cluster-up)`, { cause });
  }
  return JSON.parse(text) as Ground;
}

/** The same connection reuse as the controller's (see PooledKubeConfig), for the simulators and harnesses. */
export function kubeConfigFrom(path: string): KubeConfig {
  const kc = new PooledKubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export interface GroundClients {
  kc: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
}

export function groundClients(kubeconfigPath: string): GroundClients {
  const kc = kubeConfigFrom(kubeconfigPath);
  return { kc, core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api) };
}

/** Simulated durations shrink by the ground's time scale; never below 1 ms so timers still order. */
export function scaled(ground: Pick<Ground, 'timeScale'>, realMs: number): number {
  return Math.max(1, Math.round(realMs * ground.timeScale));
}

/** AWS SDK settings that reach the ground's SQS/EventBridge server, exactly as a user would set them. */
export function awsClientConfig(ground: Ground) {
  return {
    region: ground.region,
    endpoint: ground.sqsEndpoint,
    credentials: { accessKeyId: 'testground', secretAccessKey: 'testground' },
  };
}
