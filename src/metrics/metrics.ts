// Every Prometheus metric the controller exposes, created in one place so names, labels and buckets
// stay consistent and the dashboard can be checked against them. Names follow
// `spot_orchestrator_<subsystem>_<thing>`, counters end in `_total`, durations in `_seconds`.
import { type Clock, systemClock } from '../clock.js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export const PREFIX = 'spot_orchestrator_';

export const MESSAGE_KINDS = [
  'spot_interrupted',
  'capacity_reservation_interrupted',
  'scheduled_change',
  'rebalance_recommendation',
  'state_change',
  'unknown',
  'malformed',
] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

/** Where handling a queue message failed: reading it, acting on it, or removing it from the queue. */
export const MESSAGE_STAGES = ['parse', 'handle', 'delete'] as const;
export type MessageStage = (typeof MESSAGE_STAGES)[number];

/**
 * What became of a message about instances with no Node in this cluster: deleted (the default), or
 * kept in the queue (aws.keep_foreign_messages): released at the first sighting, held when seen again.
 */
export const FOREIGN_ACTIONS = ['deleted', 'released', 'held'] as const;
export type ForeignAction = (typeof FOREIGN_ACTIONS)[number];

/**
 * Why an event was dropped without acting on it: from another account or Region, older than
 * aws.max_event_age (intake/event-trust.ts), or a spot warning or rebalance recommendation for a node
 * that is not spot capacity (controller/interruption-handler.ts).
 */
export const DROP_REASONS = ['foreign_account', 'foreign_region', 'stale', 'not_spot_capacity'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export const INTERRUPTION_OUTCOMES = ['migrated', 'partial', 'nothing_to_do', 'foreign'] as const;
export type InterruptionOutcome = (typeof INTERRUPTION_OUTCOMES)[number];

export const ROLLBACK_TARGETS = ['spot', 'none'] as const;
export type RollbackTarget = (typeof ROLLBACK_TARGETS)[number];

export const RECOVERY_OUTCOMES = ['recovered', 'failed', 'rolled_back', 'ineligible'] as const;
export type RecoveryOutcome = (typeof RECOVERY_OUTCOMES)[number];

export const DEPLOYMENT_STATES = ['spot', 'fargate'] as const;
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

/** ReceiveMessage: milliseconds when messages wait, ~20 s when a long poll comes back empty. */
export const QUEUE_RECEIVE_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 22.5, 25];
/** Migration phases: patches take well under a second; rollouts wait for Fargate (~45 s) and must beat the 120 s warning. */
export const PHASE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 45, 60, 90, 120, 180, 300];
/** Returning to spot: a rollout plus health checks, from seconds up to half an hour of retries. */
export const RECOVERY_BUCKETS = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800];

/**
 * A prom-client Counter whose `inc` and `labels` accept only this label set, so a misspelt label
 * value (`kind: 'spot_interruption'`) fails to compile instead of creating a stray series.
 */
export type CounterOf<L extends Record<string, string | number>> = Omit<Counter<Extract<keyof L, string>>, 'inc' | 'labels'> & {
  inc(labels: L, value?: number): void;
  labels(labels: L): { inc(value?: number): void };
};

export interface StateCounts {
  spot: number;
  fargate: number;
}

/** A Deployment currently on Fargate, and since when (its migrated-at annotation). */
export interface FargateStay {
  namespace: string;
  deployment: string;
  since: Date;
}

export interface MetricsOptions {
  /** The clock time on Fargate is computed with at scrape time. */
  clock?: Pick<Clock, 'now'>;
  /**
   * Called when a scrape-time source (`setStateSource`, `setFargateSource`) throws; that metric then
   * shows no series for this scrape and the rest are still served. Without it the scrape fails with the error.
   */
  onSourceError?: (metric: string, err: unknown) => void;
}

export interface Metrics {
  readonly registry: Registry;

  readonly messagesReceived: CounterOf<{ kind: MessageKind }>;
  readonly messagesDeleted: CounterOf<{ kind: MessageKind }>;
  readonly messagesFailed: CounterOf<{ kind: MessageKind; stage: MessageStage }>;
  /** Receipts of messages about instances with no Node in this cluster, by what was done with them. */
  readonly messagesForeign: CounterOf<{ kind: MessageKind; action: ForeignAction }>;
  /** One ReceiveMessage call, long-poll wait included. */
  readonly queueReceiveSeconds: Histogram;
  /** Events dropped without acting on them, by kind and why. */
  readonly eventsDropped: CounterOf<{ kind: MessageKind; reason: DropReason }>;

  readonly interruptionsHandled: CounterOf<{ outcome: InterruptionOutcome }>;
  readonly deploymentsMigrated: Counter;
  readonly deploymentsFailed: CounterOf<{ reason: string }>;
  readonly deploymentsSkipped: CounterOf<{ reason: string }>;
  readonly rollbacks: CounterOf<{ to: RollbackTarget }>;
  /** Message received -> last patch accepted. */
  readonly phase1Seconds: Histogram;
  /** Phase 1 end -> last rollout settled. */
  readonly phase2Seconds: Histogram;
  /** The last interruption's Fargate launch forecast (controller/triage.ts, capacity/fargate-budget.ts). */
  readonly fargateForecast: Gauge<'what'>;
  /** Moves on a rebalance recommendation, once it is known whether a warning followed for the node. */
  readonly rebalanceMoves: CounterOf<{ followed_by_warning: 'true' | 'false' }>;

  readonly recoveries: CounterOf<{ outcome: RecoveryOutcome }>;
  readonly recoverySeconds: Histogram;

  /** Filled at scrape time from `setStateSource`; do not set directly. */
  readonly deploymentsByState: Gauge<'state'>;
  /** Filled at scrape time from `setFargateSource`; do not set directly. */
  readonly fargateSeconds: Gauge<'namespace' | 'deployment'>;
  /** Completed stays on Fargate; add to it with `addFargateTime`. */
  readonly fargateSecondsTotal: CounterOf<{ namespace: string; deployment: string }>;

  /** Kubernetes API errors; `code` is the HTTP status, or 'network' when no response came back. */
  readonly apiErrors: CounterOf<{ verb: string; code: number | 'network' }>;
  /** Every Kubernetes API call (not the watches), by RBAC verb, resource and HTTP status. */
  readonly kubeApiRequests: CounterOf<{ verb: string; resource: string; code: number | 'network' }>;
  /** How long the calls took until their answer came back, by verb and resource. */
  readonly kubeApiRequestSeconds: Histogram<'verb' | 'resource'>;
  /** 1 while this replica holds the lease, else 0. */
  readonly leader: Gauge;

  /** How many opted-in Deployments are in each state; read at every scrape. */
  setStateSource(source: () => StateCounts): void;
  /** The Deployments on Fargate right now; read at every scrape, so one that left disappears. */
  setFargateSource(source: () => Iterable<FargateStay>): void;
  /** Called when a Deployment returns to spot, with the length of the stay that just ended. */
  addFargateTime(namespace: string, deployment: string, seconds: number): void;
}

/**
 * Creates and registers every controller metric, plus Node's default process metrics, on `registry`.
 * Throws (from prom-client) if `registry` already holds any of them: call it once per registry.
 */
export function createMetrics(registry: Registry = new Registry(), options: MetricsOptions = {}): Metrics {
  const now = () => (options.clock ?? systemClock).now();
  const registers = [registry];

  collectDefaultMetrics({ register: registry, prefix: PREFIX });

  // A scrape-time source is our own code reading caches; if it throws, say which metric it fed.
  function read<T>(metric: string, source: () => T): T | undefined {
    try {
      return source();
    } catch (err) {
      if (!options.onSourceError) throw new Error(`reading the source of ${metric}`, { cause: err });
      options.onSourceError(metric, err);
      return undefined;
    }
  }

  const messagesReceived = new Counter({
    name: `${PREFIX}queue_messages_received_total`,
    help: 'Queue messages received, by event kind (malformed: could not be parsed).',
    labelNames: ['kind'],
    registers,
  });
  const messagesDeleted = new Counter({
    name: `${PREFIX}queue_messages_deleted_total`,
    help: 'Queue messages deleted after handling (or after failing to parse), by event kind.',
    labelNames: ['kind'],
    registers,
  });
  const messagesFailed = new Counter({
    name: `${PREFIX}queue_messages_failed_total`,
    help: 'Queue messages that failed, by event kind and stage (parse, handle, delete).',
    labelNames: ['kind', 'stage'],
    registers,
  });
  const messagesForeign = new Counter({
    name: `${PREFIX}queue_messages_foreign_total`,
    help:
      'Queue messages about instances with no Node in this cluster, by event kind and action: deleted, or kept in the queue ' +
      '(aws.keep_foreign_messages): released (first sighting, visible again at once) or held (seen again, hidden for longer).',
    labelNames: ['kind', 'action'],
    registers,
  });
  const eventsDropped = new Counter({
    name: `${PREFIX}events_dropped_total`,
    help:
      'Events dropped without touching the cluster, by event kind and reason: foreign_account, foreign_region, stale (older than ' +
      'aws.max_event_age), not_spot_capacity (a spot warning or rebalance recommendation for a node that is not spot).',
    labelNames: ['kind', 'reason'],
    registers,
  });
  const queueReceiveSeconds = new Histogram({
    name: `${PREFIX}queue_receive_duration_seconds`,
    help: 'Latency of one ReceiveMessage call, long-poll wait included.',
    buckets: QUEUE_RECEIVE_BUCKETS,
    registers,
  });

  const interruptionsHandled = new Counter({
    name: `${PREFIX}interruptions_handled_total`,
    help: 'Spot interruptions handled, by outcome (foreign: none of our nodes).',
    labelNames: ['outcome'],
    registers,
  });
  const deploymentsMigrated = new Counter({
    name: `${PREFIX}migration_deployments_migrated_total`,
    help: 'Deployments moved from spot to Fargate.',
    registers,
  });
  const deploymentsFailed = new Counter({
    name: `${PREFIX}migration_deployments_failed_total`,
    help: 'Deployments whose move to Fargate failed, by reason.',
    labelNames: ['reason'],
    registers,
  });
  const deploymentsSkipped = new Counter({
    name: `${PREFIX}migration_deployments_skipped_total`,
    help: 'Deployments not moved to Fargate, by reason.',
    labelNames: ['reason'],
    registers,
  });
  const rollbacks = new Counter({
    name: `${PREFIX}migration_rollbacks_total`,
    help: 'Migrations rolled back, by where the Deployment was left (spot, or none when it could not be restored).',
    labelNames: ['to'],
    registers,
  });
  const phase1Seconds = new Histogram({
    name: `${PREFIX}migration_phase1_duration_seconds`,
    help: 'Phase 1 of a migration: from message received to the last Deployment patch accepted.',
    buckets: PHASE_BUCKETS,
    registers,
  });
  const phase2Seconds = new Histogram({
    name: `${PREFIX}migration_phase2_duration_seconds`,
    help: 'Phase 2 of a migration: from the end of phase 1 to the last rollout settled.',
    buckets: PHASE_BUCKETS,
    registers,
  });

  const rebalanceMoves = new Counter({
    name: `${PREFIX}rebalance_moves_total`,
    help: 'Nodes whose Deployments moved on a rebalance recommendation, by whether an interruption warning followed (true) or the node outlived survivor_grace (false).',
    labelNames: ['followed_by_warning'],
    registers,
  });
  const fargateForecast = new Gauge({
    name: `${PREFIX}interruption_fargate_forecast`,
    help: "The last interruption's forecast under AWS's Fargate launch throttle: launches_needed, launches_in_time (Ready before the deadline), deployments_whole and deployments_late.",
    labelNames: ['what'],
    registers,
  });

  const recoveries = new Counter({
    name: `${PREFIX}recovery_outcomes_total`,
    help: 'Returns from Fargate to spot, by outcome (ineligible: not attempted).',
    labelNames: ['outcome'],
    registers,
  });
  const recoverySeconds = new Histogram({
    name: `${PREFIX}recovery_duration_seconds`,
    help: 'Time to return one Deployment from Fargate to spot.',
    buckets: RECOVERY_BUCKETS,
    registers,
  });

  let stateSource: (() => StateCounts) | undefined;
  const deploymentsByState = new Gauge({
    name: `${PREFIX}state_deployments`,
    help: 'Opted-in Deployments by where they run (spot or fargate).',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      if (!stateSource) return;
      const counts = read(`${PREFIX}state_deployments`, stateSource);
      if (!counts) return;
      for (const state of DEPLOYMENT_STATES) this.set({ state }, counts[state]);
    },
  });

  let fargateSource: (() => Iterable<FargateStay>) | undefined;
  const fargateSeconds = new Gauge({
    name: `${PREFIX}fargate_current_stay_seconds`,
    help: 'Time spent on Fargate so far by each Deployment currently there.',
    labelNames: ['namespace', 'deployment'],
    registers,
    collect() {
      // Rebuilt at every scrape so a Deployment that left Fargate disappears.
      this.reset();
      if (!fargateSource) return;
      const stays = read(`${PREFIX}fargate_current_stay_seconds`, fargateSource);
      if (!stays) return;
      const at = now().getTime();
      for (const { namespace, deployment, since } of stays) {
        // A migrated-at slightly in the future (clock skew) counts as just arrived.
        this.set({ namespace, deployment }, Math.max(0, (at - since.getTime()) / 1000));
      }
    },
  });
  const fargateSecondsTotal = new Counter({
    name: `${PREFIX}fargate_stay_seconds_total`,
    help: 'Time spent on Fargate by each Deployment, counted when it returns to spot.',
    labelNames: ['namespace', 'deployment'],
    registers,
  });

  const apiErrors = new Counter({
    name: `${PREFIX}kube_api_errors_total`,
    help: "Kubernetes API errors of the Deployment patches, by verb and HTTP status ('network' when no response came back); kube_api_requests_total counts every call.",
    labelNames: ['verb', 'code'],
    registers,
  });
  const kubeApiRequests = new Counter({
    name: `${PREFIX}kube_api_requests_total`,
    help: "Kubernetes API calls (not the watches), by verb, resource and HTTP status ('network' when no response came back).",
    labelNames: ['verb', 'resource', 'code'],
    registers,
  });
  const kubeApiRequestSeconds = new Histogram({
    name: `${PREFIX}kube_api_request_duration_seconds`,
    help: 'Kubernetes API calls (not the watches): time until the answer came back, by verb and resource.',
    labelNames: ['verb', 'resource'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const leader = new Gauge({
    name: `${PREFIX}leader_election_is_leader`,
    help: '1 while this replica holds the leader lease, else 0.',
    registers,
  });

  // Known label values start at zero so rate() and the dashboard see every series from the first scrape.
  for (const kind of MESSAGE_KINDS) {
    messagesReceived.inc({ kind }, 0);
    messagesDeleted.inc({ kind }, 0);
    for (const stage of MESSAGE_STAGES) messagesFailed.inc({ kind, stage }, 0);
    // Only events that name instances can be foreign.
    if (kind !== 'unknown' && kind !== 'malformed') for (const action of FOREIGN_ACTIONS) messagesForeign.inc({ kind, action }, 0);
  }
  for (const kind of MESSAGE_KINDS) {
    if (kind === 'unknown' || kind === 'malformed') continue;
    for (const reason of DROP_REASONS) {
      // Only the spot-only signals can be for a node that is not spot.
      if (reason === 'not_spot_capacity' && kind !== 'spot_interrupted' && kind !== 'rebalance_recommendation') continue;
      eventsDropped.inc({ kind, reason }, 0);
    }
  }
  for (const outcome of INTERRUPTION_OUTCOMES) interruptionsHandled.inc({ outcome }, 0);
  for (const to of ROLLBACK_TARGETS) rollbacks.inc({ to }, 0);
  for (const outcome of RECOVERY_OUTCOMES) recoveries.inc({ outcome }, 0);
  leader.set(0);

  return {
    registry,
    messagesReceived,
    messagesDeleted,
    messagesFailed,
    messagesForeign,
    queueReceiveSeconds,
    eventsDropped,
    interruptionsHandled,
    deploymentsMigrated,
    deploymentsFailed,
    deploymentsSkipped,
    rollbacks,
    phase1Seconds,
    phase2Seconds,
    fargateForecast,
    rebalanceMoves,
    recoveries,
    recoverySeconds,
    deploymentsByState,
    fargateSeconds,
    fargateSecondsTotal,
    apiErrors,
    kubeApiRequests,
    kubeApiRequestSeconds,
    leader,
    setStateSource(source) {
      stateSource = source;
    },
    setFargateSource(source) {
      fargateSource = source;
    },
    addFargateTime(namespace, deployment, seconds) {
      // prom-client throws on a negative increment; a stay "ending before it began" is clock skew, not time.
      if (!Number.isFinite(seconds) || seconds < 0) return;
      fargateSecondsTotal.inc({ namespace, deployment }, seconds);
    },
  };
}
