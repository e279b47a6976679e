import type { V1Deployment, V1DeploymentStatus } from '@kubernetes/client-node';

export type RolloutStatus = 'progressing' | 'complete' | 'failed';

export interface RolloutEvaluation {
  status: RolloutStatus;
  /** What the rollout still lacks, or why it failed, for logs and events. */
  detail: string;
}

export interface RolloutClock {
  /** When the patch that started this rollout was applied. */
  startedAt: Date;
  now: Date;
  /** Give up after this long even if Kubernetes still calls the rollout progressing. */
  timeoutMs: number;
}

/**
 * Why the status cannot speak for the Deployment's current generation yet (the deployment controller
 * has not observed it), or undefined when it can.
 */
export function unobservedGeneration(deployment: V1Deployment): string | undefined {
  const generation = deployment.metadata?.generation ?? 0;
  const observed = deployment.status?.observedGeneration ?? 0;
  return observed < generation ? `generation ${generation} not yet observed (observed ${observed})` : undefined;
}

/**
 * Judges a Deployment's rollout from its status, the way `kubectl rollout status` does, plus our
 * own deadline:
 * - complete: the controller has observed the current generation, and updated, available and total
 *   replicas all equal spec.replicas, with none unavailable (so no old pod is left);
 * - failed: the Progressing condition says ProgressDeadlineExceeded for the current generation, or
 *   more than timeoutMs passed since startedAt;
 * - progressing otherwise.
 */
export function evaluateRollout(deployment: V1Deployment, clock: RolloutClock): RolloutEvaluation {
  const desired = deployment.spec?.replicas ?? 1;
  const status: V1DeploymentStatus = deployment.status ?? {};
  const updated = status.updatedReplicas ?? 0;
  const available = status.availableReplicas ?? 0;
  const total = status.replicas ?? 0;
  const unavailable = status.unavailableReplicas ?? 0;
  const unobserved = unobservedGeneration(deployment);
  const generationObserved = unobserved === undefined;

  const missing: string[] = [];
  if (unobserved) missing.push(unobserved);
  missing.push(`${updated}/${desired} updated`, `${available}/${desired} available`);
  if (total !== desired) missing.push(`${total} total replicas`);
  if (unavailable > 0) missing.push(`${unavailable} unavailable`);

  if (generationObserved && updated === desired && available === desired && total === desired && unavailable === 0) {
    return { status: 'complete', detail: `${desired}/${desired} updated and available` };
  }

  // A condition written before the controller saw the current generation belongs to an older rollout.
  const progressing = status.conditions?.find((c) => c.type === 'Progressing');
  if (generationObserved && progressing?.reason === 'ProgressDeadlineExceeded') {
    const message = progressing.message !== undefined ? `: ${progressing.message}` : '';
    return { status: 'failed', detail: `progress deadline exceeded${message} (${missing.join(', ')})` };
  }

  const elapsed = clock.now.getTime() - clock.startedAt.getTime();
  if (elapsed > clock.timeoutMs) {
    return {
      status: 'failed',
      detail: `rollout not complete after ${Math.round(elapsed / 1000)}s (timeout ${Math.round(clock.timeoutMs / 1000)}s): ${missing.join(', ')}`,
    };
  }
  const paused = deployment.spec?.paused === true ? ' (deployment is paused)' : '';
  return { status: 'progressing', detail: `${missing.join(', ')}${paused}` };
}
