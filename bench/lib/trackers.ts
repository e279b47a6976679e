// What the benchmark measures, fed by watches (never by polls):
// - DeploymentTracker integrates max(0, spec.replicas - status.readyReplicas) over time from the
//   Deployment watch, notes which Deployments hit zero ready replicas, when each template was first
//   seen patched onto Fargate, and when its rollout completed;
// - PodTracker follows every pod of the namespace and tells, per Deployment, how many Ready pods run
//   on nodes that are not being reclaimed, and when that first reached the desired count.
import { AppsV1Api, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { CollectionWatch, type RawObject, type WatchEventType } from '../../testground/src/collection-watch.js';

export const COMPUTE_LABEL = 'compute-type';
export const FARGATE = 'fargate';

export interface DeploymentState {
  name: string;
  desired: number;
  ready: number;
  generation: number;
  observedGeneration: number;
  updated: number;
  available: number;
  replicas: number;
  /** First time the pod template was seen with compute-type=fargate (the patch). */
  patchedAt?: number;
  patchedGeneration?: number;
  /** First time, after the patch, the deployment controller reported the rollout complete. */
  rolloutCompleteAt?: number;
  hitZero: boolean;
  /** Integral of the deficit over the observation, in replica·milliseconds. */
  deficitMs: number;
  lastAt: number;
  gone: boolean;
}

type Listener = (d: DeploymentState) => void;

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

export function rolloutComplete(d: DeploymentState): boolean {
  return (
    d.patchedGeneration !== undefined &&
    d.observedGeneration >= d.patchedGeneration &&
    d.updated === d.desired &&
    d.available === d.desired &&
    d.replicas === d.desired
  );
}

/**
 * The objects of one kind in a namespace, followed by a watch. After a relist the tracker hears of
 * every object listed as modified, and of every one it held that is no longer there as deleted, so
 * it never needs to tell a relist from a stream of events.
 */
abstract class WatchedCollection {
  private readonly watch: CollectionWatch;
  events = 0;

  protected constructor(kc: KubeConfig, path: string, list: ConstructorParameters<typeof CollectionWatch>[0]['list'], log?: (line: string) => void) {
    this.watch = new CollectionWatch({
      kc,
      path,
      list,
      onEvent: (type, obj, at) => this.onEvent(type, obj, at),
      onRelist: (items, at) => {
        const seen = new Set<string>();
        for (const item of items) {
          seen.add(item.metadata!.name!);
          this.onEvent('MODIFIED', item, at);
        }
        for (const name of [...this.present()]) if (!seen.has(name)) this.onEvent('DELETED', { metadata: { name } }, at);
      },
      log,
    });
  }

  start(): Promise<void> {
    return this.watch.start();
  }

  stop(): void {
    this.watch.stop();
  }

  get restarts(): number {
    return this.watch.restarts;
  }

  protected abstract onEvent(type: WatchEventType, obj: RawObject, at: number): void;
  /** The names of the objects the tracker holds as present. */
  protected abstract present(): Iterable<string>;
}

export class DeploymentTracker extends WatchedCollection {
  readonly states = new Map<string, DeploymentState>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private integrating = false;
  private begunAt = 0;
  private totalDeficit = 0;
  /** [ms since begin, replicas below desired across the namespace] at every change. */
  readonly deficitTimeline: [number, number][] = [];

  /** Set when the tracker watches several namespaces (cluster-wide, keeping only these). */
  private readonly only: ReadonlySet<string> | undefined;

  /** One namespace, or several: then one cluster-wide watch, its objects filtered to them (names must be unique across them). */
  constructor(kc: KubeConfig, namespaces: string | readonly string[], log?: (line: string) => void) {
    const apps = kc.makeApiClient(AppsV1Api);
    const several = typeof namespaces === 'string' ? undefined : new Set(namespaces);
    const keep = (items: RawObject[]) => (several ? items.filter((o) => several.has(o.metadata?.namespace ?? '')) : items);
    super(
      kc,
      several ? '/apis/apps/v1/deployments' : `/apis/apps/v1/namespaces/${namespaces as string}/deployments`,
      async () => {
        const out = several ? await apps.listDeploymentForAllNamespaces() : await apps.listNamespacedDeployment({ namespace: namespaces as string });
        return { items: keep(out.items as RawObject[]), resourceVersion: out.metadata?.resourceVersion ?? '' };
      },
      log,
    );
    this.only = several;
  }

  protected *present(): Iterable<string> {
    for (const [name, s] of this.states) if (!s.gone) yield name;
  }

  private deficit(s: DeploymentState): number {
    return s.gone ? 0 : Math.max(0, s.desired - s.ready);
  }

  protected onEvent(type: WatchEventType, obj: RawObject, at: number): void {
    if (this.only && obj.metadata?.namespace !== undefined && !this.only.has(obj.metadata.namespace)) return;
    this.events++;
    const name = obj.metadata?.name;
    if (!name) return;
    let s = this.states.get(name);
    if (!s) {
      s = {
        name,
        desired: 0,
        ready: 0,
        generation: 0,
        observedGeneration: 0,
        updated: 0,
        available: 0,
        replicas: 0,
        hitZero: false,
        deficitMs: 0,
        lastAt: at,
        gone: false,
      };
      this.states.set(name, s);
    }
    const before = this.deficit(s);
    if (this.integrating) {
      s.deficitMs += before * Math.max(0, at - s.lastAt);
      s.lastAt = at;
    }
    if (type === 'DELETED') s.gone = true;
    else {
      const spec = obj.spec ?? {};
      const status = obj.status ?? {};
      s.gone = false;
      s.desired = typeof spec.replicas === 'number' ? spec.replicas : 1;
      s.ready = num(status.readyReplicas);
      s.updated = num(status.updatedReplicas);
      s.available = num(status.availableReplicas);
      s.replicas = num(status.replicas);
      s.generation = num(obj.metadata?.generation);
      s.observedGeneration = num(status.observedGeneration);
      const template = spec.template as { metadata?: { labels?: Record<string, string> } } | undefined;
      if (s.patchedAt === undefined && template?.metadata?.labels?.[COMPUTE_LABEL] === FARGATE) {
        s.patchedAt = at;
        s.patchedGeneration = s.generation;
      }
      if (s.rolloutCompleteAt === undefined && rolloutComplete(s)) s.rolloutCompleteAt = at;
    }
    if (this.integrating && !s.gone && s.desired > 0 && s.ready === 0) s.hitZero = true;
    const after = this.deficit(s);
    if (after !== before) {
      this.totalDeficit += after - before;
      if (this.integrating) this.deficitTimeline.push([at - this.begunAt, this.totalDeficit]);
    }
    for (const l of this.listeners.get(name) ?? []) l(s);
  }

  /** Starts integrating at `at` (the warning). */
  begin(at: number): void {
    this.begunAt = at;
    this.integrating = true;
    this.totalDeficit = 0;
    for (const s of this.states.values()) {
      s.lastAt = at;
      s.deficitMs = 0;
      s.hitZero = !s.gone && s.desired > 0 && s.ready === 0;
      this.totalDeficit += this.deficit(s);
    }
    this.deficitTimeline.push([0, this.totalDeficit]);
  }

  /** Closes the integral at `at` (end of the observation). */
  end(at: number): void {
    if (!this.integrating) return;
    for (const s of this.states.values()) {
      s.deficitMs += this.deficit(s) * Math.max(0, at - s.lastAt);
      s.lastAt = at;
    }
    this.deficitTimeline.push([at - this.begunAt, this.totalDeficit]);
    this.integrating = false;
  }

  get currentDeficit(): number {
    let total = 0;
    for (const s of this.states.values()) total += this.deficit(s);
    return total;
  }

  /** Resolves true when `ok` holds for the Deployment, false on timeout or abort. */
  waitFor(name: string, ok: (d: DeploymentState) => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const now = this.states.get(name);
    if (now && ok(now)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const set = this.listeners.get(name) ?? new Set<Listener>();
      this.listeners.set(name, set);
      const finish = (value: boolean) => {
        clearTimeout(timer);
        set.delete(listener);
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      };
      const listener: Listener = (d) => {
        if (ok(d)) finish(true);
      };
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), Math.max(0, timeoutMs));
      signal?.addEventListener('abort', onAbort);
      set.add(listener);
    });
  }

  /** Every Deployment ready at its desired count, on one ReplicaSet (setup is done). */
  allSettled(expected: number): { settled: number; total: number } {
    let settled = 0;
    for (const s of this.states.values()) {
      if (!s.gone && s.ready === s.desired && s.updated === s.desired && s.replicas === s.desired && s.observedGeneration >= s.generation) settled++;
    }
    return { settled, total: expected };
  }
}

interface PodState {
  app: string;
  node: string;
  ready: boolean;
  deleting: boolean;
}

const readyPod = (p: PodState) => p.ready && !p.deleting;

function podReady(obj: RawObject): boolean {
  const conditions = (obj.status?.conditions ?? []) as { type?: string; status?: string }[];
  return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

export class PodTracker extends WatchedCollection {
  private readonly pods = new Map<string, PodState>();
  /** Ready, not terminating, bound to a node that is not doomed: per app label. */
  private readonly surviving = new Map<string, number>();
  /** Ready and not terminating, anywhere: per app label (the pod-side view of readyReplicas). */
  private readonly readyByApp = new Map<string, number>();
  private integrating = false;
  private lastAt = 0;
  private podDeficit = 0;
  /** Integral of max(0, desired - ready pods) over every app seen, replica·ms, warning to end. */
  deficitMs = 0;
  private doomed = new Set<string>();
  private deadline = Infinity;
  private begunAt = 0;
  private desiredOf: (app: string) => number = () => 1;
  /** Deployments with a pod on a doomed node when the warning came. */
  readonly affected = new Set<string>();
  /**
   * Apps whose Ready, not terminating pods fell to 0 during the observation, from the pod watch: it sees
   * a dip that the Deployment's status.readyReplicas (written by the deployment controller, which lags
   * under load) can miss when a ReplicaSet replaces a dead pod at once.
   */
  readonly hitZero = new Set<string>();
  /** Per affected Deployment at the warning: desired replicas, and Ready replicas on nodes not warned. */
  readonly placement = new Map<string, { replicas: number; survivors: number }>();
  /** First time each affected Deployment had its desired count Ready off the doomed nodes. */
  readonly survivedAt = new Map<string, number>();
  /** [ms since begin, affected Deployments fully available off the doomed nodes]. */
  readonly survivedTimeline: [number, number][] = [];
  /** Last time, before the deadline, a pod on a doomed node started terminating (an eviction). */
  lastDoomedPodDeletionAt?: number;
  doomedPodsDeletedBeforeDeadline = 0;
  doomedPodsAtWarning = 0;

  constructor(
    kc: KubeConfig,
    readonly namespace: string,
    log?: (line: string) => void,
  ) {
    const core = kc.makeApiClient(CoreV1Api);
    super(
      kc,
      `/api/v1/namespaces/${namespace}/pods`,
      async () => {
        const out = await core.listNamespacedPod({ namespace });
        return { items: out.items as RawObject[], resourceVersion: out.metadata?.resourceVersion ?? '' };
      },
      log,
    );
  }

  protected present(): Iterable<string> {
    return [...this.pods.keys()];
  }

  private counts(p: PodState): boolean {
    return p.ready && !p.deleting && p.node !== '' && !this.doomed.has(p.node);
  }

  private appDeficit(app: string): number {
    return Math.max(0, this.desiredOf(app) - (this.readyByApp.get(app) ?? 0));
  }

  private setReady(app: string, delta: number, at: number): void {
    if (delta === 0) return;
    if (this.integrating) {
      this.deficitMs += this.podDeficit * Math.max(0, at - this.lastAt);
      this.lastAt = at;
      this.podDeficit -= this.appDeficit(app);
    }
    this.readyByApp.set(app, (this.readyByApp.get(app) ?? 0) + delta);
    if (this.integrating) {
      this.podDeficit += this.appDeficit(app);
      if ((this.readyByApp.get(app) ?? 0) <= 0 && this.desiredOf(app) > 0) this.hitZero.add(app);
    }
  }

  protected onEvent(type: WatchEventType, obj: RawObject, at: number): void {
    this.events++;
    const name = obj.metadata?.name;
    if (!name) return;
    const prev = this.pods.get(name);
    if (prev && this.counts(prev)) this.surviving.set(prev.app, (this.surviving.get(prev.app) ?? 0) - 1);
    if (type === 'DELETED') {
      if (prev) {
        this.pods.delete(name);
        if (readyPod(prev)) this.setReady(prev.app, -1, at);
        if (!prev.deleting) this.noteDoomedDeletion(prev, at);
        this.check(prev.app, at);
      }
      return;
    }
    const next: PodState = {
      app: obj.metadata?.labels?.app ?? prev?.app ?? '',
      node: (obj.spec?.nodeName as string | undefined) ?? '',
      ready: podReady(obj),
      deleting: Boolean(obj.metadata?.deletionTimestamp),
    };
    if (next.deleting && !prev?.deleting && prev) this.noteDoomedDeletion(next, at);
    this.pods.set(name, next);
    this.setReady(next.app, (readyPod(next) ? 1 : 0) - (prev && readyPod(prev) ? 1 : 0), at);
    if (this.counts(next)) this.surviving.set(next.app, (this.surviving.get(next.app) ?? 0) + 1);
    this.check(next.app, at);
  }

  private noteDoomedDeletion(p: PodState, at: number): void {
    if (!this.begunAt || !this.doomed.has(p.node) || at > this.deadline) return;
    this.doomedPodsDeletedBeforeDeadline++;
    this.lastDoomedPodDeletionAt = Math.max(this.lastDoomedPodDeletionAt ?? 0, at);
  }

  private check(app: string, at: number): void {
    if (!this.begunAt || !this.affected.has(app) || this.survivedAt.has(app)) return;
    if ((this.surviving.get(app) ?? 0) >= this.desiredOf(app)) {
      this.survivedAt.set(app, at);
      this.survivedTimeline.push([at - this.begunAt, this.survivedAt.size]);
    }
  }

  /** Pods (not terminating) per node name, for choosing and reporting the doomed nodes. */
  podsByNode(): Map<string, number> {
    const out = new Map<string, number>();
    for (const p of this.pods.values()) if (!p.deleting && p.node) out.set(p.node, (out.get(p.node) ?? 0) + 1);
    return out;
  }

  /** Apps with a (non-terminating) pod on one of the nodes. */
  appsOn(nodes: Iterable<string>): Set<string> {
    const set = new Set(nodes);
    const out = new Set<string>();
    for (const p of this.pods.values()) if (!p.deleting && set.has(p.node)) out.add(p.app);
    return out;
  }

  /** Marks the warning: from now on the doomed nodes' pods no longer count as surviving. */
  begin(at: number, doomed: string[], deadline: number, desiredOf: (app: string) => number): void {
    this.begunAt = at;
    this.deadline = deadline;
    this.desiredOf = desiredOf;
    this.doomed = new Set(doomed);
    this.surviving.clear();
    for (const p of this.pods.values()) {
      if (this.counts(p)) this.surviving.set(p.app, (this.surviving.get(p.app) ?? 0) + 1);
      if (!p.deleting && this.doomed.has(p.node)) {
        this.affected.add(p.app);
        this.doomedPodsAtWarning++;
      }
    }
    this.survivedTimeline.push([0, 0]);
    for (const app of this.affected) this.placement.set(app, { replicas: desiredOf(app), survivors: this.surviving.get(app) ?? 0 });
    for (const app of this.affected) this.check(app, at);
    this.integrating = true;
    this.lastAt = at;
    this.deficitMs = 0;
    this.podDeficit = 0;
    for (const app of this.apps) this.podDeficit += this.appDeficit(app);
  }

  /** Closes the pod-side integral. */
  end(at: number): void {
    if (!this.integrating) return;
    this.deficitMs += this.podDeficit * Math.max(0, at - this.lastAt);
    this.integrating = false;
  }

  /** Every app label the namespace's Deployments use (set by the caller before begin). */
  apps: string[] = [];
}
