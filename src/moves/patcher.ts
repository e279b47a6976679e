// Writes to Deployments with optimistic concurrency: each patch carries a resourceVersion test,
// so a change computed from a stale copy is refused; it is then recomputed from a fresh read, and
// the other writer's change is kept. Throttling and server errors are retried with backoff.
import type { AppsV1Api, V1Deployment } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../clock.js';
import type { JsonPatchOp } from '../migration/json-patch.js';
import { isConflict, isInvalid, isNotFound, JSON_PATCH, messageOf, statusOf, withRetry } from '../kube/api.js';
import { trimDeployment } from '../kube/trim.js';

/** What to write, decided from the current object: ops, nothing (with why), or a refusal. */
export type PatchDecision = { ops: JsonPatchOp[] } | { skip: string } | { error: string };

export type PatchOutcome =
  | { outcome: 'patched'; deployment: V1Deployment; dryRun: boolean }
  | { outcome: 'skipped'; deployment: V1Deployment; why: string }
  | { outcome: 'not_found' }
  | { outcome: 'error'; error: string; transient: boolean };

export interface PatcherOptions {
  dryRun: boolean;
  maxConflictRetries?: number;
  onApiError?: (verb: string, code: string) => void;
  /** Waits out the backoff between retries (default: the system clock). */
  clock?: Clock;
  /** The jitter of the pause between conflict retries, in [0, 1) (default: Math.random). */
  random?: () => number;
}

/** The pause before the nth recompute (n ≥ 2): 10 ms doubling, capped at 320 ms, jittered to 50–150 %. */
export function conflictPause(conflicts: number, random: () => number): number {
  const base = Math.min(10 * 2 ** (conflicts - 2), 320);
  return Math.round(base * (0.5 + random()));
}

export class DeploymentPatcher {
  constructor(
    private readonly apps: AppsV1Api,
    private readonly log: Logger,
    private readonly options: PatcherOptions,
  ) {}

  /**
   * Applies `decide(current)` to the Deployment. `cached` is tried first (no read needed); after a
   * conflict the Deployment is read from the API server and `decide` runs again on the fresh copy.
   */
  async apply(namespace: string, name: string, cached: V1Deployment | undefined, decide: (d: V1Deployment) => PatchDecision): Promise<PatchOutcome> {
    let current = cached;
    const maxConflicts = this.options.maxConflictRetries ?? 8;
    for (let conflicts = 0; ; ) {
      let testedVersion: string | undefined;
      try {
        if (!current) current = trimDeployment(await withRetry(() => this.apps.readNamespacedDeployment({ name, namespace }), this.retryOptions('get')));
        testedVersion = current.metadata?.resourceVersion;
        const decision = decide(current);
        if ('skip' in decision) return { outcome: 'skipped', deployment: current, why: decision.skip };
        if ('error' in decision) return { outcome: 'error', error: decision.error, transient: false };
        if (this.options.dryRun) {
          this.log.info({ deployment: `${namespace}/${name}`, ops: decision.ops }, 'dry run: would patch');
          return { outcome: 'patched', deployment: current, dryRun: true };
        }
        const patched = await withRetry(
          () => this.apps.patchNamespacedDeployment({ name, namespace, body: decision.ops }, JSON_PATCH),
          this.retryOptions('patch'),
        );
        // A move holds this copy until it ends (minutes, one per Deployment in flight): without
        // managedFields, which nothing reads, as the watch cache keeps it.
        return { outcome: 'patched', deployment: trimDeployment(patched), dryRun: false };
      } catch (err) {
        if (isNotFound(err)) return { outcome: 'not_found' };
        // Refused because the Deployment moved on: a 409, or a 422 from the failed resourceVersion test
        // (a 422 on an unchanged Deployment is a patch that is itself invalid).
        const check = isInvalid(err) ? await this.readAfterRefusal(namespace, name, testedVersion) : undefined;
        const moved = check?.moved;
        const stale = isConflict(err) || moved !== undefined;
        this.options.onApiError?.('patch', String(statusOf(err) ?? 'network'));
        if (stale && ++conflicts <= maxConflicts) {
          // The first recompute goes at once, on the copy just read if there is one (a stale cached
          // copy is the usual cause). After that another writer keeps winning the race: a short,
          // growing, jittered pause steps out of its rhythm, and the copy is read after it.
          current = moved;
          if (conflicts > 1) {
            await this.clock.sleep(conflictPause(conflicts, this.options.random ?? Math.random));
            current = undefined;
          }
          continue;
        }
        const status = statusOf(err);
        return {
          outcome: 'error',
          error: `patching deployment ${namespace}/${name}: ${messageOf(err)}`,
          // Still losing to another writer is worth another try later, like throttling; so is a 422
          // that could not be told apart (the read failed), rather than giving up on the Deployment.
          transient: stale || check?.unknown === true || status === undefined || status === 429 || status >= 500,
        };
      }
    }
  }

  private get clock(): Clock {
    return this.options.clock ?? systemClock;
  }

  /**
   * After a 422: the Deployment as it is now if it moved on from the version the refused patch was
   * tested against (a failed test), nothing if it did not (the patch itself is invalid), or unknown
   * when it could not be read.
   */
  private async readAfterRefusal(namespace: string, name: string, version: string | undefined): Promise<{ moved?: V1Deployment; unknown: boolean }> {
    try {
      const fresh = await this.apps.readNamespacedDeployment({ name, namespace });
      return fresh.metadata?.resourceVersion !== version ? { moved: trimDeployment(fresh), unknown: false } : { unknown: false };
    } catch {
      return { unknown: true };
    }
  }

  private retryOptions(verb: string) {
    return {
      sleep: (ms: number) => this.clock.sleep(ms),
      onRetry: (err: unknown, attempt: number, delayMs: number) => {
        this.options.onApiError?.(verb, String(statusOf(err) ?? 'network'));
        this.log.warn({ err: messageOf(err), attempt, delayMs, verb }, 'Kubernetes API call failed; retrying');
      },
    };
  }
}
