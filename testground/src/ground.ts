// What cluster-up wrote about the running test ground, and clients bound to it.
import { readFileSync, writeFileSync } from 'node:fs';
import { AppsV1Api, CoreV1Api, type KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { PooledKubeConfig } from '../../src/kube/api.js';
import { type FargateSettings, parseFargateSettings, type RawFargateSettings, realThrottle } from './fargate/settings.js';
import { describeStart, type StartDistribution } from './fargate/timing.js';

export interface Ground {
  kubeconfig: string;
  fargateKubeconfig: string;
  apiServer: string;
  sqsEndpoint: string;
  webhookPort: number;
  webhookCert: string;
  webhookKey: string;
  webhookCA: string;
  /** Multiplies every simulated delay: 0.1 turns a 60 s Fargate start into 6 s and 20 launches/s into 200. */
  timeScale: number;
  /** The Fargate simulator's settings as cluster-up resolved them (parse with groundFargateSettings). */
  fargate?: RawFargateSettings;
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

/**
 * The same connection reuse as the controller's (see PooledKubeConfig), for the simulators and
 * harnesses. Under a User-Agent of their own, so that what they write is never taken for the
 * controller's writes (the API server names managedFields entries after it).
 */
export const GROUND_USER_AGENT = 'spot-fargate-testground';

export function kubeConfigFrom(path: string): PooledKubeConfig {
  const kc = new PooledKubeConfig(undefined, 'request', GROUND_USER_AGENT);
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

/**
 * Writes to `path` a kubeconfig that authenticates as the ServiceAccount with a token from the
 * TokenRequest API, as the kubelet would mount it in the pod, against the API server of `admin`.
 */
export async function writeServiceAccountKubeconfig(
  admin: { kc: KubeConfig; core: CoreV1Api },
  account: { namespace: string; name: string },
  path: string,
  expirationSeconds = 3600,
): Promise<string> {
  const request = await admin.core.createNamespacedServiceAccountToken({ ...account, body: { spec: { audiences: [], expirationSeconds } } });
  const token = request.status?.token;
  if (!token) throw new Error(`no token issued for ${account.namespace}/${account.name}`);
  const cluster = admin.kc.getCurrentCluster();
  if (!cluster?.caData) throw new Error('the admin kubeconfig has no certificate-authority-data');
  const user = `${account.namespace}:${account.name}`;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'ground', cluster: { server: cluster.server, 'certificate-authority-data': cluster.caData } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'sa', context: { cluster: 'ground', user } }],
    'current-context': 'sa',
  };
  writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o600 });
  return path;
}

/**
 * The ServiceAccount's namespace, the ServiceAccount and a ClusterRoleBinding of its name to
 * cluster-admin, created where missing. `attempt` wraps each call (a caller's retry policy).
 */
export async function ensureClusterAdminServiceAccount(
  admin: { kc: KubeConfig; core: CoreV1Api },
  account: { namespace: string; name: string },
  attempt: <T>(call: () => Promise<T>) => Promise<T> = (call) => call(),
): Promise<void> {
  const { namespace, name } = account;
  const keep = (err: unknown) => {
    if ((err as { code?: number }).code !== 409) throw err;
  };
  const rbac = admin.kc.makeApiClient(RbacAuthorizationV1Api);
  await attempt(() => admin.core.createNamespace({ body: { metadata: { name: namespace } } }).catch(keep));
  await attempt(() =>
    admin.core.createNamespacedServiceAccount({ namespace, body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } } }).catch(keep),
  );
  await attempt(() =>
    rbac
      .createClusterRoleBinding({
        body: {
          metadata: { name },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
          subjects: [{ kind: 'ServiceAccount', name, namespace }],
        },
      })
      .catch(keep),
  );
}

/** Simulated durations shrink by the ground's time scale; never below 1 ms so timers still order. */
export function scaled(ground: Pick<Ground, 'timeScale'>, realMs: number): number {
  return Math.max(1, Math.round(realMs * ground.timeScale));
}

/** The Fargate simulator's settings on this ground (a ground.json without them has the defaults and seed 0). */
export function groundFargateSettings(ground: Pick<Ground, 'fargate'>): FargateSettings {
  return parseFargateSettings({ seed: '0', ...ground.fargate });
}

function scaledStart(d: StartDistribution, timeScale: number): StartDistribution {
  const s = (ms: number) => Math.round(ms * timeScale);
  return d.kind === 'fixed' ? { kind: 'fixed', ms: s(d.ms) } : { kind: 'uniform', minMs: s(d.minMs), maxMs: s(d.maxMs) };
}

/** The mean Fargate start-up on this ground, in real milliseconds. */
export function meanStartMs(settings: FargateSettings, timeScale: number): number {
  const d = scaledStart(settings.start, timeScale);
  return d.kind === 'fixed' ? d.ms : Math.round((d.minMs + d.maxMs) / 2);
}

/** The shortest and the longest Fargate start-up on this ground, in real milliseconds. */
export function startBoundsMs(settings: FargateSettings, timeScale: number): { min: number; max: number } {
  const d = scaledStart(settings.start, timeScale);
  return d.kind === 'fixed' ? { min: d.ms, max: d.ms } : { min: d.minMs, max: d.maxMs };
}

/** One line for logs: what the simulator does, in simulated and in real time, and the seed to replay it. */
export function describeFargate(settings: FargateSettings, timeScale: number): string {
  const { burst, perSecond } = settings.throttle;
  const real = realThrottle(settings.throttle, timeScale);
  return (
    `launch throttle burst ${burst}, ${perSecond} launches/s simulated (${real.perSecond} real); ` +
    `start-up ${describeStart(settings.start)} simulated (${describeStart(scaledStart(settings.start, timeScale))} real, mean start-up ${meanStartMs(settings, timeScale)} ms); ` +
    `seed ${settings.seed} (replay with TESTGROUND_FARGATE_SEED=${settings.seed})`
  );
}

/** AWS SDK settings that reach the ground's SQS/EventBridge server, exactly as a user would set them. */
export function awsClientConfig(ground: Ground) {
  return {
    region: ground.region,
    endpoint: ground.sqsEndpoint,
    credentials: { accessKeyId: 'testground', secretAccessKey: 'testground' },
  };
}
