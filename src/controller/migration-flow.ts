// One Deployment's trip to Fargate: phase 1 (the patch) and phase 2 (observe, verify, then give the
// Deployment its own strategy back, or roll it back to spot on failure). The trip is one move in the
// MoveRegistry, from the patch to the end of the observation: a second warning for the same
// Deployment joins it, and it supersedes a recovery in flight.
import type { V1Deployment } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { DeploymentOutcome } from '../alerts/alert.js';
import { fits } from '../capacity/node-fit.js';
import { healthySpotNodes } from '../capacity/spot-nodes.js';
import { deploymentLogger } from '../log.js';
import { escapePointerToken } from '../migration/json-patch.js';
import { type MigrationInput, planFinish, planMigration, planReapply, planRestoreToSpot, planYieldToRevert } from '../migration/plan.js';
import { fargateTemplateDrift, revertFix, revertResponse } from '../migration/revert.js';
import { readSignedSavedSpec } from '../migration/saved-spec.js';
import type { ControllerContext } from '../moves/context.js';
import type { PatchOutcome } from '../moves/patcher.js';
import type { MoveHandle } from '../moves/registry.js';
import { settingsFor } from '../moves/settings.js';
import { MANAGED_ANNOTATIONS } from '../state/annotations.js';

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
  /** This warning found the move already in flight (another warning's) and joined it. */
  joined?: boolean;
}

type ToFargate = 'migration' | 'rollback';

const ref = (d: V1Deployment) => ({ namespace: d.metadata!.namespace!, name: d.metadata!.name! });
const keyOf = (d: V1Deployment) => `${d.metadata!.namespace}/${d.metadata!.name}`;

export class MigrationFlow {
  constructor(private readonly ctx: ControllerContext) {}

  /**
   * Phase 1 for one Deployment: patch it onto Fargate (never waiting for its rollout). Warnings for
   * several instances arrive as several messages handled at once, and a Deployment with pods on two
   * of them is found by both: the second joins the first's move instead of sending a patch of its own.
   * `joined` says so at once, so that a caller bounding the patches in flight holds a slot for its
   * own patch only.
   */
  begin(found: V1Deployment, request: MigrationRequest): { joined: boolean; result: Promise<PhaseOneResult> } {
    const key = keyOf(found);
    const started = this.ctx.moves.start(key, 'migration', (move) => {
      // The watch cache may have moved on since the handler looked (a queue of patches, another
      // message's patch): start from its newest copy so the resourceVersion test is not bound to fail.
      const phaseOne = this.migrateOnce(this.ctx.view.deployment(found.metadata!.namespace!, found.metadata!.name!) ?? found, request, move);
      return { value: phaseOne, done: phaseOne.then((r) => r.settled) };
    });
    if ('busy' in started) throw new Error(`${key}: a ${started.busy} is in flight and a migration does not supersede it`);
    return started.joined ? { joined: true, result: started.value.then((r) => ({ ...r, joined: true })) } : { joined: false, result: started.value };
  }

  /** A move to Fargate that a previous process, or a failed last step, left in flight: phase 2 from where its phase says. */
  resume(d: V1Deployment, phase: 'migrating' | 'rolling-back', request: MigrationRequest): void {
    const kind: ToFargate = phase === 'migrating' ? 'migration' : 'rollback';
    this.ctx.moves.start(keyOf(d), kind, (move) => {
      const settled = this.observe(d, kind, request, move);
      return { value: settled, done: settled };
    });
  }

  /** What the planners need to put a Deployment on Fargate for this request, now. */
  private migrationInput(request: MigrationRequest, allowFargate: boolean): MigrationInput {
    const { compute } = this.ctx.config;
    return {
      computeLabelKey: compute.compute_label_key,
      spotLabel: compute.spot_label,
      fargateLabel: compute.fargate_label,
      allowFargate,
      now: this.ctx.clock.now(),
      reason: request.reason,
      eventId: request.eventId,
      instanceIds: request.instanceIds,
      signer: this.ctx.signer,
    };
  }

  private async migrateOnce(cached: V1Deployment, request: MigrationRequest, move: MoveHandle): Promise<PhaseOneResult> {
    const key = keyOf(cached);
    const log = deploymentLogger(this.ctx.log, key, request.eventId);
    const settings = settingsFor(this.ctx, cached, log);
    let skipReason = '';
    const result: PatchOutcome = await this.ctx.patcher.apply(cached.metadata!.namespace!, cached.metadata!.name!, cached, (d) => {
      const plan = planMigration(d, this.migrationInput(request, settings.allowFargate));
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
            settled: inFlight ? this.observe(result.deployment, 'migration', request, move) : undefined,
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
        return { key, outcome: { result: 'in_progress' }, retry: false, settled: this.observe(result.deployment, 'migration', request, move) };
      }
    }
  }

  /**
   * Phase 2 for one Deployment: observe the rollout, then finish the move or roll it back. A
   * migration's template is watched for a revert (`reverts` counts those this move has met): see
   * onTemplateReverted. A rollback's template is not: a rollback writes the spot template back
   * itself, which is what a reverter would write, so there is nothing to fight.
   */
  private async observe(d: V1Deployment, purpose: ToFargate, request: MigrationRequest, move: MoveHandle, reverts = 0): Promise<DeploymentOutcome> {
    const key = keyOf(d);
    const log = deploymentLogger(this.ctx.log, key, request.eventId);
    const settings = settingsFor(this.ctx, d, log);
    const now = this.ctx.clock.now();
    const migratedAt = Date.parse(d.metadata?.annotations?.[MANAGED_ANNOTATIONS.migratedAt] ?? '');
    const startedAt = purpose === 'migration' && Number.isFinite(migratedAt) ? new Date(Math.min(migratedAt, now.getTime())) : now;
    const settlement = await this.ctx.observer.track(
      {
        ...ref(d),
        purpose,
        minGeneration: d.metadata?.generation ?? 0,
        startedAt,
        timeoutMs: settings.rolloutTimeout,
        verificationDelayMs: settings.verificationDelay,
        log,
        reverted: purpose === 'migration' ? (cur) => this.reverted(cur) : undefined,
      },
      move.signal,
    );
    if (settlement.result === 'failed' && settlement.reason === 'stood-down') {
      log.info({ purpose, why: settlement.detail }, 'move to Fargate stood down');
      return { result: 'failed', reason: `stood down (${settlement.detail})`, rolledBack: false };
    }
    if (settlement.result === 'failed' && settlement.reason === 'template-reverted') {
      return this.onTemplateReverted(d, settlement.detail, request, move, reverts, log);
    }
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
    return this.onMigrationFailed(d, settlement.detail, request, log, move);
  }

  /** How the template differs from the Fargate template, while this move's phase says it should be one. */
  private reverted(d: V1Deployment): string | undefined {
    // A phase other than ours means another move (or a person) took the Deployment over; that is
    // theirs to finish, and the finish step's own phase check will say so.
    if (d.metadata?.annotations?.[MANAGED_ANNOTATIONS.phase] !== 'migrating') return undefined;
    const { compute } = this.ctx.config;
    const drift = fargateTemplateDrift(d, { computeLabelKey: compute.compute_label_key, spotLabel: compute.spot_label, fargateLabel: compute.fargate_label });
    return drift.length > 0 ? drift.join(', ') : undefined;
  }

  /**
   * The spot template came back during phase 2 (the watch saw it: see revert.ts). The first time,
   * the Fargate patch is written again and observed anew. The second time the controller does not
   * fight: it ends the move as rolled back, on the template the reverter wrote (which is the spot
   * template), with state annotations that say so. Both times people are told the fix.
   */
  private async onTemplateReverted(
    d: V1Deployment,
    detail: string,
    request: MigrationRequest,
    move: MoveHandle,
    reverts: number,
    log: Logger,
  ): Promise<DeploymentOutcome> {
    const key = keyOf(d);
    const [namespace, name] = key.split('/') as [string, string];
    const { compute } = this.ctx.config;
    const labels = { computeLabelKey: compute.compute_label_key, spotLabel: compute.spot_label, fargateLabel: compute.fargate_label };
    const fix = revertFix();
    const target = { kind: 'Deployment' as const, namespace, name, uid: d.metadata?.uid };

    if (revertResponse(reverts) === 'reapply') {
      const settings = settingsFor(this.ctx, d, log);
      let notOurs = false;
      const result = await this.ctx.patcher.apply(namespace, name, this.ctx.view.deployment(namespace, name), (cur) => {
        notOurs = cur.metadata?.annotations?.[MANAGED_ANNOTATIONS.phase] !== 'migrating';
        if (notOurs) return { skip: 'the phase is no longer migrating' };
        const plan = planReapply(cur, this.migrationInput(request, settings.allowFargate));
        return plan.action === 'skip' ? { skip: plan.detail } : { ops: plan.ops };
      });
      switch (result.outcome) {
        case 'patched':
          log.warn({ reverted: detail, fix }, 'the pod template was reverted during the move to Fargate; re-applied the Fargate patch once');
          this.ctx.recorder.record(
            target,
            'Warning',
            'TemplateReverted',
            `the pod template was put back to spot during the move to Fargate (${detail}); the Fargate patch was re-applied once, ` +
              `and a second revert stops the move. Fix: ${fix}`,
          );
          this.ctx.alerter.notify({ kind: 'template_reverted', eventId: request.eventId, deployment: ref(d), detail, action: 'reapplied', fix });
          return this.observe(result.deployment, 'migration', request, move, reverts + 1);
        case 'skipped':
          log.info({ reverted: detail, why: result.why }, 'the pod template was reverted during the move to Fargate, and nothing is left to re-apply');
          if (notOurs) return { result: 'failed', reason: `another move, or a person, took the Deployment over (${result.why})`, rolledBack: false };
          // Fargate again already (the reverter put it back itself): the rollout goes on, and this
          // revert still counts, so a template that keeps flipping cannot keep the move going forever.
          return this.observe(result.deployment, 'migration', request, move, reverts + 1);
        case 'not_found':
          return { result: 'failed', reason: 'the Deployment was deleted', rolledBack: false };
        case 'error':
          // Unwritten, the reverted template stays: the move ends the way a second revert ends it.
          log.error(
            { err: result.error, reverted: detail },
            'the pod template was reverted during the move to Fargate, and the Fargate patch could not be re-applied',
          );
          break;
      }
    }

    const result = await this.ctx.patcher.apply(namespace, name, this.ctx.view.deployment(namespace, name), (cur) => {
      if (cur.metadata?.annotations?.[MANAGED_ANNOTATIONS.phase] !== 'migrating') return { skip: 'the phase is no longer migrating' };
      const plan = planYieldToRevert(cur, labels, this.ctx.signer);
      return 'error' in plan ? { error: plan.error } : { ops: plan.ops };
    });
    if (result.outcome === 'skipped') {
      log.info({ reverted: detail, why: result.why }, 'the pod template was reverted again, and another move, or a person, took the Deployment over');
      return { result: 'failed', reason: `another move, or a person, took the Deployment over (${result.why})`, rolledBack: false };
    }
    if (result.outcome === 'not_found') return { result: 'failed', reason: 'the Deployment was deleted', rolledBack: false };
    this.ctx.metrics.deploymentsFailed.inc({ reason: 'template_reverted' });
    const stopped = `the pod template was put back to spot again (${detail}); not fighting it: the move to Fargate is stopped`;
    this.ctx.alerter.notify({ kind: 'template_reverted', eventId: request.eventId, deployment: ref(d), detail, action: 'stopped', fix });
    if (result.outcome === 'error') {
      // The state annotations could not be written: the phase stays, and the registry's resync pass
      // resumes the move once this one ends. That move starts its count afresh (it may re-apply once
      // more), as a move resumed after a restart does.
      log.error(
        { err: result.error, reverted: detail, fix },
        'the pod template was reverted again; the move to Fargate is stopped, but its end could not be recorded',
      );
      this.ctx.recorder.record(target, 'Warning', 'TemplateReverted', `${stopped}; its end could not be recorded (${result.error}). Fix: ${fix}`);
      return { result: 'failed', reason: `template reverted twice (${detail}); move stopped, end not recorded`, rolledBack: false };
    }
    const spotNodes = healthySpotNodes(this.ctx.view.listNodes(), compute).length;
    log.error(
      { reverted: detail, spotNodes, fix },
      'the pod template was reverted again; the move to Fargate is stopped, the Deployment stays on the spot template',
    );
    this.ctx.recorder.record(
      target,
      'Warning',
      'TemplateReverted',
      `${stopped}, and the Deployment stays on the spot template it was given (state spot, reason rollback; ` +
        `${spotNodes} healthy spot node(s) outside the interruption). Fix: ${fix}`,
    );
    return { result: 'failed', reason: `template reverted twice (${detail}); move stopped, left on the spot template`, rolledBack: true };
  }

  /**
   * Records the end of a move (the Deployment's own strategy back, the phase cleared), on the freshest
   * copy and only while the phase is still this move's. The patcher retries throttling and server
   * errors; a failure past that ends the move with its phase still set, and the registry's next
   * resync pass resumes it: nothing waits here for the API server to come back.
   */
  private async finish(key: string, outcome: { kind: 'migrated' | 'rolled-back' }, log: Logger): Promise<boolean> {
    const [namespace, name] = key.split('/') as [string, string];
    const expected = outcome.kind === 'migrated' ? 'migrating' : 'rolling-back';
    const result = await this.ctx.patcher.apply(namespace, name, this.ctx.view.deployment(namespace, name), (d) => {
      const phase = d.metadata?.annotations?.[MANAGED_ANNOTATIONS.phase];
      if (phase !== expected) return { skip: `phase is ${phase ?? 'none'}, not ${expected}` };
      const plan = planFinish(d, outcome, this.ctx.signer);
      return 'error' in plan ? { error: plan.error } : { ops: plan.ops };
    });
    if (result.outcome === 'patched') return true;
    log.error({ result }, `could not record the end of the move (${outcome.kind})`);
    return false;
  }

  /**
   * A migration that did not become healthy. Rolling back only makes sense while healthy spot
   * capacity exists outside the dying instances; otherwise the Fargate template stays (the old
   * pods die with their instance anyway, and maxUnavailable 0 keeps every pod that still runs).
   * The move's strategy stays with it until no old pod is left; StrategyReturn gives it back then.
   */
  private async onMigrationFailed(d: V1Deployment, detail: string, request: MigrationRequest, log: Logger, move: MoveHandle): Promise<DeploymentOutcome> {
    const key = keyOf(d);
    this.ctx.metrics.deploymentsFailed.inc({ reason: 'rollout_failed' });
    this.ctx.alerter.notify({ kind: 'migration_failed', eventId: request.eventId, deployment: ref(d), reason: detail });
    // Only nodes the restored template could actually land on count (its own nodeSelector,
    // affinity and tolerations, as saved at migration).
    const saved = readSignedSavedSpec(d, key, this.ctx.signer);
    const spot = healthySpotNodes(this.ctx.view.listNodes(), this.ctx.config.compute).filter((n) => !saved.ok || fits(n, saved.saved));
    const pastDeadline = request.deadline !== undefined && this.ctx.clock.now() >= request.deadline;
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
      await this.ctx.patcher.apply(namespace, name, this.ctx.view.deployment(namespace, name), (cur) =>
        cur.metadata?.annotations?.[MANAGED_ANNOTATIONS.phase] === undefined
          ? { skip: 'no phase to clear' }
          : { ops: [{ op: 'remove', path: `/metadata/annotations/${escapePointerToken(MANAGED_ANNOTATIONS.phase)}` }] },
      );
      return { result: 'failed', reason: detail, rolledBack: false };
    }
    log.warn({ detail, spotNodes: spot.length }, 'migration failed; rolling back to spot');
    move.become('rollback');
    const [namespace, name] = key.split('/') as [string, string];
    const result = await this.ctx.patcher.apply(namespace, name, this.ctx.view.deployment(namespace, name), (cur) => {
      const plan = planRestoreToSpot(cur, { purpose: 'rollback', now: this.ctx.clock.now(), signer: this.ctx.signer });
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
    await this.observe(result.deployment, 'rollback', request, move);
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
    const d = this.ctx.view.deployment(namespace, name);
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
