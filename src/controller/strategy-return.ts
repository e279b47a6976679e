// Gives a Deployment its own strategy back after a move that ended on Fargate without a finish.
//
// A migration that never became healthy, with no spot capacity to roll back to, stays on the
// Fargate template with the move's strategy (maxSurge 100 %, maxUnavailable 0): while the new pods
// cannot start, the old ReplicaSet's pods are the ones serving, and no rolling update may take them
// down. Once none of them serves (their instance died, or the new pods became Ready after all),
// that strategy protects nothing, and it would double the pods of the Deployment's next rollout, on
// Fargate. The decision is planStrategyReturn's; this module only watches for the moment.
//
// Level-triggered: the Deployment and pod watches deliver every change (the one that says the old
// pods are gone included), and starting to act looks at every Deployment once, so a restart, or a
// standby that takes over, finds what an earlier replica left.
import type { V1Deployment } from '@kubernetes/client-node';
import type { Timer } from '../clock.js';
import { isPodReady, keyOf } from '../kube/cluster-view.js';
import { deploymentLogger } from '../log.js';
import { planStrategyReturn } from '../migration/plan.js';
import type { ControllerContext } from '../moves/context.js';

export class StrategyReturn {
  private acting = false;
  /** Deployments whose give-back is being written: one patch per Deployment at a time. */
  private readonly writing = new Set<string>();
  /** A saved-spec that does not verify is said once per Deployment, not on every status change. */
  private readonly refused = new Set<string>();
  private readonly retries = new Map<string, Timer>();

  /** retryMs: how long after a failed write it is tried again (monitoring.check_interval). */
  constructor(
    private readonly ctx: ControllerContext,
    private readonly managed: (d: V1Deployment) => boolean,
    private readonly retryMs: number,
  ) {
    ctx.view.onDeployment((d, change) => {
      if (change === 'delete') this.refused.delete(keyOf(d));
      else if (this.acting) this.consider(d);
    });
    // The pod watch and the Deployment watch are separate streams: the Deployment's status may say
    // an old pod is gone before the pod cache does. A pod that stops serving looks again.
    ctx.view.onPod((pod, change) => {
      if (!this.acting || (change !== 'delete' && isPodReady(pod))) return;
      const d = ctx.view.deploymentOfPod(pod);
      if (d) this.consider(d);
    });
  }

  start(): void {
    this.acting = true;
    for (const d of this.ctx.view.listDeployments()) this.consider(d);
  }

  stop(): void {
    this.acting = false;
    for (const timer of this.retries.values()) timer.cancel();
    this.retries.clear();
  }

  private consider(d: V1Deployment): void {
    const key = keyOf(d);
    // A move in flight owns the strategy: it finishes or rolls back, and says which.
    if (this.writing.has(key) || this.ctx.moves.current(key) !== undefined || !this.managed(d)) return;
    const plan = planStrategyReturn(d, () => this.ctx.view.readyOlderPods(d), this.ctx.signer);
    if ('skip' in plan) return;
    if ('error' in plan) {
      if (!this.refused.has(key)) deploymentLogger(this.ctx.log, key).warn({ error: plan.error }, 'the move strategy stays: its saved strategy cannot be read');
      this.refused.add(key);
      return;
    }
    this.writing.add(key);
    void this.giveBack(d).finally(() => this.writing.delete(key));
  }

  private async giveBack(d: V1Deployment): Promise<void> {
    const key = keyOf(d);
    const log = deploymentLogger(this.ctx.log, key);
    const { namespace, name } = { namespace: d.metadata!.namespace!, name: d.metadata!.name! };
    // Planned again on whatever copy the patcher holds: a conflict rereads, and a move that started
    // meanwhile (its phase set) makes this a skip.
    const result = await this.ctx.patcher.apply(namespace, name, d, (cur) => planStrategyReturn(cur, () => this.ctx.view.readyOlderPods(cur), this.ctx.signer));
    switch (result.outcome) {
      case 'patched':
        log.info({ strategy: result.deployment.spec?.strategy }, 'no pod of an older ReplicaSet serves any more; the Deployment has its own strategy back');
        this.ctx.recorder.record(
          { kind: 'Deployment', namespace, name, uid: d.metadata?.uid },
          'Normal',
          'StrategyRestored',
          "no Ready pod of an older ReplicaSet is left, so the move's strategy (maxSurge 100 %, maxUnavailable 0) is no longer needed; the Deployment's own strategy is back",
        );
        return;
      case 'error':
        log.warn({ error: result.error, transient: result.transient, retryInMs: this.retryMs }, 'could not give the Deployment its own strategy back');
        // Tried again from the cache's copy then (or sooner, on the Deployment's next change).
        this.retries.get(key)?.cancel();
        this.retries.set(
          key,
          this.ctx.clock.setTimer(() => {
            this.retries.delete(key);
            const cur = this.ctx.view.deployment(namespace, name);
            if (cur && this.acting) this.consider(cur);
          }, this.retryMs),
        );
        return;
      default:
        return;
    }
  }
}
