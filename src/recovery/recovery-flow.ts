// One Deployment's trip back to spot, the mirror of controller/migration-flow.ts: re-judge it on
// fresh capacity, restore the spot template (maxUnavailable 0, so the Fargate pods stay until the
// spot pods are Ready), observe and verify, then record the recovery; on failure put the Fargate
// template back, count the attempt (the backoff follows from it) and see that rollout through.
//
// The trip is one move in the MoveRegistry. An interruption beats it: the registry aborts its
// signal, and from then on it writes nothing (the migration owns the Deployment). Every patch also
// checks, on the freshest copy, that the phase is still ours, which covers another process.
// When to start a trip, and how many at once, is the recovery loop's business (recovery-loop.ts).
import type { V1Deployment } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { DeploymentRef } from '../alerts/alert.js';
import type { DeploymentSettings } from '../config/overrides.js';
import { deploymentLogger } from '../log.js';
import { type FinishOutcome, planFinish, planRestoreToSpot } from '../migration/plan.js';
import type { ControllerContext } from '../moves/context.js';
import type { MoveHandle, StandDown } from '../moves/registry.js';
import type { RolloutFailure, Settlement } from '../moves/rollout-observer.js';
import { settingsFor } from '../moves/settings.js';
import { MANAGED_ANNOTATIONS } from '../state/annotations.js';
import { assessSpotCapacity, backoffDelayMs, describeVerdict, failedAttempts, judgeRecovery, legacyRestoreLabel } from './eligibility.js';

export type RecoveryResult =
  /** Back on spot and healthy. */
  | 'recovered'
  /** The move back failed; the Fargate template is back and healthy. */
  | 'rolled_back'
  /** The move back failed and could not be undone cleanly (see the logs and alerts). */
  | 'failed'
  /** An interruption (a migration) took the Deployment over; it stays on Fargate. */
  | 'preempted'
  /** No longer eligible when its turn came, or nothing to do. */
  | 'skipped'
  /** The controller stopped first. */
  | 'cancelled';

export interface RecoveryReport {
  key: string;
  result: RecoveryResult;
  detail: string;
}

/** The Go original's value for a recovery that succeeded, kept so dashboards and queries carry over. */
export const RECOVERED_REASON = 'successful-recovery';

/** The recovery-reason annotation's code for each way a rollout fails. */
const FAILURE_CODES: Record<Exclude<RolloutFailure, 'stood-down'>, string> = {
  timeout: 'rollout-timeout',
  'health-check-failed': 'health-check-failed',
  'progress-deadline-exceeded': 'progress-deadline-exceeded',
  deleted: 'rollout-failed',
  // A recovery is observed without a revert check (its direction is the manifest's own), so this
  // code is never written; the record names it for completeness.
  'template-reverted': 'template-reverted',
};

/** The recovery-reason annotation after a failure: a short code, then the observer's detail. */
export function recoveryFailureReason(reason: Exclude<RolloutFailure, 'stood-down'>, detail: string): string {
  const text = `${FAILURE_CODES[reason]}: ${detail}`;
  return text.length > 300 ? `${text.slice(0, 299)}…` : text;
}

const ref = (key: string): DeploymentRef => {
  const [namespace, name] = key.split('/') as [string, string];
  return { namespace, name };
};

export class RecoveryFlow {
  constructor(private readonly ctx: ControllerContext) {}

  /**
   * The trip back for one Deployment: re-judge, restore the spot template, observe, finish. `waive`
   * (`recover --all --now`) judges capacity only, not cooldown, backoff or recovery-enabled.
   */
  recover(key: string, options: { waive?: boolean } = {}): Promise<RecoveryReport> {
    return this.asMove(key, (move) => this.recoverOnce(key, move, options.waive ?? false));
  }

  /** A trip back that a previous process, or a failed last step, left with phase recovering: observe it to the end. */
  resume(d: V1Deployment): Promise<RecoveryReport> {
    const key = `${d.metadata?.namespace}/${d.metadata?.name}`;
    return this.asMove(key, async (move) => {
      const log = deploymentLogger(this.ctx.log, key);
      const settings = settingsFor(this.ctx, d, log);
      const startedAt = this.ctx.clock.now();
      log.info({ timeoutMs: this.ctx.config.recovery.timeout }, 'resuming a recovery left in flight');
      const settlement = await this.track(d, 'recovery', startedAt, this.ctx.config.recovery.timeout, settings, log, move);
      return this.settle(key, settlement, startedAt, settings, log, move);
    });
  }

  private asMove(key: string, trip: (move: MoveHandle) => Promise<RecoveryReport>): Promise<RecoveryReport> {
    const started = this.ctx.moves.start(key, 'recovery', (move) => {
      const report = trip(move);
      return { value: report, done: report };
    });
    if ('busy' in started) return Promise.resolve({ key, result: 'skipped', detail: `a ${started.busy} of it is in flight` });
    return started.value;
  }

  private async recoverOnce(key: string, move: MoveHandle, waive: boolean): Promise<RecoveryReport> {
    const { name, namespace } = ref(key);
    const log = deploymentLogger(this.ctx.log, key);
    const skip = (detail: string): RecoveryReport => {
      log.info({ detail }, 'recovery skipped');
      return { key, result: 'skipped', detail };
    };
    const cached = this.ctx.view.deployment(namespace, name);
    if (!cached) return skip('the Deployment is gone');
    // Things may have changed while it waited for a slot: judge again on fresh capacity.
    const verdict = judgeRecovery(cached, {
      config: this.ctx.config,
      now: this.ctx.clock.now(),
      signer: this.ctx.signer,
      capacity: assessSpotCapacity(this.ctx.view.listNodes(), this.ctx.config.compute),
      waive,
    });
    if (!verdict.eligible) return skip(describeVerdict(verdict));
    const settings = settingsFor(this.ctx, cached, log);
    const startedAt = this.ctx.clock.now();
    const legacy = legacyRestoreLabel(this.ctx.config);
    let goOriginalNote: string | undefined;
    const result = await this.ctx.patcher.apply(namespace, name, cached, (cur) => {
      if (move.signal.aborted) return { skip: `stood down (${move.signal.reason})` };
      const a = cur.metadata?.annotations ?? {};
      if (a[MANAGED_ANNOTATIONS.state] !== 'fargate') return { skip: `state is ${a[MANAGED_ANNOTATIONS.state]}` };
      if (a[MANAGED_ANNOTATIONS.phase] !== undefined) return { skip: `a move is in flight (phase ${a[MANAGED_ANNOTATIONS.phase]})` };
      const plan = planRestoreToSpot(cur, { purpose: 'recovery', now: startedAt, legacy, signer: this.ctx.signer });
      goOriginalNote = 'note' in plan ? plan.note : undefined;
      return 'error' in plan ? { error: plan.error } : { ops: plan.ops };
    });
    switch (result.outcome) {
      case 'not_found':
        return skip('the Deployment is gone');
      case 'skipped':
        return move.signal.aborted ? this.stoodDown(key, move, log) : skip(result.why);
      case 'error':
        log.error({ err: result.error, transient: result.transient }, 'could not restore the spot template; will try again on a later pass');
        this.ctx.metrics.recoveries.inc({ outcome: 'failed' });
        return { key, result: 'failed', detail: result.error };
      case 'patched':
        break;
    }
    if (result.dryRun) {
      log.info({ verdict: verdict.detail }, 'dry run: would move back to spot');
      return { key, result: 'skipped', detail: 'dry run' };
    }
    const d = result.deployment;
    log.info({ candidates: verdict.candidates.slice(0, 5), timeoutMs: this.ctx.config.recovery.timeout }, 'spot template restored; recovery rollout started');
    if (goOriginalNote !== undefined) {
      log.info({ note: goOriginalNote }, 'recovering a Deployment the Go original moved');
      this.ctx.recorder.record({ kind: 'Deployment', namespace, name, uid: d.metadata?.uid }, 'Normal', 'RecoveringByGoOriginalConvention', goOriginalNote);
    }
    this.ctx.recorder.record(
      { kind: 'Deployment', namespace, name, uid: d.metadata?.uid },
      'Normal',
      'RecoveringToSpot',
      `spot capacity healthy (${verdict.detail}): moving back to spot`,
    );
    const settlement = await this.track(d, 'recovery', startedAt, this.ctx.config.recovery.timeout, settings, log, move);
    return this.settle(key, settlement, startedAt, settings, log, move);
  }

  private track(
    d: V1Deployment,
    purpose: 'recovery' | 'recovery-rollback',
    startedAt: Date,
    timeoutMs: number,
    settings: DeploymentSettings,
    log: Logger,
    move: MoveHandle,
  ): Promise<Settlement> {
    return this.ctx.observer.track(
      {
        namespace: d.metadata!.namespace!,
        name: d.metadata!.name!,
        purpose,
        minGeneration: d.metadata?.generation ?? 0,
        startedAt,
        timeoutMs,
        verificationDelayMs: settings.verificationDelay,
        log,
      },
      move.signal,
    );
  }

  /** Ends a recovery rollout: success records it, failure puts the Fargate template back. */
  private async settle(
    key: string,
    settlement: Settlement,
    startedAt: Date,
    settings: DeploymentSettings,
    log: Logger,
    move: MoveHandle,
  ): Promise<RecoveryReport> {
    if (move.signal.aborted) return this.stoodDown(key, move, log);
    const { namespace, name } = ref(key);
    const now = this.ctx.clock.now();
    const migratedAt = Date.parse(this.ctx.view.deployment(namespace, name)?.metadata?.annotations?.[MANAGED_ANNOTATIONS.migratedAt] ?? '');

    if (settlement.result === 'complete') {
      const finished = await this.finish(key, 'recovering', { kind: 'recovered', now, recoveryReason: RECOVERED_REASON }, move);
      if (finished.outcome === 'skipped') return move.signal.aborted ? this.stoodDown(key, move, log) : this.preempted(key, finished.why, log);
      if (finished.outcome === 'not_found') return { key, result: 'skipped', detail: 'the Deployment is gone' };
      if (finished.outcome !== 'patched') {
        log.error({ result: finished }, 'healthy on spot, but could not record the end of the recovery');
        this.ctx.metrics.recoveries.inc({ outcome: 'failed' });
        return { key, result: 'failed', detail: 'could not record the end of the recovery' };
      }
      const durationMs = now.getTime() - startedAt.getTime();
      this.ctx.metrics.recoveries.inc({ outcome: 'recovered' });
      this.ctx.metrics.recoverySeconds.observe(durationMs / 1000);
      if (Number.isFinite(migratedAt)) this.ctx.metrics.addFargateTime(namespace, name, (now.getTime() - migratedAt) / 1000);
      this.ctx.recorder.record(
        { kind: 'Deployment', namespace, name, uid: finished.deployment.metadata?.uid },
        'Normal',
        'RecoveredToSpot',
        `back on spot and healthy after ${(durationMs / 1000).toFixed(1)} s`,
      );
      this.ctx.alerter.notify({ kind: 'recovery_completed', deployment: ref(key), durationMs });
      log.info({ durationMs }, 'recovered: back on spot');
      return { key, result: 'recovered', detail: `healthy on spot after ${durationMs} ms` };
    }
    if (settlement.reason === 'stood-down') return this.stoodDown(key, move, log);

    // Failed: back to the Fargate template, one more failed attempt, and the backoff that follows.
    const reason = recoveryFailureReason(settlement.reason, settlement.detail);
    const { compute } = this.ctx.config;
    const failed = await this.finish(
      key,
      'recovering',
      {
        kind: 'recovery-failed',
        now,
        recoveryReason: reason,
        computeLabelKey: compute.compute_label_key,
        spotLabel: compute.spot_label,
        fargateLabel: compute.fargate_label,
      },
      move,
    );
    if (failed.outcome === 'skipped') return move.signal.aborted ? this.stoodDown(key, move, log) : this.preempted(key, failed.why, log);
    if (failed.outcome === 'not_found') return { key, result: 'skipped', detail: 'the Deployment is gone' };
    if (failed.outcome !== 'patched') {
      log.error({ detail: settlement.detail, result: failed }, 'recovery failed and the Fargate template could not be put back');
      this.ctx.metrics.recoveries.inc({ outcome: 'failed' });
      this.ctx.alerter.notify({
        kind: 'recovery_failed',
        deployment: ref(key),
        reason: `${reason}; could not put the Fargate template back`,
        attempts: failedAttempts(this.ctx.view.deployment(namespace, name)?.metadata?.annotations),
      });
      return { key, result: 'failed', detail: settlement.detail };
    }
    const a = failed.deployment.metadata?.annotations;
    const attempts = failedAttempts(a);
    const last = Date.parse(a?.[MANAGED_ANNOTATIONS.lastRecoveredAt] ?? '') || now.getTime();
    const nextAttemptAt = new Date(last + backoffDelayMs(attempts, this.ctx.config.recovery));
    log.warn({ detail: settlement.detail, attempts, nextAttemptAt: nextAttemptAt.toISOString() }, 'recovery failed; back to the Fargate template');
    this.ctx.recorder.record(
      { kind: 'Deployment', namespace, name, uid: failed.deployment.metadata?.uid },
      'Warning',
      'RecoveryFailed',
      `${reason}; back to Fargate (failed attempt ${attempts}, next attempt not before ${nextAttemptAt.toISOString()})`,
    );
    this.ctx.alerter.notify({ kind: 'recovery_failed', deployment: ref(key), reason, attempts, nextAttemptAt });

    const rollback = await this.track(failed.deployment, 'recovery-rollback', now, settings.rolloutTimeout, settings, log, move);
    if (move.signal.aborted) return this.stoodDown(key, move, log);
    // Healthy or not, the move is over: the phase goes (so the backoff governs the next attempt) and
    // the Deployment gets its own strategy back.
    const done = await this.finish(key, 'migrating', { kind: 'migrated' }, move);
    if (done.outcome === 'error' || done.outcome === 'not_found') log.error({ result: done }, 'could not record the end of the rollback to Fargate');
    if (rollback.result === 'failed') {
      log.error({ detail: rollback.detail }, 'the Fargate template did not become healthy again after a failed recovery');
      this.ctx.metrics.recoveries.inc({ outcome: 'failed' });
      this.ctx.alerter.notify({
        kind: 'rollback',
        deployment: ref(key),
        reason: `after a failed recovery (${reason}), Fargate did not become healthy: ${rollback.detail}`,
        to: 'fargate',
      });
      return { key, result: 'failed', detail: rollback.detail };
    }
    this.ctx.metrics.recoveries.inc({ outcome: 'rolled_back' });
    this.ctx.recorder.record(
      { kind: 'Deployment', namespace, name, uid: failed.deployment.metadata?.uid },
      'Normal',
      'RecoveryRolledBack',
      'healthy on Fargate again after a failed recovery',
    );
    log.info({ attempts }, 'healthy on Fargate again after a failed recovery');
    return { key, result: 'rolled_back', detail: reason };
  }

  /** planFinish on the freshest copy, only while the phase is still `phase` (ours) and this move has not stood down. */
  private finish(key: string, phase: 'recovering' | 'migrating', outcome: FinishOutcome, move: MoveHandle) {
    const { namespace, name } = ref(key);
    return this.ctx.patcher.apply(namespace, name, this.ctx.view.deployment(namespace, name), (cur) => {
      if (move.signal.aborted) return { skip: `stood down (${move.signal.reason})` };
      const current = cur.metadata?.annotations?.[MANAGED_ANNOTATIONS.phase];
      if (current !== phase) return { skip: `phase is ${current ?? 'none'}, not ${phase}: another move took over` };
      const plan = planFinish(cur, outcome, this.ctx.signer);
      return 'error' in plan ? { error: plan.error } : { ops: plan.ops };
    });
  }

  /** The registry told this move to stand down: an interruption took over, or the controller is stopping. */
  private stoodDown(key: string, move: MoveHandle, log: Logger): RecoveryReport {
    const why = move.signal.reason as StandDown;
    if (why === 'stopping') return { key, result: 'cancelled', detail: 'controller stopping' };
    return this.preempted(key, 'an interruption took the Deployment over', log);
  }

  private preempted(key: string, detail: string, log: Logger): RecoveryReport {
    log.info({ detail }, 'recovery preempted: another move (an interruption) took over; staying on Fargate');
    const { namespace, name } = ref(key);
    const d = this.ctx.view.deployment(namespace, name);
    this.ctx.recorder.record({ kind: 'Deployment', namespace, name, uid: d?.metadata?.uid }, 'Normal', 'RecoveryPreempted', `recovery abandoned: ${detail}`);
    return { key, result: 'preempted', detail };
  }
}
