// Recovery's scheduling: when to bring Deployments back from Fargate to spot, and how many at once.
// One Deployment's trip back is recovery-flow.ts.
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
//   - An interruption during a recovery wins: the move registry tells the recovery to stand down,
//     MigrationFlow re-applies the Fargate template (the phase is recovering, the template label
//     spot, so planMigration does not skip it), and every patch of the recovery first checks that
//     the phase is still its own (recovery-flow.ts).
import type { V1Deployment, V1Node } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import type { DeploymentRef } from '../alerts/alert.js';
import type { Timer } from '../clock.js';
import { isManaged } from '../config/scope.js';
import { deploymentLogger } from '../log.js';
import type { ControllerContext } from '../moves/context.js';
import { MANAGED_ANNOTATIONS } from '../state/annotations.js';
import { assessSpotCapacity, describeVerdict, judgePass, type SpotCapacity, type Verdict } from './eligibility.js';
import type { RecoveryFlow, RecoveryReport } from './recovery-flow.js';

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

const ref = (key: string): DeploymentRef => {
  const [namespace, name] = key.split('/') as [string, string];
  return { namespace, name };
};
const keyOf = (d: V1Deployment) => `${d.metadata?.namespace ?? ''}/${d.metadata?.name ?? ''}`;

export class RecoveryLoop {
  private readonly limit;
  /** Deployments waiting for a slot or being moved back, by this loop. */
  private readonly active = new Map<string, Promise<RecoveryReport>>();
  private readonly healthySpot = new Set<string>();
  private readonly lastReason = new Map<string, string>();
  private readonly warned = new Set<string>();
  private readonly debounceMs: number;
  /** Passes run between start() and stop(). */
  private running = false;
  /** Set by stop(): queued trips never start. */
  private stopped = false;
  private interval?: Timer;
  private soon?: { timer: Timer; due: number };
  lastPass?: PassReport;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly flow: RecoveryFlow,
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
    this.interval = this.ctx.clock.setRepeating(() => this.pass('interval'), this.ctx.config.recovery.interval);
    this.pass('start');
  }

  /** No new pass or trip; queued trips are dropped (the trips in flight stand down through the move registry). */
  stop(): void {
    this.running = false;
    this.stopped = true;
    this.interval?.cancel();
    this.soon?.timer.cancel();
    this.soon = undefined;
    this.limit.clearQueue();
  }

  get inFlight(): number {
    return this.active.size;
  }

  /** The trip of this Deployment queued or in flight here, if any (tests and shutdown wait on it). */
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
    const due = this.ctx.clock.now().getTime() + Math.max(0, delayMs);
    if (this.soon && this.soon.due <= due) return;
    this.soon?.timer.cancel();
    const timer = this.ctx.clock.setTimer(() => {
      this.soon = undefined;
      this.pass(trigger);
    }, delayMs);
    this.soon = { timer, due };
  }

  /** One pass over the managed Deployments on Fargate; queues the eligible ones and returns at once. */
  pass(trigger: string): PassReport | undefined {
    if (!this.running) return undefined;
    const { config, view, moves, log } = this.ctx;
    const now = this.ctx.clock.now();
    const onFargate = view
      .listDeployments()
      .filter((d) => isManaged(config, d, view.inScope) && d.metadata?.annotations?.[MANAGED_ANNOTATIONS.state] === 'fargate');
    const { capacity, verdicts } = judgePass(onFargate, view.listNodes(), {
      config,
      now,
      signer: this.ctx.signer,
      inFlight: (key) => {
        if (this.active.has(key)) return 'a recovery of it is queued or running';
        const move = moves.current(key);
        return move ? `a ${move} of it is in flight` : undefined;
      },
    });
    const report: PassReport = {
      at: now,
      trigger,
      capacity: { spotNodes: capacity.spotNodes, healthy: capacity.healthy.length },
      verdicts: new Map(),
      queued: [],
    };
    let wakeAt = Infinity;
    for (const { key, verdict, deployment } of verdicts) {
      report.verdicts.set(key, verdict);
      this.noteVerdict(key, verdict, deployment);
      if (verdict.eligible) {
        report.queued.push(key);
        this.enqueue(key, () => this.flow.recover(key));
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

  /** A trip back that a previous process (or a failed last step) left with phase recovering: it takes a slot like any other. */
  resume(d: V1Deployment): Promise<RecoveryReport> {
    return this.enqueue(keyOf(d), () => this.flow.resume(d));
  }

  private enqueue(key: string, job: () => Promise<RecoveryReport>): Promise<RecoveryReport> {
    const existing = this.active.get(key);
    if (existing) return existing;
    const task: Promise<RecoveryReport> = this.limit(() =>
      this.stopped ? Promise.resolve<RecoveryReport>({ key, result: 'cancelled', detail: 'controller stopping' }) : job(),
    )
      .catch((err: unknown): RecoveryReport => {
        if (!this.stopped) this.ctx.log.error({ deployment: key, err: String(err) }, 'recovery task failed');
        return { key, result: this.stopped ? 'cancelled' : 'failed', detail: String(err) };
      })
      .then((report) => {
        if (this.active.get(key) === task) this.active.delete(key);
        // A settled trip may start a backoff, or free a slot for capacity that is waiting: look again
        // soon. Not after a skip or an API error, which would only repeat itself.
        if (report.result === 'recovered' || report.result === 'rolled_back' || report.result === 'preempted')
          this.scheduleIn(this.debounceMs, `recovery of ${key} settled`);
        return report;
      });
    this.active.set(key, task);
    return task;
  }

  private noteVerdict(key: string, verdict: Verdict, deployment: V1Deployment): void {
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
    if (!verdict.eligible && verdict.reason === 'unverified_restore_record') {
      // Someone other than this controller wrote or changed the record: say so where the owner looks.
      log.warn({ reason: summary, detail: verdict.detail }, 'restore record rejected: not recovering this Deployment');
      this.ctx.recorder.record(
        { kind: 'Deployment', namespace: deployment.metadata!.namespace!, name: deployment.metadata!.name!, uid: deployment.metadata?.uid },
        'Warning',
        'RestoreRecordRejected',
        `${verdict.detail}. It stays on Fargate: put its spot template back by hand, then mark it with \`spot-orchestrator state set NAME --state spot\``,
      );
      return;
    }
    log[quiet ? 'debug' : 'info'](
      { eligible: verdict.eligible, reason: summary, nextEligibleAt: verdict.eligible ? undefined : verdict.nextEligibleAt?.toISOString() },
      `recovery: ${describeVerdict(verdict)}`,
    );
  }
}

export type { SpotCapacity };
