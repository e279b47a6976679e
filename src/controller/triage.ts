// The order of phase 1 when not everything can make it. AWS throttles Fargate launches, so under a
// large interruption the Deployments patched first are the ones that come up before the deadline.
// What is at stake decides the order:
//   1. a Deployment whose Ready replicas are all on the doomed nodes, since it would hit zero;
//   2. then one behind a Service, whose users see the errors;
//   3. then higher pod priority (the spot-orchestrator/priority annotation, else the pods' priority
//      from their PriorityClass);
//   4. then fewer replicas, which keeps more Deployments whole for the same launches.
// Late Deployments are still moved, last: their old pods serve until the instance dies.

export interface Stakes {
  key: string;
  /** Desired replicas: the launches its move needs. */
  replicas: number;
  /** Ready replicas anywhere. */
  ready: number;
  /** Ready replicas on the nodes under the warning. */
  readyOnDoomed: number;
  behindService: boolean;
  priority: number;
}

export type StakeReason = 'would-hit-zero' | 'behind-service' | 'other';

export function stakeReason(s: Stakes): StakeReason {
  if (s.readyOnDoomed >= s.ready) return 'would-hit-zero';
  return s.behindService ? 'behind-service' : 'other';
}

const TIER: Record<StakeReason, number> = { 'would-hit-zero': 0, 'behind-service': 1, other: 2 };

/** The Deployments in the order phase 1 patches them; the key breaks ties so the order is stable. */
export function triageOrder<T extends Stakes>(stakes: readonly T[]): T[] {
  return [...stakes].sort(
    (a, b) => TIER[stakeReason(a)] - TIER[stakeReason(b)] || b.priority - a.priority || a.replicas - b.replicas || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
}
