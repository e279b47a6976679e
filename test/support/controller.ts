// Runs the real controller in this process against the test ground, with its own queue and rule.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Deployment } from '@kubernetes/client-node';
import { pino } from 'pino';
import type { Alert, Alerter } from '../../src/alerts/alert.js';
import { loadConfig } from '../../src/config/load.js';
import { Controller, loadRecordKeyFor } from '../../src/manager.js';
import { loadKubeConfig } from '../../src/kube/api.js';
import { hmacRecordSigner } from '../../src/migration/record-signature.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { ensureQueueAndRule, removeQueueAndRule } from '../../testground/src/aws.js';
import { CollectionWatch, type RawObject } from '../../testground/src/collection-watch.js';
import { kubeConfigFrom } from '../../testground/src/ground.js';
import { uniqueName, type TestGround } from './ground.js';

export class RecordingAlerter implements Alerter {
  readonly alerts: Alert[] = [];
  /** `forward`: a real sender (a SlackAlerter on a stand-in webhook) that gets every alert too. */
  constructor(private readonly forward?: Alerter) {}
  notify(alert: Alert): void {
    this.alerts.push(alert);
    this.forward?.notify(alert);
  }
  async flush(timeoutMs?: number): Promise<void> {
    await this.forward?.flush(timeoutMs);
  }
  of<K extends Alert['kind']>(kind: K): Extract<Alert, { kind: K }>[] {
    return this.alerts.filter((a): a is Extract<Alert, { kind: K }> => a.kind === kind);
  }
}

export interface TestController {
  controller: Controller;
  alerter: RecordingAlerter;
  queueUrl: string;
  logs: string[];
  stop(): Promise<void>;
}

/** Test-speed defaults: the ground's time scale shrinks AWS, these shrink the controller's waits. */
export const FAST_ENV = {
  ROLLOUT_TIMEOUT: '30s',
  VERIFICATION_DELAY: '300ms',
  HEALTH_CHECK_INTERVAL: '300ms',
  HEALTH_CHECK_RETRIES: '3',
  CHECK_INTERVAL: '500ms',
  LOG_LEVEL: 'debug',
  ALERTS_ENABLED: 'false',
  // A message held by a controller the test killed comes back after 2 s, not 30.
  SQS_VISIBILITY_TIMEOUT: '2s',
};

export async function startController(
  t: TestGround,
  namespace: string,
  env: Record<string, string> = {},
  options: {
    forwardAlertsTo?: Alerter;
    /** Runs once the controller's queue exists, before the controller starts: what it sends is there at the first receive. */
    beforeStart?: () => Promise<void>;
  } = {},
): Promise<TestController> {
  const queueName = uniqueName('ctl');
  const { queueUrl } = await ensureQueueAndRule(t.ground, queueName);
  const config = loadConfig({
    env: {
      MODE: 'namespace',
      NAMESPACE: namespace,
      SQS_QUEUE_URL: queueUrl,
      AWS_REGION: t.ground.region,
      AWS_ENDPOINT_URL_SQS: t.ground.sqsEndpoint,
      ...FAST_ENV,
      ...env,
    },
  });
  process.env.AWS_ACCESS_KEY_ID ??= 'testground';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'testground';
  const logs: string[] = [];
  // Kept in memory for assertions and in the ground's log folder for whoever reads a failure.
  const logFile = join(t.ground.logDir, `controller-${namespace}.log`);
  const log = pino(
    { level: 'debug' },
    {
      write: (line: string) => {
        logs.push(line);
        appendFileSync(logFile, line);
      },
    },
  );
  const alerter = new RecordingAlerter(options.forwardAlertsTo);
  // As the product loads it: its User-Agent is what the API server names its writes after.
  const kc = loadKubeConfig(t.ground.kubeconfig);
  const signer = hmacRecordSigner(await loadRecordKeyFor(config, kc));
  const controller = new Controller({ config, kc, log, metrics: createMetrics(), alerter, signer });
  await options.beforeStart?.();
  await controller.start();
  return {
    controller,
    alerter,
    queueUrl,
    logs,
    async stop() {
      await controller.stop();
      await removeQueueAndRule(t.ground, queueName, queueUrl);
    },
  };
}

/**
 * Starts in-process controllers on one namespace (read when each starts, so it may be set in a
 * `before`), and stops whichever are still running at the end of the suite.
 */
export function controllerStarter(t: TestGround, namespace: () => string) {
  const running = new Set<TestController>();
  return {
    async start(env: Record<string, string> = {}): Promise<TestController> {
      const c = await startController(t, namespace(), env);
      running.add(c);
      return c;
    },
    async stop(c: TestController): Promise<void> {
      running.delete(c);
      await c.stop();
    },
    async stopAll(): Promise<void> {
      for (const c of running) await c.stop().catch(() => undefined);
      running.clear();
    },
  };
}

/** Lowest ready/available replica counts each Deployment reported, sampled from watch events. */
export class ReadinessSampler {
  readonly lowestReady = new Map<string, number>();
  readonly lowestAvailable = new Map<string, number>();
  readonly desired = new Map<string, number>();
  private watch?: CollectionWatch;

  async start(t: TestGround, namespace: string): Promise<void> {
    this.watch = watchDeployments(t, namespace, (d) => {
      const name = d.metadata!.name!;
      this.desired.set(name, d.spec?.replicas ?? 1);
      const ready = d.status?.readyReplicas ?? 0;
      const available = d.status?.availableReplicas ?? 0;
      this.lowestReady.set(name, Math.min(this.lowestReady.get(name) ?? Infinity, ready));
      this.lowestAvailable.set(name, Math.min(this.lowestAvailable.get(name) ?? Infinity, available));
    });
    await this.watch.start();
  }

  stop(): void {
    this.watch?.stop();
  }
}

/**
 * Every state of the namespace's Deployments, from a list and then a watch that resumes where it
 * stopped (client-node's Watch gives up on a stream quiet for 30 s), so a sampler misses nothing.
 */
export function watchDeployments(t: TestGround, namespace: string, onDeployment: (d: V1Deployment) => void): CollectionWatch {
  const apps = t.apps;
  return new CollectionWatch({
    kc: kubeConfigFrom(t.ground.kubeconfig),
    path: `/apis/apps/v1/namespaces/${namespace}/deployments`,
    list: async () => {
      const out = await apps.listNamespacedDeployment({ namespace });
      return { items: out.items as RawObject[], resourceVersion: out.metadata?.resourceVersion ?? '' };
    },
    onEvent: (type, obj) => {
      if (type !== 'DELETED') onDeployment(obj as V1Deployment);
    },
    onRelist: (items) => {
      for (const obj of items) onDeployment(obj as V1Deployment);
    },
  });
}
