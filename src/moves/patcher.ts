// Writes to Deployments with optimistic concurrency: each patch carries a resourceVersion test,
// so a change computed from a stale copy is refused; it is then recomputed from a fresh read, and
// the other writer's change is kept. Throttling and server errors are retried with backoff.
import type { AppsV1Api, V1Deployment } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type Clock, systemClock } from '../clock.js';
import type { JsonPatchOp } from '../migration/json-patch.js';
import { isConflict, isInvalid, isNotFound, JSON_PATCH, messageOf, statusOf, withRetry } from '../kube/api.js';

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
        if (!current) current = await withRetry(() => this.apps.readNamespacedDeployment({ name, namespace }), this.retryOptions('get'));
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
        return { outcome: 'patched', deployment: patched, dryRun: false };
      } catch (err) {
        if (isNotFound(err)) return { outcome: 'not_found' };
        if ((isConflict(err) || (isInvalid(err) && (await this.changedSince(namespace, name, testedVersion)))) && ++conflicts <= maxConflicts) {
          this.options.onApiError?.('patch', String(statusOf(err)));
          current = undefined; // read again and recompute
          continue;
        }
        this.options.onApiError?.('patch', String(statusOf(err) ?? 'network'));
        const status = statusOf(err);
        return {
          outcome: 'error',
          error: `patching deployment ${namespace}/${name}: ${messageOf(err)}`,
          transient: status === undefined || status === 429 || status >= 500 || isConflict(err),
        };
      }
    }
  }

  /** Whether the Deployment moved on from the version a refused patch was tested against. */
  private async changedSince(namespace: string, name: string, version: string | undefined): Promise<boolean> {
    try {
      const fresh = await this.apps.readNamespacedDeployment({ name, namespace });
      return fresh.metadata?.resourceVersion !== version;
    } catch {
      return false;
    }
  }

  private retryOptions(verb: string) {
    return {
      sleep: (ms: number) => (this.options.clock ?? systemClock).sleep(ms),
      onRetry: (err: unknown, attempt: number, delayMs: number) => {
        this.options.onApiError?.(verb, String(statusOf(err) ?? 'network'));
        this.log.warn({ err: messageOf(err), attempt, delayMs, verb }, 'Kubernetes API call failed; retrying');
      },
    };
  }
}
