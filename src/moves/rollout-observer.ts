// Phase 2: every rollout in flight is observed from the one shared Deployment watch (no poll loop
// per Deployment). Each has its own timeout. A rollout the deployment controller reports complete
// is then verified: after verification-delay, the new pods must be Ready and, for a Deployment
// behind a Service, listed as ready endpoints; health checks retry per health_check_retries.
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Clock, Timer } from '../clock.js';
import type { ClusterConfig } from '../config/config.js';
import { evaluateRollout, unobservedGeneration } from '../migration/rollout.js';
import { isPodReady, keyOf, type ClusterView } from '../kube/cluster-view.js';

export type Purpose = 'migration' | 'rollback' | 'recovery' | 'recovery-rollback';

export interface TrackRequest {
  namespace: string;
  name: string;
  purpose: Purpose;
  /** The generation our patch produced: a cached copy older than it says nothing about our rollout. */
  minGeneration: number;
  startedAt: Date;
  timeoutMs: number;
  verificationDelayMs: number;
  log: Logger;
  /**
   * Says how the Deployment's template no longer is the one this move wrote (undefined while it
   * is), for moves that must notice someone else putting a template back. Checked on every watched
   * copy at or past minGeneration, while verifying too: a reverted template's own rollout can
   * complete, and must not pass for this move's.
   */
  reverted?: (d: V1Deployment) => string | undefined;
}

/** Why a rollout did not become healthy, for code to act on (the detail is for people). */
export type RolloutFailure =
  /** Not healthy within the rollout timeout. */
  | 'timeout'
  /** Kubernetes gave up on it: the Progressing condition says ProgressDeadlineExceeded. */
  | 'progress-deadline-exceeded'
  /** Complete, then not healthy on every verification attempt. */
  | 'health-check-failed'
  | 'deleted'
  /** Someone else put another template back while the rollout was observed (TrackRequest.reverted). */
  | 'template-reverted'
  /** The move stood down (superseded by another move, or the controller stopping). */
  | 'stood-down';

export type Settlement = { result: 'complete'; durationMs: number } | { result: 'failed'; reason: RolloutFailure; detail: string };

interface Tracking {
  request: TrackRequest;
  settle: (s: Settlement) => void;
  timer: Timer;
  verifying: boolean;
  /** spec.replicas when the rollout was seen complete: the replicas the move is judged on. */
  completedReplicas?: number;
  /** Ends the verification's wait for a status that speaks for the generation: the watch delivered a new copy. */
  wake?: () => void;
}

export interface ObserverDeps {
  view: ClusterView;
  config: ClusterConfig;
  clock: Clock;
  onHealthCheckFailed?: (key: string, attempt: number, of: number, detail: string) => void;
}

export class RolloutObserver {
  private readonly tracked = new Map<string, Tracking>();

  constructor(private readonly deps: ObserverDeps) {
    deps.view.onDeployment((d, change) => {
      const t = this.tracked.get(keyOf(d));
      if (!t) return;
      if (change === 'delete') this.finish(t, { result: 'failed', reason: 'deleted', detail: 'the Deployment was deleted' });
      else this.evaluate(t, d);
    });
  }

  get inFlight(): number {
    return this.tracked.size;
  }

  /**
   * Observes until the rollout settles, or until `signal` aborts (the move stood down). One
   * Deployment has one move at a time (MoveRegistry), so it is observed for one purpose at a time:
   * a new observation replaces an older one, which settles as stood down.
   */
  track(request: TrackRequest, signal?: AbortSignal): Promise<Settlement> {
    const key = `${request.namespace}/${request.name}`;
    const existing = this.tracked.get(key);
    if (existing) this.finish(existing, { result: 'failed', reason: 'stood-down', detail: `replaced by a ${request.purpose} observation` });
    return new Promise<Settlement>((settle) => {
      if (signal?.aborted) return settle({ result: 'failed', reason: 'stood-down', detail: String(signal.reason) });
      const remaining = request.startedAt.getTime() + request.timeoutMs - this.deps.clock.now().getTime();
      const tracking: Tracking = {
        request,
        settle,
        verifying: false,
        timer: this.deps.clock.setTimer(() => {
          const d = this.deps.view.deployment(request.namespace, request.name);
          const detail = d ? evaluateRollout(d, this.evaluationClock(request)).detail : 'Deployment not found';
          this.finish(tracking, { result: 'failed', reason: 'timeout', detail: `rollout not healthy within ${request.timeoutMs} ms: ${detail}` });
        }, remaining),
      };
      this.tracked.set(key, tracking);
      signal?.addEventListener('abort', () => this.finish(tracking, { result: 'failed', reason: 'stood-down', detail: String(signal.reason) }), { once: true });
      const current = this.deps.view.deployment(request.namespace, request.name);
      if (current) this.evaluate(tracking, current);
    });
  }

  /** Stops observing; the observations in flight never settle (the controller is going away). */
  stop(): void {
    for (const t of this.tracked.values()) t.timer.cancel();
    this.tracked.clear();
  }

  private evaluationClock(request: Pick<TrackRequest, 'startedAt'>) {
    // The timeout is enforced by the timer, so evaluation never fails a rollout for time alone.
    return { startedAt: request.startedAt, now: this.deps.clock.now(), timeoutMs: Number.MAX_SAFE_INTEGER };
  }

  private finish(t: Tracking, s: Settlement) {
    const key = `${t.request.namespace}/${t.request.name}`;
    if (this.tracked.get(key) !== t) return;
    t.timer.cancel();
    this.tracked.delete(key);
    t.settle(s);
  }

  private evaluate(t: Tracking, d: V1Deployment) {
    if ((d.metadata?.generation ?? 0) < t.request.minGeneration) return;
    const reverted = t.request.reverted?.(d);
    if (reverted !== undefined) {
      this.finish(t, { result: 'failed', reason: 'template-reverted', detail: reverted });
      return;
    }
    if (t.verifying) {
      t.wake?.();
      return;
    }
    const evaluation = evaluateRollout(d, this.evaluationClock(t.request));
    if (evaluation.status === 'failed') {
      // The timeout is the timer's, so a failed evaluation is Kubernetes' own progress deadline.
      this.finish(t, { result: 'failed', reason: 'progress-deadline-exceeded', detail: evaluation.detail });
    } else if (evaluation.status === 'complete') {
      t.verifying = true;
      t.completedReplicas = d.spec?.replicas ?? 1;
      t.request.log.debug({ purpose: t.request.purpose }, 'rollout complete; verifying health');
      void this.verify(t);
    }
  }

  private async verify(t: Tracking) {
    const { health_check_retries: retries, health_check_interval: interval } = this.deps.config.monitoring;
    const key = `${t.request.namespace}/${t.request.name}`;
    await this.deps.clock.sleep(t.request.verificationDelayMs);
    for (let attempt = 1; attempt <= retries; ) {
      if (this.tracked.get(key) !== t) return; // timed out or stood down meanwhile
      const current = this.deps.view.deployment(t.request.namespace, t.request.name);
      // The watch handler settles a revert as soon as it sees one; this covers a copy the cache
      // holds that the handler has not been called for yet.
      const reverted = current ? t.request.reverted?.(current) : undefined;
      if (reverted !== undefined) {
        this.finish(t, { result: 'failed', reason: 'template-reverted', detail: reverted });
        return;
      }
      // Another writer's change (a scale, a label, an annotation) gives the Deployment a generation
      // the deployment controller has not reported on yet: nothing is known of its health until it
      // has. That is waited out, bounded by the rollout timeout, and is no failed attempt.
      // The copy that says so comes through the watch, and wakes the wait at once: a Deployment
      // written to all the time has its generation observed only between two writes, which a
      // check every interval would keep missing.
      const unknown = current ? unobservedGeneration(current) : undefined;
      if (unknown) {
        t.request.log.debug({ why: unknown }, 'health not known yet; verifying again');
        const woken = new AbortController();
        t.wake = () => woken.abort();
        await this.deps.clock.sleep(interval, woken.signal);
        t.wake = undefined;
        continue;
      }
      const problem = this.healthProblem(t.request.namespace, t.request.name, t.request.minGeneration, t.completedReplicas);
      if (!problem) {
        this.finish(t, { result: 'complete', durationMs: this.deps.clock.now().getTime() - t.request.startedAt.getTime() });
        return;
      }
      this.deps.onHealthCheckFailed?.(`${t.request.namespace}/${t.request.name}`, attempt, retries, problem);
      t.request.log.warn({ attempt, of: retries, problem }, 'health check failed');
      if (attempt < retries) await this.deps.clock.sleep(interval);
      else this.finish(t, { result: 'failed', reason: 'health-check-failed', detail: `health check failed ${retries} times: ${problem}` });
      attempt++;
    }
  }

  /**
   * Why the Deployment is not healthy on its current template, or undefined when it is.
   * `completedReplicas` (spec.replicas when the rollout was seen complete) caps what is asked of it:
   * replicas an autoscaler added since are still starting (50-90 s on Fargate), and are the
   * scaler's to bring up, not a sign that the move failed.
   */
  healthProblem(namespace: string, name: string, minGeneration = 0, completedReplicas?: number): string | undefined {
    const { view, config } = this.deps;
    const d = view.deployment(namespace, name);
    if (!d) return 'Deployment not found';
    if ((d.metadata?.generation ?? 0) < minGeneration) return 'the watch has not delivered the patched Deployment yet';
    const desired = d.spec?.replicas ?? 1;
    const judged = Math.min(desired, completedReplicas ?? desired);
    const evaluation = evaluateRollout(d, this.evaluationClock({ startedAt: this.deps.clock.now() }));
    if (evaluation.status !== 'complete' && !(evaluation.status === 'progressing' && scalingUpOnly(d, judged))) {
      return `rollout no longer complete: ${evaluation.detail}`;
    }
    const rs = view.currentReplicaSet(d);
    if (!rs) return 'current ReplicaSet not seen yet';
    const pods = view.podsOfReplicaSet(rs).filter((p) => !p.metadata?.deletionTimestamp);
    const ready = pods.filter(isPodReady);
    if (ready.length < judged) return `${ready.length}/${judged} new pods Ready`;
    const serviceName = config.kubernetes.mode === 'single' ? config.kubernetes.service_name : undefined;
    for (const svc of view.servicesFor(d, serviceName)) {
      const missing = notServing(ready, view.endpointSlicesOf(svc.metadata!.namespace!, svc.metadata!.name!));
      if (missing.length > 0) return `service ${svc.metadata!.name} has no ready endpoint for ${missing.length} new pod(s), e.g. ${missing[0]}`;
    }
    return undefined;
  }
}

/**
 * The rollout is only short of replicas added on top of `judged`: the status speaks for the current
 * generation, and every pod is of the current template (no old ReplicaSet's pod is left).
 */
function scalingUpOnly(d: V1Deployment, judged: number): boolean {
  const status = d.status ?? {};
  return (d.spec?.replicas ?? 1) > judged && unobservedGeneration(d) === undefined && (status.updatedReplicas ?? 0) === (status.replicas ?? 0);
}

function notServing(pods: V1Pod[], slices: ReturnType<ClusterView['endpointSlicesOf']>): string[] {
  const serving = new Set<string>();
  for (const slice of slices) {
    for (const ep of slice.endpoints ?? []) {
      if (ep.conditions?.ready !== false && ep.targetRef?.kind === 'Pod' && ep.targetRef.name) serving.add(ep.targetRef.name);
    }
  }
  return pods.map((p) => p.metadata!.name!).filter((n) => !serving.has(n));
}
