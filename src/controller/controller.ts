// Composition root of the running controller: caches, intake, phase 1/2, recovery to spot, restart recovery.
import { CoreV1Api, AppsV1Api, type KubeConfig } from '@kubernetes/client-node';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import type { Alerter } from '../alerts/alert.js';
import type { Config } from '../config/config.js';
import { messageOf } from '../kube/api.js';
import { ClusterView } from '../kube/cluster-view.js';
import { EventRecorder } from '../kube/recorder.js';
import type { Metrics } from '../metrics/metrics.js';
import { QueueSource, type QueueClient } from '../intake/queue-source.js';
import { MANAGED_ANNOTATIONS } from '../state/annotations.js';
import type { ControllerContext } from './context.js';
import { InterruptionHandler, type HandleResult } from './interruption-handler.js';
import { MigrationFlow } from './migration-flow.js';
import { DeploymentPatcher } from './patcher.js';
import { RolloutObserver } from './rollout-observer.js';
import { isManaged } from './scope.js';
import { RecoveryLoop } from '../recovery/recovery-loop.js';

export interface ControllerDeps {
  config: Config;
  kc: KubeConfig;
  log: Logger;
  metrics: Metrics;
  alerter: Alerter;
  now?: () => Date;
  sqs?: QueueClient;
  /** Called with each handled event's result (tests wait on `settled`). */
  onHandled?: (eventId: string, result: HandleResult) => void;
}

export function sqsClientFor(config: Pick<Config, 'aws'>): SQSClient {
  // endpoint_url comes from AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL, as for any SDK client.
  return new SQSClient({ region: config.aws.region, ...(config.aws.endpoint_url ? { endpoint: config.aws.endpoint_url } : {}) });
}

export class Controller {
  readonly ctx: ControllerContext;
  readonly flow: MigrationFlow;
  readonly handler: InterruptionHandler;
  readonly queue: QueueSource;
  readonly recovery: RecoveryLoop;
  queueReachable = false;
  lastQueueError?: string;
  lastQueueTick = new Date();

  constructor(private readonly deps: ControllerDeps) {
    const { config, kc, log, metrics, alerter } = deps;
    const now = deps.now ?? (() => new Date());
    const core = kc.makeApiClient(CoreV1Api);
    const view = new ClusterView(kc, config.kubernetes.namespace, log);
    const observer = new RolloutObserver({
      view,
      config,
      now,
      onHealthCheckFailed: (key, attempt, of, detail) => {
        const [namespace, name] = key.split('/') as [string, string];
        alerter.notify({ kind: 'health_check_failed', deployment: { namespace, name }, attempt, of, detail });
      },
    });
    const patcher = new DeploymentPatcher(kc.makeApiClient(AppsV1Api), log, {
      dryRun: config.controller.dry_run,
      onApiError: (verb, code) => metrics.apiErrors.inc({ verb, code: code === 'network' ? 'network' : Number(code) }),
    });
    const recorder = new EventRecorder(core, log, 'default', config.controller.dry_run);
    this.ctx = { config, log, now, view, core, patcher, observer, recorder, alerter, metrics };
    this.flow = new MigrationFlow(this.ctx);
    this.handler = new InterruptionHandler(this.ctx, this.flow);
    this.recovery = new RecoveryLoop(this.ctx, this.flow);
    this.queue = new QueueSource({
      sqs: deps.sqs ?? sqsClientFor(config),
      queueUrl: config.aws.sqs_queue_url,
      log,
      metrics,
      errorBackoffMs: config.monitoring.check_interval,
      visibilityTimeoutSeconds: config.aws.visibility_timeout / 1000,
      dryRun: config.controller.dry_run,
      onTick: (ok, error) => {
        this.queueReachable = ok;
        this.lastQueueError = error;
        this.lastQueueTick = new Date();
      },
      handle: async (event, messageId) => {
        const result = await this.handler.handle(event);
        deps.onHandled?.(event.id, result);
        log.debug({ messageId, eventId: event.id, outcome: result.outcome, ack: result.ack }, 'message handled');
        return result;
      },
    });
    metrics.setStateSource(() => {
      const counts = { spot: 0, fargate: 0 };
      for (const d of view.listDeployments()) {
        if (!isManaged(config, d)) continue;
        counts[d.metadata?.annotations?.[MANAGED_ANNOTATIONS.state] === 'fargate' ? 'fargate' : 'spot']++;
      }
      return counts;
    });
    metrics.setFargateSource(() =>
      view
        .listDeployments()
        .filter((d) => isManaged(config, d) && d.metadata?.annotations?.[MANAGED_ANNOTATIONS.state] === 'fargate')
        .map((d) => ({
          namespace: d.metadata!.namespace!,
          deployment: d.metadata!.name!,
          since: new Date(d.metadata?.annotations?.[MANAGED_ANNOTATIONS.migratedAt] ?? Date.now()),
        })),
    );
  }

  /** Syncs the caches, picks up moves a previous process left in flight, then starts receiving. */
  async start(): Promise<void> {
    await this.startWatching();
    this.startActing();
  }

  /** Caches only: what a standby replica does, so it can act at once when elected. */
  async startWatching(): Promise<void> {
    try {
      await this.ctx.view.start();
    } catch (cause) {
      const server = this.deps.kc.getCurrentCluster()?.server ?? '(no cluster in the kubeconfig)';
      throw new Error(`listing Nodes, Pods, ReplicaSets, Deployments, Services and EndpointSlices from the Kubernetes API at ${server}: ${messageOf(cause)}`, {
        cause,
      });
    }
  }

  /** Acting: only the leader (or the single replica) does this. */
  startActing(): void {
    this.acting = true;
    this.resumeInFlight();
    this.queue.start();
    this.recovery.start();
    this.ctx.log.info(
      { namespace: this.ctx.config.kubernetes.namespace, mode: this.ctx.config.kubernetes.mode, dryRun: this.ctx.config.controller.dry_run },
      'controller started',
    );
  }

  acting = false;

  async stop(): Promise<void> {
    this.recovery.stop();
    await this.queue.stop();
    this.ctx.observer.stop();
    await this.ctx.view.stop();
    await this.deps.alerter.flush(5000);
  }

  /** Level-triggered restart: the phase annotation says which moves were in flight. */
  resumeInFlight(): void {
    for (const d of this.ctx.view.listDeployments()) {
      if (!isManaged(this.ctx.config, d)) continue;
      const phase = d.metadata?.annotations?.[MANAGED_ANNOTATIONS.phase];
      if (phase === 'recovering') {
        this.ctx.log.info({ deployment: `${d.metadata!.namespace}/${d.metadata!.name}`, phase }, 'resuming a recovery left in flight');
        void this.recovery.resume(d);
        continue;
      }
      if (phase !== 'migrating' && phase !== 'rolling-back') continue;
      let interruption: { eventId?: string; instanceIds?: string[] } = {};
      try {
        interruption = JSON.parse(d.metadata?.annotations?.[MANAGED_ANNOTATIONS.interruption] ?? '{}');
      } catch {
        // A damaged note only costs the event id in the logs.
      }
      const request = { eventId: interruption.eventId ?? 'resumed', instanceIds: interruption.instanceIds ?? [], reason: 'spot-interruption' as const };
      this.ctx.log.info({ deployment: `${d.metadata!.namespace}/${d.metadata!.name}`, phase, eventId: request.eventId }, 'resuming a move left in flight');
      void this.flow.observe(d, phase === 'migrating' ? 'migration' : 'rollback', request);
    }
  }
}
