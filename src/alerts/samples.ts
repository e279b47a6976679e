// One realistic alert of each kind, for `alerts test` (send them all to check a webhook and see how
// each looks in the channel) and for tests. Times are relative to `now` so deadlines look live.

import type { Alert, AlertKind, DeploymentRef } from './alert.js';

const EVENT_ID = '8f3c2a1e-5b7d-4c9a-9e21-6d0f4b3a7c55';
const INSTANCES = [
  { instanceId: 'i-0a1b2c3d4e5f60718', node: 'ip-10-0-12-34.eu-west-1.compute.internal' },
  { instanceId: 'i-0f9e8d7c6b5a40312', node: 'ip-10-0-47-201.eu-west-1.compute.internal' },
];
const API: DeploymentRef = { namespace: 'shop', name: 'checkout-api' };
const WORKER: DeploymentRef = { namespace: 'shop', name: 'order-worker' };
const SEARCH: DeploymentRef = { namespace: 'catalog', name: 'search' };
const CRON: DeploymentRef = { namespace: 'ops', name: 'report-renderer' };

/** Every kind, in the order they happen around one interruption and its recovery. */
export function sampleAlerts(now: Date = new Date()): Alert[] {
  const at = (ms: number) => new Date(now.getTime() + ms);
  const samples: { [K in AlertKind]: Extract<Alert, { kind: K }> } = {
    interruption_detected: { kind: 'interruption_detected', eventId: EVENT_ID, instances: INSTANCES, deadline: at(110_000), deployments: 4 },
    migration_started: { kind: 'migration_started', eventId: EVENT_ID, deployments: [API, WORKER, SEARCH, CRON] },
    health_check_failed: {
      kind: 'health_check_failed',
      deployment: SEARCH,
      attempt: 2,
      of: 3,
      detail: '1/3 updated and available; pod search-7d9f-x2k4q: readiness probe failed: HTTP 503',
    },
    migration_failed: {
      kind: 'migration_failed',
      eventId: EVENT_ID,
      deployment: SEARCH,
      reason: 'rollout did not complete within 2m0s: 1/3 updated and available',
    },
    rollback: { kind: 'rollback', deployment: SEARCH, reason: 'migration to Fargate failed its health checks', to: 'spot' },
    template_reverted: {
      kind: 'template_reverted',
      eventId: EVENT_ID,
      deployment: WORKER,
      detail: 'template label compute-type=spot, nodeSelector selects spot',
      action: 'reapplied',
      fix: 'a GitOps tool or a `helm upgrade` of the application re-applied the spot template: see docs/gitops.md',
    },
    migration_summary: {
      kind: 'migration_summary',
      eventId: EVENT_ID,
      instances: INSTANCES,
      durationMs: 97_400,
      outcomes: [
        { ...API, result: 'migrated', durationMs: 41_200 },
        { ...WORKER, result: 'migrated', durationMs: 28_900 },
        { ...CRON, result: 'skipped', reason: 'fargate_incompatible', detail: 'uses a hostPath volume' },
        { ...SEARCH, result: 'failed', reason: 'health checks failed', rolledBack: true },
      ],
    },
    recovery_started: { kind: 'recovery_started', deployments: [API, WORKER] },
    recovery_completed: { kind: 'recovery_completed', deployment: API, durationMs: 52_300 },
    recovery_failed: {
      kind: 'recovery_failed',
      deployment: WORKER,
      reason: 'no schedulable spot node: 0/6 nodes are available: 6 Insufficient cpu',
      attempts: 2,
      nextAttemptAt: at(30 * 60_000),
    },
  };
  return Object.values(samples);
}
