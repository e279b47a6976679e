// The controller's settings: their types, defaults, environment names and rules, in one table (SCHEMA).
// Property names are the config.toml keys, so a setting has one name in the file, in the code,
// in error messages and in `config check`. Durations are milliseconds.
//
// Keys of our own, beyond the Go original's:
//
// | key                                  | default | env                                          | meaning                                              |
// |--------------------------------------|---------|----------------------------------------------|------------------------------------------------------|
// | controller.dry_run                   | false   | DRY_RUN                                      | log every change instead of making it                |
// | controller.metrics_port              | 8080    | METRICS_PORT                                 | port of the Prometheus /metrics endpoint             |
// | controller.max_concurrent_patches    | 50      | MAX_CONCURRENT_PATCHES                       | Deployment patches in flight during an interruption  |
// | controller.max_concurrent_recoveries | 5       | MAX_CONCURRENT_RECOVERIES                    | Fargate-to-spot moves in flight at once              |
// | controller.leader_elect              | false   | LEADER_ELECT                                 | run several replicas; only the Lease holder acts     |
// | controller.lease_name                | spot-fargate-orchestrator | LEASE_NAME                 | coordination.k8s.io Lease used for the election      |
// | controller.lease_namespace           | (the one managed namespace) | LEASE_NAMESPACE, POD_NAMESPACE | namespace of that Lease;       |
// |                                      |         |                                              | required with several namespaces (leader_elect on)  |
// | kubernetes.namespaces                | (unset) | NAMESPACES                                   | namespaces managed: names separated by commas, or    |
// |                                      |         |                                              | "*" for all; unset: kubernetes.namespace alone       |
// | kubernetes.namespace_selector        | (unset) | NAMESPACE_SELECTOR                           | label selector on Namespaces: those matching are     |
// |                                      |         |                                              | managed (namespaces unset or "*")                    |
// | controller.lease_duration            | 15s     | LEASE_DURATION                               | a standby takes over this long after renewals stop   |
// | controller.renew_deadline            | 10s     | RENEW_DEADLINE                               | the leader gives up if it cannot renew for this long |
// | controller.retry_period              | 2s      | RETRY_PERIOD                                 | how often standbys try and the leader renews         |
// | controller.node_events_namespace     | default | NODE_EVENTS_NAMESPACE                        | namespace of the Events about Nodes: default (where  |
// |                                      |         |                                              | kubelet writes its own) or kube-system, the only two |
// |                                      |         |                                              | the API server accepts for a cluster-scoped object   |
// | controller.record_key_secret         | spot-fargate-orchestrator-record-key | RECORD_KEY_SECRET | Secret (in the Lease's namespace) with the |
// |                                      |         |                                              | key that signs restore records; made if missing      |
// | migration.triage                     | true    | MIGRATION_TRIAGE                             | phase 1 in order of what is at stake, not arrival   |
// | migration.fargate_launch_burst       | 20      | FARGATE_LAUNCH_BURST                         | AWS's Fargate launch throttle: bucket size           |
// | migration.fargate_launch_rate        | 20/s    | FARGATE_LAUNCH_RATE                          | ... and its refill rate                              |
// | migration.fargate_start_estimate     | 60s     | FARGATE_START_ESTIMATE                       | from a Fargate launch to the pod Ready               |
// | migration.on_rebalance             | false   | MIGRATION_ON_REBALANCE                       | move on a rebalance recommendation (per Deployment:  |
// |                                      |         |                                              | spot-orchestrator/move-on-rebalance)                 |
// | migration.scheduled_change_lead    | 10m     | SCHEDULED_CHANGE_LEAD                        | move this long before an AWS Health scheduled change |
// | migration.survivor_grace             | 10m     | SURVIVOR_GRACE                               | a sealed node Ready this long past its deadline      |
// |                                      |         |                                              | survived: its seal is taken back                     |
// | migration.rebalance_mark_ttl         | 1h      | REBALANCE_MARK_TTL                           | a rebalance recommendation keeps recovery off its    |
// |                                      |         |                                              | node this long, then its mark is removed             |
// | aws.endpoint_url                     | (unset) | AWS_ENDPOINT_URL_SQS, else AWS_ENDPOINT_URL  | SQS endpoint override (the AWS SDK's own variables,  |
// |                                      |         |                                              | so a local SQS server needs no special wiring)       |
// | aws.visibility_timeout               | 30s     | SQS_VISIBILITY_TIMEOUT                       | a received message stays hidden this long, renewed   |
// |                                      |         |                                              | while it is handled (whole seconds, at most 12h)     |
// | aws.keep_foreign_messages            | false   | SQS_KEEP_FOREIGN_MESSAGES                    | leave messages for instances not in this cluster in  |
// |                                      |         |                                              | the queue, for the other clusters that share it      |
// | aws.cluster_name                     | (unset) | CLUSTER_NAME                                 | the EKS cluster's name: the preflight (at start and  |
// |                                      |         |                                              | `doctor`) checks its Fargate profiles; unset: skipped|
// | aws.max_event_age                    | 10m     | MAX_EVENT_AGE                                | older events are counted and dropped (a DLQ redrive  |
// |                                      |         |                                              | days later must not cordon healthy nodes)            |
// | aws.event_account                    | (the account in sqs_queue_url) | EVENT_ACCOUNT         | events from any other account are dropped            |
// | aws.event_region                     | (aws.region) | EVENT_REGION                            | events from any other Region are dropped             |

import type { LabelSelector } from './label-selector.js';
import {
  accountIdType,
  booleanType,
  durationType,
  enumType,
  httpUrlType,
  integerType,
  labelSelectorType,
  type NamespaceList,
  namespaceListType,
  ratePerSecondType,
  regionType,
  textType,
  type ValueType,
} from './value-types.js';

export const MODES = ['single', 'namespace'] as const;

/**
 * Where an Event about a Node (which has no namespace) may be written: the API server accepts one in
 * `default`, and in `kube-system` only as a new-style Event (eventTime, reportingInstance, action);
 * any other namespace is refused ("involvedObject.namespace: does not match event.namespace").
 */
export const NODE_EVENT_NAMESPACES = ['default', 'kube-system'] as const;
export type NodeEventNamespace = (typeof NODE_EVENT_NAMESPACES)[number];
export type Mode = (typeof MODES)[number];

/** pino's levels; the logger is configured with this value as is. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** auto: console when stdout is a terminal, json otherwise. */
export const LOG_FORMATS = ['auto', 'console', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Also sizes the default connection pool of the kube client (kube/api.ts). */
export const DEFAULT_MAX_CONCURRENT_PATCHES = 50;

export interface Config {
  kubernetes: {
    /** The one namespace managed when kubernetes.namespaces and namespace_selector are unset (scope.ts). */
    namespace: string;
    /** Several namespaces, or "*" for every one; wins over namespace. */
    namespaces?: NamespaceList;
    /** Every namespace whose labels match (with namespaces unset or "*"). */
    namespace_selector?: LabelSelector;
    /** single: manage deployment_name only; namespace: every opted-in Deployment of the scope. */
    mode: Mode;
    /** Required in single mode. */
    deployment_name?: string;
    service_name?: string;
    opt_in_annotation: string;
    service_label_selector: string;
  };
  monitoring: {
    check_interval: number;
    health_check_retries: number;
    health_check_interval: number;
  };
  migration: {
    rollout_timeout: number;
    verification_delay: number;
    /** Phase 1 patches in order of what is at stake (controller/triage.ts); false: in arrival order. */
    triage: boolean;
    /** AWS's Fargate launch throttle for the account (token bucket), for the per-interruption forecast. */
    fargate_launch_burst: number;
    /** Launches per second. */
    fargate_launch_rate: number;
    /** From a Fargate launch to the pod Ready. */
    fargate_start_estimate: number;
    /** Move a node's Deployments on its rebalance recommendation (once per node); annotation move-on-rebalance overrides. */
    on_rebalance: boolean;
    /** An AWS Health scheduled change's nodes are moved off this long before its startTime. */
    scheduled_change_lead: number;
    /** A sealed node still Ready this long after its deadline survived: the controller takes its seal back. */
    survivor_grace: number;
    /** A rebalance recommendation's node mark (which keeps recovery off the node) is removed this long after it. */
    rebalance_mark_ttl: number;
  };
  recovery: {
    enabled: boolean;
    interval: number;
    cooldown: number;
    timeout: number;
    backoff_base: number;
    max_backoff: number;
  };
  compute: {
    spot_label: string;
    fargate_label: string;
    compute_label_key: string;
  };
  aws: {
    region: string;
    sqs_queue_url: string;
    /** Endpoint override for SQS (local server); unset means the SDK's regional endpoint. */
    endpoint_url?: string;
    /** Asked for on every receive and renewed while the message is handled. */
    visibility_timeout: number;
    /**
     * A queue shared with other clusters' consumers: a message whose instances have no Node here is
     * left in the queue for its owner instead of deleted (intake/foreign-messages.ts).
     */
    keep_foreign_messages: boolean;
    /** The EKS cluster, whose Fargate profiles the preflight checks (preflight/); unset: that check is skipped. */
    cluster_name?: string;
    /** An event whose `time` is older than this is dropped (intake/event-trust.ts), a scheduled change only once its startTime has passed too. */
    max_event_age: number;
    /** The account whose events are acted on; unset: the account in sqs_queue_url. */
    event_account?: string;
    /** The Region whose events are acted on; unset: aws.region. */
    event_region?: string;
  };
  alerts: {
    enabled: boolean;
    /** Secret: never logged or shown. */
    slack_webhook_url?: string;
  };
  logging: {
    level: LogLevel;
    format: LogFormat;
  };
  controller: {
    dry_run: boolean;
    metrics_port: number;
    max_concurrent_patches: number;
    max_concurrent_recoveries: number;
    /** Run as one of several replicas: only the holder of the Lease receives messages and acts. */
    leader_elect: boolean;
    lease_name: string;
    /** Where the Lease lives; defaults to the managed namespace when there is only one. */
    lease_namespace?: string;
    lease_duration: number;
    renew_deadline: number;
    retry_period: number;
    /** Events about Nodes go here: Nodes have no namespace of their own. The RBAC must allow events there. */
    node_events_namespace: NodeEventNamespace;
    /** The Secret, in the Lease's namespace (the controller's own), holding the restore-record key. */
    record_key_secret: string;
  };
}

/**
 * Everything but the queue: what watching and changing the cluster needs. The commands that act
 * without receiving (`recover`) take this, so an uninstall after the queue is gone needs no queue URL.
 */
export type ClusterConfig = Omit<Config, 'aws'>;

/** "section.key", e.g. "migration.rollout_timeout". */
export type ConfigKey = { [S in keyof Config]: `${S}.${keyof Config[S] & string}` }[keyof Config];

export interface Setting<T> {
  type: ValueType<T>;
  /** Environment variables, first set one wins. An empty variable counts as unset (as in the Go original). */
  env: readonly string[];
  /** Written as it would be in config.toml, and parsed by `type` like any other layer. Absent: no default. */
  default?: string | number | boolean;
  /** Without a default: whether leaving it unset is a problem. */
  required?: boolean;
  /** Its value never appears in messages or `config check` output. */
  secret?: boolean;
}

type Schema = { [S in keyof Config]: { [K in keyof Config[S]]-?: Setting<Exclude<Config[S][K], undefined>> } };

const positiveDuration = durationType({ allowZero: false });
const nonNegativeDuration = durationType({ allowZero: true });
/** SQS takes whole seconds, 1 s to 12 h. */
const sqsVisibilityTimeout: ValueType<number> = {
  ...positiveDuration,
  expected: 'a duration in whole seconds from 1s to 12h, such as "30s" (what SQS accepts)',
  parse(raw) {
    const parsed = positiveDuration.parse(raw);
    if (!parsed.ok) return { ...parsed, expected: sqsVisibilityTimeout.expected };
    if (parsed.value % 1000 !== 0) return { ok: false, expected: sqsVisibilityTimeout.expected, reason: 'not whole seconds' };
    if (parsed.value > 43_200_000) return { ok: false, expected: sqsVisibilityTimeout.expected, reason: 'longer than 12h' };
    return parsed;
  },
};

const setting = <T>(type: ValueType<T>, env: string | readonly string[], options: Omit<Setting<T>, 'type' | 'env'> = {}): Setting<T> => ({
  type,
  env: typeof env === 'string' ? [env] : env,
  ...options,
});

export const SCHEMA: Schema = {
  kubernetes: {
    namespace: setting(textType, 'NAMESPACE', { default: 'default' }),
    namespaces: setting(namespaceListType, 'NAMESPACES'), // with namespace or a selector: load.ts
    namespace_selector: setting(labelSelectorType, 'NAMESPACE_SELECTOR'),
    mode: setting(enumType(MODES), 'MODE', { default: 'single' }),
    deployment_name: setting(textType, 'DEPLOYMENT_NAME'), // required in single mode: checked in load.ts
    service_name: setting(textType, 'SERVICE_NAME'),
    opt_in_annotation: setting(textType, 'OPT_IN_ANNOTATION', { default: 'spot-orchestrator/enabled' }),
    service_label_selector: setting(textType, 'SERVICE_LABEL_SELECTOR', { default: 'app' }),
  },
  monitoring: {
    check_interval: setting(positiveDuration, 'CHECK_INTERVAL', { default: '5s' }),
    health_check_retries: setting(integerType(1), 'HEALTH_CHECK_RETRIES', { default: 3 }),
    health_check_interval: setting(positiveDuration, 'HEALTH_CHECK_INTERVAL', { default: '2s' }),
  },
  migration: {
    rollout_timeout: setting(positiveDuration, 'ROLLOUT_TIMEOUT', { default: '120s' }),
    verification_delay: setting(nonNegativeDuration, 'VERIFICATION_DELAY', { default: '5s' }),
    triage: setting(booleanType, 'MIGRATION_TRIAGE', { default: true }),
    // AWS's documented throttle for accounts that launch only EKS pods (other accounts get a burst of 100).
    fargate_launch_burst: setting(integerType(1), 'FARGATE_LAUNCH_BURST', { default: 20 }),
    fargate_launch_rate: setting(ratePerSecondType, 'FARGATE_LAUNCH_RATE', { default: '20/s' }),
    fargate_start_estimate: setting(positiveDuration, 'FARGATE_START_ESTIMATE', { default: '60s' }),
    on_rebalance: setting(booleanType, 'MIGRATION_ON_REBALANCE', { default: false }),
    // Zero is meaningful: move at the change's startTime itself.
    scheduled_change_lead: setting(nonNegativeDuration, 'SCHEDULED_CHANGE_LEAD', { default: '10m' }),
    survivor_grace: setting(nonNegativeDuration, 'SURVIVOR_GRACE', { default: '10m' }),
    rebalance_mark_ttl: setting(positiveDuration, 'REBALANCE_MARK_TTL', { default: '1h' }),
  },
  recovery: {
    enabled: setting(booleanType, 'RECOVERY_ENABLED', { default: true }),
    interval: setting(positiveDuration, 'RECOVERY_INTERVAL', { default: '5m' }),
    // Zero cooldown and backoff are meaningful: recover (or retry) as soon as spot looks healthy.
    cooldown: setting(nonNegativeDuration, 'RECOVERY_COOLDOWN', { default: '45m' }),
    timeout: setting(positiveDuration, 'RECOVERY_TIMEOUT', { default: '3m' }),
    backoff_base: setting(nonNegativeDuration, 'RECOVERY_BACKOFF_BASE', { default: '15m' }),
    max_backoff: setting(nonNegativeDuration, 'RECOVERY_MAX_BACKOFF', { default: '4h' }), // >= backoff_base: load.ts
  },
  compute: {
    spot_label: setting(textType, 'SPOT_LABEL', { default: 'spot' }),
    fargate_label: setting(textType, 'FARGATE_LABEL', { default: 'fargate' }),
    compute_label_key: setting(textType, 'COMPUTE_LABEL_KEY', { default: 'compute-type' }),
  },
  aws: {
    region: setting(textType, 'AWS_REGION', { default: 'us-east-1' }),
    sqs_queue_url: setting(httpUrlType, 'SQS_QUEUE_URL', { required: true }),
    endpoint_url: setting(httpUrlType, ['AWS_ENDPOINT_URL_SQS', 'AWS_ENDPOINT_URL']),
    visibility_timeout: setting(sqsVisibilityTimeout, 'SQS_VISIBILITY_TIMEOUT', { default: '30s' }),
    // One queue per cluster is the design (as Karpenter requires); this is for those who must share.
    keep_foreign_messages: setting(booleanType, 'SQS_KEEP_FOREIGN_MESSAGES', { default: false }),
    // The name Kubernetes does not know: only the EKS API does (the preflight's Fargate profile check).
    cluster_name: setting(textType, 'CLUSTER_NAME'),
    // Zero would drop every event: refused. A spot warning is worthless after its two minutes, so the
    // default leaves room for redelivery after a controller restart (30 s) and clock skew, no more.
    max_event_age: setting(positiveDuration, 'MAX_EVENT_AGE', { default: '10m' }),
    event_account: setting(accountIdType, 'EVENT_ACCOUNT'),
    event_region: setting(regionType, 'EVENT_REGION'),
  },
  alerts: {
    enabled: setting(booleanType, 'ALERTS_ENABLED', { default: true }),
    // Checked only while alerts are enabled (load.ts), so a stale value cannot block a start with alerts off.
    slack_webhook_url: setting(textType, 'SLACK_WEBHOOK_URL', { secret: true }),
  },
  logging: {
    level: setting(enumType(LOG_LEVELS), 'LOG_LEVEL', { default: 'info' }),
    format: setting(enumType(LOG_FORMATS), 'LOG_FORMAT', { default: 'auto' }),
  },
  controller: {
    dry_run: setting(booleanType, 'DRY_RUN', { default: false }),
    metrics_port: setting(integerType(1, 65535), 'METRICS_PORT', { default: 8080 }),
    max_concurrent_patches: setting(integerType(1), 'MAX_CONCURRENT_PATCHES', { default: DEFAULT_MAX_CONCURRENT_PATCHES }),
    max_concurrent_recoveries: setting(integerType(1), 'MAX_CONCURRENT_RECOVERIES', { default: 5 }),
    leader_elect: setting(booleanType, 'LEADER_ELECT', { default: false }),
    lease_name: setting(textType, 'LEASE_NAME', { default: 'spot-fargate-orchestrator' }),
    lease_namespace: setting(textType, ['LEASE_NAMESPACE', 'POD_NAMESPACE']),
    lease_duration: setting(positiveDuration, 'LEASE_DURATION', { default: '15s' }),
    renew_deadline: setting(positiveDuration, 'RENEW_DEADLINE', { default: '10s' }),
    retry_period: setting(positiveDuration, 'RETRY_PERIOD', { default: '2s' }),
    node_events_namespace: setting(enumType(NODE_EVENT_NAMESPACES), 'NODE_EVENTS_NAMESPACE', { default: 'default' }),
    record_key_secret: setting(textType, 'RECORD_KEY_SECRET', { default: 'spot-fargate-orchestrator-record-key' }),
  },
};

/** Looks up a setting by its dotted key. */
export function settingFor(key: ConfigKey): Setting<unknown> {
  const [section, name] = key.split('.') as [keyof Config, string];
  return (SCHEMA[section] as Record<string, Setting<unknown>>)[name]!;
}
