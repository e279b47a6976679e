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
} as const;
