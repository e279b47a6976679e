// Annotation keys. They are the Go original's keys, kept byte for byte so existing manifests work.

/** Set by users on a Deployment to tune or opt out of the controller's behaviour. */
export const USER_ANNOTATIONS = {
  /** Default opt-in key; the key actually used is configurable (kubernetes.opt_in_annotation). */
  enabled: 'spot-orchestrator/enabled',
  recoveryCooldown: 'spot-orchestrator/recovery-cooldown',
  allowFargate: 'spot-orchestrator/allow-fargate',
  recoveryEnabled: 'spot-orchestrator/recovery-enabled',
  rolloutTimeout: 'spot-orchestrator/rollout-timeout',
  verificationDelay: 'spot-orchestrator/verification-delay',
  /** Its rank in phase 1 under Fargate's launch throttle, over its pods' PriorityClass value. */
  priority: 'spot-orchestrator/priority',
  /** Move it on a rebalance recommendation for a node it has pods on, over migration.on_rebalance. */
  moveOnRebalance: 'spot-orchestrator/move-on-rebalance',
} as const;

/** Written by the controller: the state machine of a Deployment lives here. */
export const MANAGED_ANNOTATIONS = {
  state: 'spot-orchestrator/state',
  migratedAt: 'spot-orchestrator/migrated-at',
  reason: 'spot-orchestrator/reason',
  lastRecoveredAt: 'spot-orchestrator.io/last-recovered-at',
  recoveryReason: 'spot-orchestrator.io/recovery-reason',
  failedRecoveryAttempts: 'spot-orchestrator.io/failed-recovery-attempts',
  /**
   * JSON of what the Fargate patch removed or replaced (scheduling constraints, labels, strategy),
   * so recovery and rollback restore the template exactly as the user wrote it.
   */
  savedSpec: 'spot-orchestrator/saved-spec',
  /** HMAC of the saved-spec and the Deployment's identity (migration/record-signature.ts): no signature, no restore. */
  savedSpecSignature: 'spot-orchestrator/saved-spec-signature',
  /** The instance ids and event id of the interruption being handled; lets a restart finish it. */
  interruption: 'spot-orchestrator/interruption',
  /** Phase of an in-flight move: migrating | recovering | rolling-back; absent when at rest. */
  phase: 'spot-orchestrator/phase',
} as const;

export const STATES = ['spot', 'fargate'] as const;
export type DeploymentState = (typeof STATES)[number];

export const REASONS = ['spot-interruption', 'manual', 'rollback'] as const;
export type MigrationReason = (typeof REASONS)[number];

/** Written on Nodes: what the controller has been told about the instance behind them. */
export const NODE_ANNOTATIONS = {
  interruptedAt: 'spot-orchestrator/interrupted-at',
  terminationDeadline: 'spot-orchestrator/termination-deadline',
  rebalanceRecommendedAt: 'spot-orchestrator/rebalance-recommended-at',
  /** The recommendation whose move was made (its time): a node's recommendation moves its Deployments once. */
  rebalanceMovedAt: 'spot-orchestrator/rebalance-moved-at',
  /** An AWS Health scheduled change's startTime: the move is due `scheduled_change_lead` before it. */
  scheduledChangeAt: 'spot-orchestrator/scheduled-change-at',
  /** The Health event that announced it (its id), so the move and its summary name it. */
  scheduledChangeEvent: 'spot-orchestrator/scheduled-change-event',
  /**
   * JSON: for each controller scope (its namespace; namespace/deployment in single mode), the
   * scheduled-change-at value its move was made for, so a restart does not move it again and another
   * install's move does not stand in for this one's.
   */
  scheduledChangeMoved: 'spot-orchestrator/scheduled-change-moved',
  /** JSON of what the controller added when it sealed the node (taint, label, cordon): only that is taken back. */
  sealed: 'spot-orchestrator/sealed',
  /** When the controller found the sealed node alive well after its deadline and took its marks back. */
  survivedAt: 'spot-orchestrator/survived-at',
} as const;

/** The controller's own taint on a doomed node: nothing new is scheduled there. */
export const INTERRUPTED_TAINT_KEY = 'spot-orchestrator/interrupted';
/** Well-known label: the cloud's service controller takes the node out of external load balancers. */
export const EXCLUDE_FROM_LB_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';
