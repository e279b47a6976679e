// Recovery: bringing Deployments back from Fargate to spot once it is safe.
//
// When a pass runs
//   - every recovery.interval;
//   - shortly (debounceMs) after a spot node becomes healthy (Ready, schedulable, not at risk), so
//     fresh capacity is used without waiting for the interval; a burst of nodes makes one pass;
//   - at the earliest cooldown or backoff end a pass reported, when that comes before the next tick;
//   - shortly after a recovery settles (recovered, rolled back or preempted).
// A pass lists the managed Deployments in state fargate from the cache, judges spot capacity once
// (eligibility.ts) and every Deployment against it, and queues the eligible ones.
//
// Concurrency policy
//   At most controller.max_concurrent_recoveries Deployments are being moved back at once (a p-limit
//   queue): a slot is held from the restore patch until the rollout is healthy, or until the rollback
//   to Fargate after a failure has settled. Each Deployment is its own task, so a slow one holds one
//   slot and never the others. The cap exists so that a large recovery (say 200 Deployments after a
//   zone-wide interruption) does not move everything at once onto the first few spot nodes that come
//   back: those nodes would be packed, and one more interruption would send everything back to
//   Fargate together. With the cap, capacity is re-judged before each move (a queued Deployment whose
//   situation changed is skipped), and as more nodes join the later moves spread over them. Queued
//   Deployments start in the order the pass found them: longest on Fargate first (they cost most).
//   A move resumed after a restart takes a slot like any other.
//
// Safety
//   - Every move back keeps maxUnavailable 0 (planRestoreToSpot): the Fargate pods stay until the
//     spot pods are Ready, so availability is never traded for savings.
//   - Never while a migration is in flight: the phase annotation is checked when judging and again on
//     the freshest copy inside the optimistic-concurrency patch.
//   - An interruption during a recovery wins: MigrationFlow re-applies the Fargate template (the
//     phase is recovering, the template label spot, so planMigration does not skip it), its rollout
//     observation supersedes ours, and every patch here first checks that the phase is still ours.
import type { V1Deployment, V1Node } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import type { DeploymentRef } from '../alerts/alert.js';
import type { DeploymentSettings } from '../config/overrides.js';
import type { ControllerContext } from '../controller/context.js';
import type { MigrationFlow } from '../controller/migration-flow.js';
import type { Settlement } from '../controller/rollout-observer.js';
import { isManaged } from '../controller/scope.js';
import { deploymentLogger } from '../log.js';
import { planFinish, planRestoreToSpot, type FinishOutcome } from '../migration/plan.js';
import { MANAGED_ANNOTATIONS } from '../state/annotations.js';
import {
  assessSpotCapacity,
  legacyRestoreLabel,
  backoffDelayMs,
  describeVerdict,
  failedAttempts,
  judgePass,
  judgeRecovery,
  type SpotCapacity,
  type Verdict,
} from './eligibility.js';

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

export interface PassReport {
  at: Date;
  trigger: string;
  capacity: { spotNodes: number; healthy: number };
  verdicts: Map<string, Verdict>;
  /** Deployments queued for recovery by this pass. */
  queued: string[];
}

export interface RecoveryLoopOptions {
  /** Wait after a relevant cluster change before a pass, so a burst of changes makes one. */
  debounceMs?: number;
}

/** The recovery-reason annotation after a success. */
/** The Go original's value for a recovery that succeeded, kept so dashboards and queries carry over. */
export const RECOVERED_REASON = 'successful-recovery';

const ref = (key: string): DeploymentRef => {
  const [namespace, name] = key.split('/') as [string, string];
  return { namespace, name };
};
const keyOf = (d: V1Deployment) => `${d.metadata?.namespace ?? ''}/${d.metadata?.name ?? ''}`;

export class RecoveryLoop {
  private readonly limit;
  /** Deployments queued or being moved by this controller. */
  private readonly active = new Map<string, Promise<RecoveryReport>>();
  private readonly healthySpot = new Set<string>();
  private readonly lastReason = new Map<string, string>();
  private readonly warned = new Set<string>();
  private readonly debounceMs: number;
  /** Passes run between start() and stop(). */
  private running = false;
  /** Set by stop(): moves in flight make no further change. */
  private stopped = false;
  private interval?: NodeJS.Timeout;
  private soon?: { timer: NodeJS.Timeout; due: number };
  lastPass?: PassReport;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly flow: MigrationFlow,
    options: RecoveryLoopOptions = {},
  ) {
    this.limit = pLimit({ concurrency: ctx.config.controller.max_concurrent_recoveries, rejectOnClear: true });
    this.debounceMs = options.debounceMs ?? Math.min(2000, ctx.config.recovery.interval);
    ctx.view.onNode((node, change) => this.onNode(node, change));
  }

  /** Starts the interval and the triggers, and runs a first pass at once. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopped = false;
    for (const n of assessSpotCapacity(this.ctx.view.listNodes(), this.ctx.config.compute).healthy) this.healthySpot.add(n.metadata!.name!);
    this.interval = setInterval(() => this.pass('interval'), this.ctx.config.recovery.interval);
    this.interval.unref();
    this.pass('start');
  }

  /** No new pass or move; moves in flight stop at their next step (queued ones are dropped). */
  stop(): void {
    this.running = false;
    this.stopped = true;
    clearInterval(this.interval);
    if (this.soon) clearTimeout(this.soon.timer);
    this.soon = undefined;
    this.limit.clearQueue();
  }

  get inFlight(): number {
    return this.active.size;
  }

  /** The move of this Deployment queued or in flight here, if any (tests and shutdown wait on it). */
  settled(key: string): Promise<RecoveryReport> | undefined {
    return this.active.get(key);
  }

  private onNode(node: V1Node, change: 'add' | 'update' | 'delete'): void {
    const name = node.metadata?.name ?? '';
    const healthy = change !== 'delete' && assessSpotCapacity([node], this.ctx.config.compute).healthy.length === 1;
    if (!healthy) {
      this.healthySpot.delete(name);
      return;
    }
    if (this.healthySpot.has(name)) return;
    this.healthySpot.add(name);
    if (this.running) this.scheduleIn(this.debounceMs, `spot node ${name} healthy`);
  }

  /** A pass within delayMs (an earlier one already scheduled is kept). */
  private scheduleIn(delayMs: number, trigger: string): void {
    if (!this.running) return;
    const due = Date.now() + Math.max(0, delayMs);
    if (this.soon && this.soon.due <= due) return;
    if (this.soon) clearTimeout(this.soon.timer);
    const timer = setTimeout(
      () => {
        this.soon = undefined;
        this.pass(trigger);
      },
      Math.max(0, delayMs),
    );
    timer.unref();
    this.soon = { timer, due };
  }

  /** One pass over the managed Deployments on Fargate; queues the eligible ones and returns at once. */
  pass(trigger: string): PassReport | undefined {
    if (!this.running) return undefined;
    const { config, view, observer, log } = this.ctx;
    const now = this.ctx.now();
    const onFargate = view.listDeployments().filter((d) => isManaged(config, d) && d.metadata?.annotations?.[MANAGED_ANNOTATIONS.state] === 'fargate');
    const { capacity, verdicts } = judgePass(onFargate, view.listNodes(), {
      config,
      now,
      inFlight: (key) =>
        this.active.has(key) ? 'a recovery of it is queued or running' : observer.isTracked(key) ? 'a rollout of it is being observed' : undefined,
    });
    const report: PassReport = {
      at: now,
      trigger,
      capacity: { spotNodes: capacity.spotNodes, healthy: capacity.healthy.length },
      verdicts: new Map(),
      queued: [],
    };
    let wakeAt = Infinity;
    for (const { key, verdict } of verdicts) {
      report.verdicts.set(key, verdict);
      this.noteVerdict(key, verdict);
      if (verdict.eligible) {
        report.queued.push(key);
        this.enqueue(key, () => this.recover(key));
        continue;
      }
      if (verdict.reason !== 'in_flight' && verdict.reason !== 'phase_in_flight') this.ctx.metrics.recoveries.inc({ outcome: 'ineligible' });
      if (verdict.nextEligibleAt) wakeAt = Math.min(wakeAt, verdict.nextEligibleAt.getTime());
    }
    for (const key of this.lastReason.keys()) if (!report.verdicts.has(key)) this.lastReason.delete(key);
    this.lastPass = report;
    log.debug(
      {
        trigger,
        onFargate: verdicts.length,
        spotNodes: capacity.spotNodes,
        healthySpot: capacity.healthy.length,
        queued: report.queued.length,
        inFlight: this.active.size,
      },
      'recovery pass',
    );
    if (report.queued.length > 0) {
      log.info(
        { trigger, deployments: report.queued, healthySpot: capacity.healthy.length, maxConcurrent: config.controller.max_concurrent_recoveries },
        'recovery: moving Deployments back to spot',
      );
      this.ctx.alerter.notify({ kind: 'recovery_started', deployments: report.queued.map(ref) });
    }
    // Wake up when a cooldown or backoff ends, if that comes before the next tick.
    const wait = wakeAt - now.getTime();
    if (Number.isFinite(wait) && wait < config.recovery.interval) this.scheduleIn(wait + 50, 'cooldown or backoff over');
    return report;
  }

  /** A move left with phase recovering by a previous process: observe it to the end. */
  resume(d: V1Deployment): Promise<RecoveryReport> {
    const key = keyOf(d);
    return this.enqueue(key, async () => {
      const log = deploymentLogger(this.ctx.log, key);
      if (this.ctx.observer.isTracked(key)) return { key, result: 'skipped', detail: 'already observed' };
      const settings = this.flow.settingsFor(d, log);
      const startedAt = this.ctx.now();
      log.info({ timeoutMs: this.ctx.config.recovery.timeout }, 'resuming a recovery left in flight');
      const settlement = await this.track(d, 'recovery', startedAt, this.ctx.config.recovery.timeout, settings, log);
      return this.settle(key, settlement, startedAt, settings, log);
    });
  }

  private enqueue(key: string, job: () => Promise<RecoveryReport>): Promise<RecoveryReport> {
    const existing = this.active.get(key);
    if (existing) return existing;
    const task: Promise<RecoveryReport> = this.limit(job)
      .catch((err: unknown): RecoveryReport => {
        if (!this.stopped) this.ctx.log.error({ deployment: key, err: String(err) }, 'recovery task failed');
        return { key, result: this.stopped ? 'cancelled' : 'failed', detail: String(err) };
      })
      .then((report) => {
        if (this.active.get(key) === task) this.active.delete(key);
        // A settled move may start a backoff, or free a slot for capacity that is waiting: look again
        // soon. Not after a skip or an API error, which would only repeat itself.
        if (report.result === 'recovered' || report.result === 'rolled_back' || report.result === 'preempted')
          this.scheduleIn(this.debounceMs, `recovery of ${key} settled`);
        return report;
      });
    this.active.set(key, task);
    return task;
  }

  /** The move back for one Deployment: re-judge, restore the spot template, observe, finish. */
  private async recover(key: string): Promise<RecoveryReport> {
    const { name, namespace } = ref(key);
    const log = deploymentLogger(this.ctx.log, key);
    const skip = (detail: string): RecoveryReport => {
      log.info({ detail }, 'recovery skipped');
      return { key, result: 'skipped', detail };
    };
    if (this.stopped) return { key, result: 'cancelled', detail: 'controller stopping' };
    const cached = this.ctx.view.deployment(name);
    if (!cached) return skip('the Deployment is gone');
    // Things may have changed while it waited for a slot: judge again on fresh capacity.
    const verdict = judgeRecovery(cached, {
      config: this.ctx.config,
      now: this.ctx.now(),
      capacity: assessSpotCapacity(this.ctx.view.listNodes(), this.ctx.config.compute),
      inFlight: this.ctx.observer.isTracked(key) ? 'a rollout of it is being observed' : undefined,
    });
    if (!verdict.eligible) return skip(describeVerdict(verdict));
    const settings = this.flow.settingsFor(cached, log);
    const startedAt = this.ctx.now();
    const legacy = legacyRestoreLabel(this.ctx.config);
    let goOriginalNote: string | undefined;
    const result = await this.ctx.patcher.apply(namespace, name, cached, (cur) => {
      const a = cur.metadata?.annotations ?? {};
      if (a[MANAGED_ANNOTATIONS.state] !== 'fargate') return { skip: `state is ${a[MANAGED_ANNOTATIONS.state]}` };
      if (a[MANAGED_ANNOTATIONS.phase] !== undefined) return { skip: `a move is in flight (phase ${a[MANAGED_ANNOTATIONS.phase]})` };
      const plan = planRestoreToSpot(cur, { purpose: 'recovery', now: startedAt, legacy });
      goOriginalNote = 'note' in plan ? plan.note : undefined;
      return 'error' in plan ? { error: plan.error } : { ops: plan.ops };
    });
    switch (result.outcome) {
      case 'not_found':
        return skip('the Deployment is gone');
      case 'skipped':
        return skip(result.why);
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
    if (this.stopped) return { key, result: 'cancelled', detail: 'controller stopping' };
    // An interruption that got in between the patch and here owns the observation: leave it alone.
    if (this.ctx.observer.isTracked(key)) return this.preempted(key, 'another move of it is being observed', log);
    const settlement = await this.track(d, 'recovery', startedAt, this.ctx.config.recovery.timeout, settings, log);
    return this.settle(key, settlement, startedAt, settings, log);
  }

  private track(
    d: V1Deployment,
    purpose: 'recovery' | 'recovery-rollback',
    startedAt: Date,
    timeoutMs: number,
    settings: DeploymentSettings,
    log: Logger,
  ): Promise<Settlement> {
    return this.ctx.observer.track({
      namespace: d.metadata!.namespace!,
      name: d.metadata!.name!,
      purpose,
      minGeneration: d.metadata?.generation ?? 0,
      startedAt,
      timeoutMs,
      verificationDelayMs: settings.verificationDelay,
      log,
    });
  }

  /** Ends a recovery rollout: success records it, failure puts the Fargate template back. */
  private async settle(key: string, settlement: Settlement, startedAt: Date, settings: DeploymentSettings, log: Logger): Promise<RecoveryReport> {
    if (settlement.result === 'failed' && settlement.supersededBy) return this.preempted(key, settlement.detail, log);
    if (this.stopped) return { key, result: 'cancelled', detail: 'controller stopping' };
    const { namespace, name } = ref(key);
    const now = this.ctx.now();
    const migratedAt = Date.parse(this.ctx.view.deployment(name)?.metadata?.annotations?.[MANAGED_ANNOTATIONS.migratedAt] ?? '');

    if (settlement.result === 'complete') {
      const finished = await this.finish(key, 'recovering', { kind: 'recovered', now, recoveryReason: RECOVERED_REASON });
      if (finished.outcome === 'skipped') return this.preempted(key, finished.why, log);
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

    // Failed: back to the Fargate template, one more failed attempt, and the backoff that follows.
    const reason = recoveryFailureReason(settlement.detail);
    const { compute } = this.ctx.config;
    const failed = await this.finish(key, 'recovering', {
      kind: 'recovery-failed',
      now,
      recoveryReason: reason,
      computeLabelKey: compute.compute_label_key,
      spotLabel: compute.spot_label,
      fargateLabel: compute.fargate_label,
    });
    if (failed.outcome === 'skipped') return this.preempted(key, failed.why, log);
    if (failed.outcome === 'not_found') return { key, result: 'skipped', detail: 'the Deployment is gone' };
    if (failed.outcome !== 'patched') {
      log.error({ detail: settlement.detail, result: failed }, 'recovery failed and the Fargate template could not be put back');
      this.ctx.metrics.recoveries.inc({ outcome: 'failed' });
      this.ctx.alerter.notify({
        kind: 'recovery_failed',
        deployment: ref(key),
        reason: `${reason}; could not put the Fargate template back`,
        attempts: failedAttempts(this.ctx.view.deployment(name)?.metadata?.annotations),
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

    if (this.ctx.observer.isTracked(key)) return this.preempted(key, 'another move of it is being observed', log);
    const rollback = await this.track(failed.deployment, 'recovery-rollback', now, settings.rolloutTimeout, settings, log);
    if (rollback.result === 'failed' && rollback.supersededBy) return this.preempted(key, rollback.detail, log);
    if (this.stopped) return { key, result: 'cancelled', detail: 'controller stopping' };
    // Healthy or not, the move is over: the phase goes (so the backoff governs the next attempt) and
    // the Deployment gets its own strategy back.
    const done = await this.finish(key, 'migrating', { kind: 'migrated' });
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

  /** planFinish on the freshest copy, only while the phase is still `phase` (ours). */
  private finish(key: string, phase: 'recovering' | 'migrating', outcome: FinishOutcome) {
    const { namespace, name } = ref(key);
    return this.ctx.patcher.apply(namespace, name, this.ctx.view.deployment(name), (cur) => {
      const current = cur.metadata?.annotations?.[MANAGED_ANNOTATIONS.phase];
      if (current !== phase) return { skip: `phase is ${current ?? 'none'}, not ${phase}: another move took over` };
      const plan = planFinish(cur, outcome);
      return 'error' in plan ? { error: plan.error } : { ops: plan.ops };
    });
  }

  private preempted(key: string, detail: string, log: Logger): RecoveryReport {
    log.info({ detail }, 'recovery preempted: another move (an interruption) took over; staying on Fargate');
    const { namespace, name } = ref(key);
    const d = this.ctx.view.deployment(name);
    this.ctx.recorder.record({ kind: 'Deployment', namespace, name, uid: d?.metadata?.uid }, 'Normal', 'RecoveryPreempted', `recovery abandoned: ${detail}`);
    return { key, result: 'preempted', detail };
  }

  private noteVerdict(key: string, verdict: Verdict): void {
    const log = deploymentLogger(this.ctx.log, key);
    for (const w of verdict.warnings) {
      if (this.warned.has(`${key}\n${w}`)) continue;
      this.warned.add(`${key}\n${w}`);
      log.warn({ warning: w }, 'recovery eligibility');
    }
    const summary = verdict.eligible ? 'eligible' : verdict.reason;
    if (this.lastReason.get(key) === summary) return;
    this.lastReason.set(key, summary);
    const quiet = !verdict.eligible && (verdict.reason === 'in_flight' || verdict.reason === 'phase_in_flight');
    log[quiet ? 'debug' : 'info'](
      { eligible: verdict.eligible, reason: summary, nextEligibleAt: verdict.eligible ? undefined : verdict.nextEligibleAt?.toISOString() },
      `recovery: ${describeVerdict(verdict)}`,
    );
  }
}

/** The recovery-reason annotation after a failure: a short code, then the observer's detail. */
export function recoveryFailureReason(detail: string): string {
  const code = /^rollout not healthy within/.test(detail)
    ? 'rollout-timeout'
    : /^health check failed/.test(detail)
      ? 'health-check-failed'
      : /^progress deadline exceeded/.test(detail)
        ? 'progress-deadline-exceeded'
        : 'rollout-failed';
  const text = `${code}: ${detail}`;
  return text.length > 300 ? `${text.slice(0, 299)}…` : text;
}

export type { SpotCapacity };
