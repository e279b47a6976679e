// Moving one Deployment to Fargate and seeing it through: phase 1 (the patch) and phase 2 (observe,
// verify, then give the Deployment its own strategy back, or roll it back on failure).
import type { V1Deployment } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { DeploymentOutcome } from '../alerts/alert.js';
import { resolveDeploymentSettings, type DeploymentSettings } from '../config/overrides.js';
import { deploymentLogger } from '../log.js';
import { planFinish, planMigration, planRestoreToSpot } from '../migration/plan.js';
import { MANAGED_ANNOTATIONS } from '../state/annotations.js';
import { escapePointerToken } from '../migration/json-patch.js';
import { healthySpotNodes } from './capacity.js';
import { parseSavedSpec } from '../migration/saved-spec.js';
import { fits } from '../recovery/node-fit.js';
import type { ControllerContext } from './context.js';
import type { PatchOutcome } from './patcher.js';
import type { Purpose } from './rollout-observer.js';

export interface MigrationRequest {
  eventId: string;
  instanceIds: string[];
  reason: 'spot-interruption' | 'manual';
  /** When the spot instances die: past it, rolling back to them is pointless. */
  deadline?: Date;
}

/** Result of phase 1 for one Deployment; `settled` follows phase 2 when a rollout was started. */
export interface PhaseOneResult {
  key: string;
  outcome: DeploymentOutcome;
  /** A transient API failure: the message must stay in the queue so the work is retried. */
  retry: boolean;
  settled?: Promise<DeploymentOutcome>;
}

/** How long the end of a move is retried through transient API failures before giving up. */
const FINISH_RETRY_MS = 10 * 60_000;

const ref = (d: V1Deployment) => ({ namespace: d.metadata!.namespace!, name: d.metadata!.name! });
const keyOf = (d: V1Deployment) => `${d.metadata!.namespace}/${d.metadata!.name}`;

export class MigrationFlow {
  /** Phase 2 pipelines in flight, so a duplicate delivery or a resume joins instead of repeating. */
  private readonly observing = new Map<string, Promise<DeploymentOutcome>>();
  /**
   * Phase 1 patches in flight. Warnings for several instances arrive as several messages handled at
   * once, and a Deployment with pods on two of them is found by both: the second joins the first's
   * patch instead of sending one that its stale copy is bound to fail.
   */
  private readonly patching = new Map<string, Promise<PhaseOneResult>>();

  constructor(private readonly ctx: ControllerContext) {}

  settingsFor(d: V1Deployment, log: Logger): DeploymentSettings {
    const { settings, invalid } = resolveDeploymentSettings(this.ctx.config, d.metadata?.annotations);
    for (const problem of invalid) {
      log.warn({ annotation: problem.annotation, value: problem.value }, problem.message);
      this.ctx.recorder.record({ kind: 'Deployment', ...ref(d), uid: d.metadata?.uid }, 'Warning', 'InvalidOverride', problem.message);
    }
    return settings;
  }

  /** Phase 1 for one Deployment: patch it onto Fargate (never waiting for its rollout). */
  migrate(found: V1Deployment, request: MigrationRequest): Promise<PhaseOneResult> {
    const key = keyOf(found);
    const existing = this.patching.get(key);
    if (existing) return existing;
    // The watch cache may have moved on since the handler looked (a queue of patches, another
    // message's patch): start from its newest copy so the resourceVersion test is not bound to fail.
    const cached = this.ctx.view.deployment(found.metadata!.name!) ?? found;
    const work = this.migrateOnce(cached, request).finally(() => this.patching.delete(key));
    this.patching.set(key, work);
    return work;
  }

  private async migrateOnce(cached: V1Deployment, request: MigrationRequest): Promise<PhaseOneResult> {
    const key = keyOf(cached);
    const log = deploymentLogger(this.ctx.log, key, request.eventId);
    const settings = this.settingsFor(cached, log);
    const { compute } = this.ctx.config;
    let skipReason = '';
    const result: PatchOutcome = await this.ctx.patcher.apply(cached.metadata!.namespace!, cached.metadata!.name!, cached, (d) => {
      const plan = planMigration(d, {
        computeLabelKey: compute.compute_label_key,
        spotLabel: compute.spot_label,
        fargateLabel: compute.fargate_label,
        allowFargate: settings.allowFargate,
        now: this.ctx.now(),
        reason: request.reason,
        eventId: request.eventId,
        instanceIds: request.instanceIds,
      });
      if (plan.action === 'skip') {
        skipReason = plan.reason;
        return { skip: plan.detail };
      }
      return { ops: plan.ops };
    });

    switch (result.outcome) {
      case 'not_found':
        return { key, outcome: { result: 'skipped', reason: 'not_found', detail: 'the Deployment was deleted' }, retry: false };
      case 'error':
        log.error({ err: result.error }, 'could not patch the Deployment onto Fargate');
        this.ctx.metrics.deploymentsFailed.inc({ reason: 'patch_error' });
        return { key, outcome: { result: 'failed', reason: result.error, rolledBack: false }, retry: result.transient };
      case 'skipped': {
        if (skipReason === 'already_on_fargate') {
          // A repeat delivery, or a restart: if its rollout is still in flight, keep watching it.
          const inFlight = result.deployment.metadata?.annotations?.[MANAGED_ANNOTATIONS.phase] === 'migrating';
          log.info({ inFlight }, 'already moved to Fargate');
          return {
            key,
            outcome: { result: 'skipped', reason: skipReason, detail: result.why },
            retry: false,
            settled: inFlight ? this.observe(result.deployment, 'migration', request) : undefined,
          };
        }
        log.warn({ reason: skipReason, detail: result.why }, 'not moving this Deployment to Fargate');
        this.ctx.metrics.deploymentsSkipped.inc({ reason: skipReason });
        this.ctx.recorder.record(
          { kind: 'Deployment', ...ref(result.deployment), uid: result.deployment.metadata?.uid },
          'Warning',
          'MigrationSkipped',
          `${skipReason}: ${result.why}`,
        );
        return { key, outcome: { result: 'skipped', reason: skipReason, detail: result.why }, retry: false };
      }
      case 'patched': {
        log.info(
          { dryRun: result.dryRun, timeoutMs: settings.rolloutTimeout },
          result.dryRun ? 'dry run: would move to Fargate' : 'patched onto Fargate; rollout started',
        );
        if (result.dryRun) return { key, outcome: { result: 'in_progress' }, retry: false };
        this.ctx.recorder.record(
          { kind: 'Deployment', ...ref(result.deployment), uid: result.deployment.metadata?.uid },
          'Normal',
          'MigratingToFargate',
          `spot interruption of ${request.instanceIds.join(', ')} (event ${request.eventId}): moving to Fargate`,
        );
        return { key, outcome: { result: 'in_progress' }, retry: false, settled: this.observe(result.deployment, 'migration', request) };
      }
    }
  }

  /** Phase 2 for one Deployment; also how a restarted controller picks up a move in flight. */
  observe(d: V1Deployment, purpose: Extract<Purpose, 'migration' | 'rollback'>, request: MigrationRequest): Promise<DeploymentOutcome> {
    const id = `${keyOf(d)}:${purpose}`;
    const existing = this.observing.get(id);
    if (existing) return existing;
    const pipeline = this.observeOnce(d, purpose, request).finally(() => this.observing.delete(id));
    this.observing.set(id, pipeline);
    return pipeline;
  }

  private async observeOnce(d: V1Deployment, purpose: Extract<Purpose, 'migration' | 'rollback'>, request: MigrationRequest): Promise<DeploymentOutcome> {
    const key = keyOf(d);
    const log = deploymentLogger(this.ctx.log, key, request.eventId);
    const settings = this.settingsFor(d, log);
    const migratedAt = Date.parse(d.metadata?.annotations?.[MANAGED_ANNOTATIONS.migratedAt] ?? '');
    const startedAt = purpose === 'migration' && Number.isFinite(migratedAt) ? new Date(Math.min(migratedAt, this.ctx.now().getTime())) : this.ctx.now();
    const settlement = await this.ctx.observer.track({
      ...ref(d),
      purpose,
      minGeneration: d.metadata?.generation ?? 0,
      startedAt,
      timeoutMs: settings.rolloutTimeout,
      verificationDelayMs: settings.verificationDelay,
      log,
    });
    if (purpose === 'rollback') return this.finishRollback(key, settlement.result === 'complete' ? undefined : settlement.detail, log);
    if (settlement.result === 'complete') {
      const done = await this.finish(key, { kind: 'migrated' }, log);
      if (done) {
        log.info({ durationMs: settlement.durationMs }, 'healthy on Fargate');
        this.ctx.metrics.deploymentsMigrated.inc();
        this.ctx.recorder.record(
          { kind: 'Deployment', ...ref(d), uid: d.metadata?.uid },
          'Normal',
          'MigratedToFargate',
          `healthy on Fargate after ${(settlement.durationMs / 1000).toFixed(1)} s`,
        );
        return { result: 'migrated', durationMs: settlement.durationMs };
      }
      return { result: 'failed', reason: 'could not restore the Deployment strategy', rolledBack: false };
    }
    return this.onMigrationFailed(d, settlement.detail, request, log);
  }

  /**
   * Records the end of a move (the Deployment's own strategy back, the phase cleared). A transient
   * failure (API server away or throttling past the patcher's retries) is retried for up to
   * FINISH_RETRY_MS: giving up would leave the Deployment marked in flight with the surge strategy
   * until the next restart of the controller.
   */
  private async finish(key: string, outcome: Parameters<typeof planFinish>[1], log: Logger): Promise<boolean> {
    const [namespace, name] = key.split('/') as [string, string];
    const giveUpAt = Date.now() + FINISH_RETRY_MS;
    for (let waitMs = 1000; ; waitMs = Math.min(waitMs * 2, 30_000)) {
      const result = await this.ctx.patcher.apply(namespace, name, this.ctx.view.deployment(name), (d) => {
        const plan = planFinish(d, outcome);
        return 'error' in plan ? { error: plan.error } : { ops: plan.ops };
      });
      if (result.outcome === 'patched') return true;
      const retry = result.outcome === 'error' && result.transient && Date.now() + waitMs < giveUpAt;
      log.error({ result, ...(retry ? { retryInMs: waitMs } : {}) }, `could not record the end of the move (${outcome.kind})`);
      if (!retry) return false;
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }

  /**
   * A migration that did not become healthy. Rolling back only makes sense while healthy spot
   * capacity exists outside the dying instances; otherwise the Fargate template stays (the old
   * pods die with their instance anyway, and maxUnavailable 0 keeps every pod that still runs).
   */
  private async onMigrationFailed(d: V1Deployment, detail: string, request: MigrationRequest, log: Logger): Promise<DeploymentOutcome> {
    const key = keyOf(d);
    this.ctx.metrics.deploymentsFailed.inc({ reason: 'rollout_failed' });
    this.ctx.alerter.notify({ kind: 'migration_failed', eventId: request.eventId, deployment: ref(d), reason: detail });
    // Only nodes the restored template could actually land on count (its own nodeSelector,
    // affinity and tolerations, as saved at migration).
    const saved = parseSavedSpec(d.metadata?.annotations?.[MANAGED_ANNOTATIONS.savedSpec], key, MANAGED_ANNOTATIONS.savedSpec);
    const spot = healthySpotNodes(this.ctx.view.listNodes(), this.ctx.config.compute).filter((n) => !saved.ok || fits(n, saved.saved));
    const pastDeadline = request.deadline !== undefined && this.ctx.now() >= request.deadline;
    if (spot.length === 0) {
      log.error({ detail, pastDeadline }, 'migration failed and no healthy spot capacity is left to roll back to; staying on the Fargate template');
      this.ctx.metrics.rollbacks.inc({ to: 'none' });
      this.ctx.alerter.notify({ kind: 'rollback', deployment: ref(d), reason: `${detail}; no healthy spot node to roll back to`, to: 'none' });
      this.ctx.recorder.record(
        { kind: 'Deployment', ...ref(d), uid: d.metadata?.uid },
        'Warning',
        'RollbackSkipped',
        `migration failed (${detail}); no healthy spot node to roll back to, staying on Fargate`,
      );
      const [namespace, name] = key.split('/') as [string, string];
      await this.ctx.patcher.apply(namespace, name, this.ctx.view.deployment(name), (cur) =>
        cur.metadata?.annotations?.[MANAGED_ANNOTATIONS.phase] === undefined
          ? { skip: 'no phase to clear' }
          : { ops: [{ op: 'remove', path: `/metadata/annotations/${escapePointerToken(MANAGED_ANNOTATIONS.phase)}` }] },
      );
      return { result: 'failed', reason: detail, rolledBack: false };
    }
    log.warn({ detail, spotNodes: spot.length }, 'migration failed; rolling back to spot');
    const [namespace, name] = key.split('/') as [string, string];
    const result = await this.ctx.patcher.apply(namespace, name, this.ctx.view.deployment(name), (cur) => {
      const plan = planRestoreToSpot(cur, { purpose: 'rollback', now: this.ctx.now() });
      return 'error' in plan ? { error: plan.error } : { ops: plan.ops };
    });
    if (result.outcome !== 'patched') {
      log.error({ result }, 'could not roll back');
      return { result: 'failed', reason: `${detail}; rollback failed`, rolledBack: false };
    }
    this.ctx.recorder.record(
      { kind: 'Deployment', ...ref(d), uid: d.metadata?.uid },
      'Warning',
      'RollingBack',
      `migration failed (${detail}); restoring the spot template`,
    );
    await this.observe(result.deployment, 'rollback', request);
    return { result: 'failed', reason: detail, rolledBack: true };
  }

  private async finishRollback(key: string, failure: string | undefined, log: Logger): Promise<DeploymentOutcome> {
    const [namespace, name] = key.split('/') as [string, string];
    if (failure) {
      log.error({ failure }, 'rollback to spot did not become healthy either');
      this.ctx.alerter.notify({ kind: 'rollback', deployment: { namespace, name }, reason: `rollback unhealthy: ${failure}`, to: 'spot' });
      return { result: 'failed', reason: failure, rolledBack: false };
    }
    await this.finish(key, { kind: 'rolled-back' }, log);
    this.ctx.metrics.rollbacks.inc({ to: 'spot' });
    this.ctx.alerter.notify({ kind: 'rollback', deployment: { namespace, name }, reason: 'migration failed; back on spot', to: 'spot' });
    const d = this.ctx.view.deployment(name);
    this.ctx.recorder.record(
      { kind: 'Deployment', namespace, name, uid: d?.metadata?.uid },
      'Normal',
      'RolledBack',
      'back on the spot template after a failed migration',
    );
    log.info('rolled back to spot');
    return { result: 'failed', reason: 'rolled back', rolledBack: true };
  }
}
