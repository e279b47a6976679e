// What the controller tells people about. Senders (Slack) format these; the controller never
// waits on a sender: alerting is best effort and must not slow or fail a migration.

export interface DeploymentRef {
  namespace: string;
  name: string;
}

export type DeploymentOutcome =
  | { result: 'migrated'; durationMs: number }
  | { result: 'skipped'; reason: string; detail: string }
  | { result: 'failed'; reason: string; rolledBack: boolean }
  | { result: 'in_progress' };

export interface InterruptionInstance {
  instanceId: string;
  node?: string;
}

export type Alert =
  | { kind: 'interruption_detected'; eventId: string; instances: InterruptionInstance[]; deadline: Date; deployments: number }
  | { kind: 'migration_started'; eventId: string; deployments: DeploymentRef[] }
  /** One per interruption once phase 2 settles: every Deployment with its outcome (long tail folded). */
  | {
      kind: 'migration_summary';
      eventId: string;
      instances: InterruptionInstance[];
      outcomes: (DeploymentRef & DeploymentOutcome)[];
      durationMs: number;
      /** Deployments that AWS's Fargate launch throttle was expected to make late, and why (moved all the same, last). */
      expectedLate?: (DeploymentRef & { why: string })[];
    }
  | { kind: 'migration_failed'; eventId: string; deployment: DeploymentRef; reason: string }
  | { kind: 'rollback'; deployment: DeploymentRef; reason: string; to: 'spot' | 'fargate' | 'none' }
  /**
   * Someone put the spot template back during a move to Fargate (a GitOps tool's self-heal, a
   * `helm upgrade`): `reapplied` the first time, `stopped` when it came back and the move was ended.
   */
  | { kind: 'template_reverted'; eventId: string; deployment: DeploymentRef; detail: string; action: 'reapplied' | 'stopped'; fix: string }
  | { kind: 'health_check_failed'; deployment: DeploymentRef; attempt: number; of: number; detail: string }
  | { kind: 'recovery_started'; deployments: DeploymentRef[] }
  | { kind: 'recovery_completed'; deployment: DeploymentRef; durationMs: number }
  | { kind: 'recovery_failed'; deployment: DeploymentRef; reason: string; attempts: number; nextAttemptAt?: Date };

export type AlertKind = Alert['kind'];

/** Never throws and never blocks: implementations queue and send in the background. */
export interface Alerter {
  notify(alert: Alert): void;
  /** Waits for queued alerts to be sent (or given up on), for shutdown and tests. */
  flush(timeoutMs?: number): Promise<void>;
}

export const NO_ALERTS: Alerter = { notify() {}, async flush() {} };
