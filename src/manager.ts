// The composition root. `Controller` puts the parts together (caches, the move registry, both flows,
// the interruption handler, the recovery loop and the queue) and resumes what the annotations say is
// in flight; `runController` is the process around it: leader election, the health and metrics
// server, the liveness heartbeat and signals. Nothing below this file builds another part.
import { hostname } from 'node:os';
import { SQSClient } from '@aws-sdk/client-sqs';
import { AppsV1Api, CoordinationV1Api, CoreV1Api, type KubeConfig, type V1Deployment } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Alerter } from './alerts/alert.js';
import { createAlerter } from './alerts/index.js';
import { type Clock, systemClock } from './clock.js';
import type { ClusterConfig, Config } from './config/config.js';
import type { ConfigProblem } from './config/load.js';
import { describeScope, isManaged, leaseNamespace, namespaceScope } from './config/scope.js';
import { type HandleResult, InterruptionHandler } from './controller/interruption-handler.js';
import { MigrationFlow } from './controller/migration-flow.js';
import { ScheduledChanges } from './controller/scheduled-changes.js';
import { trustedOriginOf } from './intake/event-trust.js';
import { type QueueClient, QueueSource } from './intake/queue-source.js';
import { callConnectionsFor, loadKubeConfig, messageOf, PooledKubeConfig } from './kube/api.js';
import { ClusterView } from './kube/cluster-view.js';
import { LeaderElector } from './kube/leader-election.js';
import { loadRecordKey } from './kube/record-key.js';
import { EventRecorder } from './kube/recorder.js';
import { createLogger } from './log.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { DeferredRecordSigner, type RecordSigner } from './migration/record-signature.js';
import { LoopHeartbeat, startOpsServer } from './metrics/server.js';
import type { ControllerContext } from './moves/context.js';
import { DeploymentPatcher } from './moves/patcher.js';
import { type InFlightPhase, MoveRegistry } from './moves/registry.js';
import { StrategyReturn } from './controller/strategy-return.js';
import { RolloutObserver } from './moves/rollout-observer.js';
import { RecoveryFlow } from './recovery/recovery-flow.js';
import { RecoveryLoop } from './recovery/recovery-loop.js';
import type { CheckResult } from './preflight/checks.js';
import { accessProbe, fetchFargateProfiles, runPreflight } from './preflight/preflight.js';
import { MANAGED_ANNOTATIONS } from './state/annotations.js';

export interface ControllerDeps {
  config: Config;
  kc: KubeConfig;
  log: Logger;
  metrics: Metrics;
  alerter: Alerter;
  clock?: Clock;
  sqs?: QueueClient;
  /** Called with each handled event's result (tests wait on `settled`). */
  onHandled?: (eventId: string, result: HandleResult) => void;
  /** Called after every receive from the queue, failed or not (the liveness heartbeat). */
  onQueueTick?: () => void;
  /** Signs and verifies restore records, with the key from loadRecordKey. */
  signer: RecordSigner;
}

export function sqsClientFor(config: Pick<Config, 'aws'>): SQSClient {
  // endpoint_url comes from AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL, as for any SDK client.
  return new SQSClient({ region: config.aws.region, ...(config.aws.endpoint_url ? { endpoint: config.aws.endpoint_url } : {}) });
}

/** What /readyz reports of the controller. */
export interface ControllerReadiness {
  cachesSynced: boolean;
  acting: boolean;
  queueReachable: boolean;
  lastQueueError?: string;
}

/** What watching and changing the cluster needs: the controller's parts without its queue. */
export interface ClusterDeps {
  config: ClusterConfig;
  kc: KubeConfig;
  log: Logger;
  metrics: Metrics;
  alerter: Alerter;
  clock?: Clock;
  signer: RecordSigner;
}

/**
 * The caches and the writers every move shares, one set per process: the controller's, and the
 * uninstall path's (`recover --all --now`), which acts on the cluster without a queue.
 */
export function createControllerContext(deps: ClusterDeps): ControllerContext {
  const { config, kc, log, metrics, alerter } = deps;
  const clock = deps.clock ?? systemClock;
  if (kc instanceof PooledKubeConfig) {
    kc.observeCalls(({ verb, resource, code, seconds }) => {
      metrics.kubeApiRequests.inc({ verb, resource, code });
      metrics.kubeApiRequestSeconds.observe({ verb, resource }, seconds);
    });
  }
  const core = kc.makeApiClient(CoreV1Api);
  const view = new ClusterView(kc, namespaceScope(config.kubernetes), log);
  const observer = new RolloutObserver({
    view,
    config,
    clock,
    onHealthCheckFailed: (key, attempt, of, detail) => {
      const [namespace, name] = key.split('/') as [string, string];
      alerter.notify({ kind: 'health_check_failed', deployment: { namespace, name }, attempt, of, detail });
    },
  });
  const patcher = new DeploymentPatcher(kc.makeApiClient(AppsV1Api), log, {
    dryRun: config.controller.dry_run,
    clock,
    onApiError: (verb, code) => metrics.apiErrors.inc({ verb, code: code === 'network' ? 'network' : Number(code) }),
  });
  const recorder = new EventRecorder(
    core,
    log,
    config.controller.node_events_namespace,
    config.controller.dry_run,
    undefined,
    clock,
    process.env.POD_NAME ?? `${hostname()}-${process.pid}`,
  );
  const moves = new MoveRegistry(clock, log);
  return { config, log, clock, view, core, patcher, observer, moves, recorder, alerter, metrics, signer: deps.signer };
}

/** The first lists and the watches behind them; a failure names the API server it could not list from. */
export async function startCaches(ctx: ControllerContext, kc: KubeConfig): Promise<void> {
  try {
    await ctx.view.start();
  } catch (cause) {
    const server = kc.getCurrentCluster()?.server ?? '(no cluster in the kubeconfig)';
    throw new Error(`listing Nodes, Pods, ReplicaSets, Deployments, Services and EndpointSlices from the Kubernetes API at ${server}: ${messageOf(cause)}`, {
      cause,
    });
  }
}

/** Stops what createControllerContext started, and gives the alerts in flight 5 s to go out. */
export async function stopControllerContext(ctx: ControllerContext): Promise<void> {
  ctx.moves.stop();
  ctx.observer.stop();
  await ctx.view.stop();
  await ctx.alerter.flush(5000);
}

export class Controller {
  readonly ctx: ControllerContext;
  readonly flow: MigrationFlow;
  readonly handler: InterruptionHandler;
  readonly queue: QueueSource;
  readonly recovery: RecoveryLoop;
  /** Gives the strategy back to Deployments a failed move left on Fargate, once their old pods are gone. */
  private readonly strategyReturn: StrategyReturn;
  /** Scheduled changes due and sealed nodes that survived, from the node marks. */
  readonly scheduledChanges: ScheduledChanges;
  private acting = false;
  private queueReachable = false;
  private lastQueueError?: string;
  /** The outcome of the queue loop's first receive: the preflight's queue check at start. */
  private readonly firstReceive: Promise<{ ok: boolean; error?: string }>;
  private onFirstReceive: (outcome: { ok: boolean; error?: string }) => void = () => {};

  constructor(private readonly deps: ControllerDeps) {
    this.firstReceive = new Promise((resolve) => {
      this.onFirstReceive = resolve;
    });
    const { config, log, metrics } = deps;
    this.ctx = createControllerContext(deps);
    const { clock, view } = this.ctx;
    this.flow = new MigrationFlow(this.ctx);
    this.handler = new InterruptionHandler(this.ctx, this.flow, () => this.scheduledChanges.wake());
    this.scheduledChanges = new ScheduledChanges(this.ctx, this.handler);
    this.strategyReturn = new StrategyReturn(this.ctx, (d) => isManaged(config, d, view.inScope), config.monitoring.check_interval);
    this.recovery = new RecoveryLoop(this.ctx, new RecoveryFlow(this.ctx));
    this.queue = new QueueSource({
      sqs: deps.sqs ?? sqsClientFor(config),
      queueUrl: config.aws.sqs_queue_url,
      log,
      metrics,
      errorBackoffMs: config.monitoring.check_interval,
      visibilityTimeoutSeconds: config.aws.visibility_timeout / 1000,
      dryRun: config.controller.dry_run,
      keepForeign: config.aws.keep_foreign_messages,
      trust: trustedOriginOf(config.aws),
      clock,
      onTick: (ok, error) => {
        this.queueReachable = ok;
        this.lastQueueError = error;
        this.onFirstReceive({ ok, error });
        deps.onQueueTick?.();
      },
      handle: async (event, messageId) => {
        const result = await this.handler.handle(event);
        deps.onHandled?.(event.id, result);
        log.debug({ messageId, eventId: event.id, outcome: result.outcome, ack: result.ack }, 'message handled');
        return { ack: result.ack, foreign: result.outcome === 'foreign' };
      },
    });
    const managed = () => view.listDeployments().filter((d) => isManaged(config, d, view.inScope));
    const stateOf = (d: V1Deployment) => d.metadata?.annotations?.[MANAGED_ANNOTATIONS.state];
    metrics.setStateSource(() => {
      const counts = { spot: 0, fargate: 0 };
      for (const d of managed()) counts[stateOf(d) === 'fargate' ? 'fargate' : 'spot']++;
      return counts;
    });
    metrics.setFargateSource(() =>
      managed()
        .filter((d) => stateOf(d) === 'fargate')
        .map((d) => ({
          namespace: d.metadata!.namespace!,
          deployment: d.metadata!.name!,
          since: new Date(d.metadata?.annotations?.[MANAGED_ANNOTATIONS.migratedAt] ?? clock.now().getTime()),
        })),
    );
  }

  /**
   * The preflight's queue check at start: the first receive, which the role allows (a
   * GetQueueAttributes would need a permission the controller has no other use for). A replica that
   * does not receive within `waitMs` (a standby) reports it skipped.
   */
  async queueCheck(waitMs: number): Promise<CheckResult> {
    const subject = this.deps.config.aws.sqs_queue_url;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      this.firstReceive,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), waitMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    if (!outcome)
      return {
        check: 'queue',
        subject,
        status: 'skipped',
        detail: 'this replica has not received yet (a standby waiting for the lease): the leader checks the queue',
      };
    return outcome.ok
      ? { check: 'queue', subject, status: 'ok', detail: 'the first receive succeeded' }
      : { check: 'queue', subject, status: 'failed', detail: `the first receive failed: ${outcome.error ?? 'unknown error'}` };
  }

  /** The managed namespaces the Fargate profile check covers, once the caches are synced. */
  managedNamespaces(): { namespaces: string[]; note?: string } {
    const { config, view } = this.ctx;
    if (view.scope.kind === 'listed') return { namespaces: [...view.scope.namespaces] };
    const namespaces = new Set(
      view
        .listDeployments()
        .filter((d) => isManaged(config, d, view.inScope))
        .map((d) => d.metadata!.namespace!),
    );
    return { namespaces: [...namespaces].sort(), note: `${describeScope(view.scope)}: the namespaces with a managed Deployment now` };
  }

  get readiness(): ControllerReadiness {
    return { cachesSynced: this.ctx.view.synced, acting: this.acting, queueReachable: this.queueReachable, lastQueueError: this.lastQueueError };
  }

  /** Syncs the caches, picks up moves a previous process left in flight, then starts receiving. */
  async start(): Promise<void> {
    await this.startWatching();
    this.startActing();
  }

  /** Caches only: what a standby replica does, so it can act at once when elected. */
  async startWatching(): Promise<void> {
    await startCaches(this.ctx, this.deps.kc);
  }

  /** Acting: only the leader (or the single replica) does this. */
  startActing(): void {
    this.acting = true;
    const { view, moves } = this.ctx;
    const { config } = this.deps;
    moves.startResync({
      list: () => view.listDeployments().filter((d) => isManaged(config, d, view.inScope)),
      resume: (d, phase) => this.resume(d, phase),
      intervalMs: config.monitoring.check_interval,
    });
    this.queue.start();
    this.scheduledChanges.start();
    this.recovery.start();
    this.strategyReturn.start();
    const origin = trustedOriginOf(config.aws);
    this.ctx.log.info(
      {
        scope: describeScope(this.ctx.view.scope),
        mode: config.kubernetes.mode,
        dryRun: config.controller.dry_run,
        eventAccount: origin.account ?? '(any)',
        eventRegion: origin.region,
        maxEventAgeSeconds: origin.maxAgeMs / 1000,
      },
      'controller started',
    );
    if (origin.account === undefined) {
      this.ctx.log.warn(
        { queueUrl: config.aws.sqs_queue_url },
        "the queue URL names no AWS account and aws.event_account is unset: events' account is not checked",
      );
    }
  }

  async stop(): Promise<void> {
    // No orphan resumed while the rest stops.
    this.ctx.moves.stop();
    this.scheduledChanges.stop();
    this.recovery.stop();
    this.strategyReturn.stop();
    await this.queue.stop();
    await stopControllerContext(this.ctx);
  }

  /** Level-triggered: the phase annotation says which move was in flight, and the flow that owns it finishes it. */
  private resume(d: V1Deployment, phase: InFlightPhase): boolean {
    const deployment = `${d.metadata!.namespace}/${d.metadata!.name}`;
    if (phase === 'recovering') {
      // Resumed already, and waiting for a recovery slot.
      if (this.recovery.settled(deployment)) return false;
      this.ctx.log.info({ deployment, phase }, 'resuming a recovery left in flight');
      void this.recovery.resume(d);
      return true;
    }
    let interruption: { eventId?: string; instanceIds?: string[] } = {};
    try {
      interruption = JSON.parse(d.metadata?.annotations?.[MANAGED_ANNOTATIONS.interruption] ?? '{}');
    } catch {
      // A damaged note only costs the event id in the logs.
    }
    const request = { eventId: interruption.eventId ?? 'resumed', instanceIds: interruption.instanceIds ?? [], reason: 'spot-interruption' as const };
    this.ctx.log.info({ deployment, phase, eventId: request.eventId }, 'resuming a move left in flight');
    this.flow.resume(d, phase, request);
    return true;
  }
}

/** SQS holds a receive for up to 20 s (long polling); a failed one waits check_interval before the next. */
const QUEUE_LONG_POLL_MS = 20_000;
/** The queue loop is live while it turns: it may miss this many rounds before /healthz fails. */
const QUEUE_ROUNDS_MISSED_BEFORE_UNHEALTHY = 3;
/** Never less than this, so a slow API round trip at start does not restart a healthy pod. */
const MIN_QUEUE_SILENCE_MS = 60_000;

/** The restore-record key of this install: in the Lease's namespace, where the controller lives. */
export function loadRecordKeyFor(config: Pick<Config, 'kubernetes' | 'controller'>, kc: KubeConfig): Promise<Buffer> {
  return loadRecordKey(kc.makeApiClient(CoreV1Api), leaseNamespace(config), config.controller.record_key_secret);
}

/**
 * A start-up read the API server may not answer yet (restarting, slow, or RBAC still being applied):
 * retried like the watches, 1 s doubling to 30 s, for as long as it takes; /readyz stays false meanwhile.
 */
async function untilDone<T>(log: Logger, what: string, attempt: () => Promise<T>): Promise<T> {
  for (let waitMs = 1_000; ; waitMs = Math.min(waitMs * 2, 30_000)) {
    try {
      return await attempt();
    } catch (err) {
      log.warn({ err: messageOf(err), retryInMs: waitMs }, `${what} failed; retrying`);
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}

/** The controller as a process: until SIGTERM or SIGINT (resolves) or a lost lease (exits 1). */
export async function runController(config: Config, configWarnings: readonly ConfigProblem[] = []): Promise<void> {
  const log = createLogger(config.logging);
  for (const warning of configWarnings) {
    if (warning.warning === 'no_effect')
      log.warn({ key: warning.key, source: warning.source, detail: warning.message }, 'setting accepted from the Go original has no effect');
    else log.warn({ key: warning.key, file: warning.source, expected: warning.expected }, 'unknown config.toml key ignored');
  }
  const metrics = createMetrics();
  const kc = loadKubeConfig(undefined, callConnectionsFor(config.controller.max_concurrent_patches));
  const heartbeat = new LoopHeartbeat();
  const signer = new DeferredRecordSigner();
  const controller = new Controller({ config, kc, log, metrics, alerter: createAlerter(config, log), onQueueTick: () => heartbeat.beat('queue'), signer });
  const elector = config.controller.leader_elect
    ? new LeaderElector({
        api: kc.makeApiClient(CoordinationV1Api),
        name: config.controller.lease_name,
        namespace: leaseNamespace(config),
        identity: process.env.POD_NAME ?? `${hostname()}-${process.pid}`,
        leaseDurationMs: config.controller.lease_duration,
        renewDeadlineMs: config.controller.renew_deadline,
        retryPeriodMs: config.controller.retry_period,
        log,
      })
    : undefined;
  const ops = await startOpsServer({
    port: config.controller.metrics_port,
    registry: metrics.registry,
    logger: log,
    health: () => {
      const r = controller.readiness;
      return {
        loops: heartbeat.report(),
        // A standby's queue loop is stopped on purpose: only the acting replica must reach the queue.
        ready: {
          // Ready once it could act: caches listed and the restore-record key read.
          cachesSynced: r.cachesSynced && signer.ready,
          queueReachable: r.acting ? r.queueReachable : true,
          detail: r.acting ? r.lastQueueError : 'standby: waiting for the lease',
        },
      };
    },
  });
  log.info({ port: ops.port }, 'metrics and health on /metrics, /healthz, /readyz');
  // The preflight runs beside the start and stops nothing: a missing Fargate profile or verb is
  // logged as an error, and the controller still seals nodes, moves what it can and alerts.
  let synced: () => void = () => {};
  const watching = new Promise<void>((resolve) => {
    synced = resolve;
  });
  const preflight = startupPreflight(config, kc, controller, watching, log);
  // Read beside the watches' first lists, standby or not: a replica elected later verifies records at once.
  const keyRead = untilDone(log, 'reading the restore-record key', () => loadRecordKeyFor(config, kc)).then((key) => signer.useKey(key));
  try {
    await controller.startWatching();
  } catch (err) {
    // A refused list stops the start; let the preflight name the missing verb first.
    await Promise.race([preflight, new Promise((r) => setTimeout(r, 10_000).unref())]);
    throw err;
  }
  synced();
  await keyRead;
  // Nothing is awaited from here to act(): /readyz turns 200 only once it can be served.
  const act = () => {
    const round = QUEUE_LONG_POLL_MS + config.monitoring.check_interval;
    heartbeat.register('queue', Math.max(MIN_QUEUE_SILENCE_MS, QUEUE_ROUNDS_MISSED_BEFORE_UNHEALTHY * round));
    metrics.leader.set(1);
    controller.startActing();
  };
  const stopped = new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'draining in-flight work and stopping');
      void controller
        .stop()
        .then(() => elector?.stop())
        .then(() => ops.close())
        .then(() => resolve());
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  if (!elector) act();
  else {
    log.info({ lease: config.controller.lease_name }, 'standing by for the lease');
    void elector.run(act).then((how) => {
      if (how !== 'lost') return;
      // Another replica may already act: stop at once, and let the restart campaign again.
      log.error('leadership lost; exiting so that only one replica acts');
      process.exit(1);
    });
  }
  await stopped;
}

/** How long the start's queue check waits for the first receive before calling this replica a standby. */
const PREFLIGHT_QUEUE_WAIT_MS = 30_000;

/** The preflight at start (preflight/preflight.ts): each result logged, a failure at error. */
function startupPreflight(config: Config, kc: KubeConfig, controller: Controller, watching: Promise<void>, log: Logger): Promise<CheckResult[]> {
  return runPreflight(
    config,
    leaseNamespace(config),
    {
      managedNamespaces: async () => {
        await watching;
        return controller.managedNamespaces();
      },
      fargateProfiles: () => fetchFargateProfiles(config),
      queue: () => controller.queueCheck(PREFLIGHT_QUEUE_WAIT_MS),
      access: accessProbe(kc),
    },
    (r) => {
      const fields = { check: r.check, subject: r.subject, detail: r.detail };
      if (r.status === 'failed') log.error(fields, 'preflight check failed');
      else if (r.status === 'skipped') log.info(fields, 'preflight check skipped');
      else log.info(fields, 'preflight check passed');
    },
  );
}
