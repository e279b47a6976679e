// What the controller knows of the cluster, fed by watches so that handling an event costs no LIST:
// instance id -> Node (spec.providerID) -> pods on it -> ReplicaSet -> Deployment. The cached objects
// are trimmed to the fields the controller reads (trim.ts): a new reader of a field not kept there
// finds it undefined, so add it to trim.ts (and its test) first.
import {
  AppsV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  type KubeConfig,
  type KubernetesObject,
  type V1Deployment,
  type V1EndpointSlice,
  type V1Namespace,
  type V1Node,
  type V1Pod,
  type V1ReplicaSet,
  type V1Service,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type NamespaceScope, namespaceInScope } from '../config/scope.js';
import { parseProviderId } from '../events/provider-id.js';
import { type ListPage, type PagedList, resilientInformer, type ResilientInformer } from './informer.js';
import {
  REVISION_ANNOTATION,
  SERVICE_NAME_LABEL,
  trimDeployment,
  trimEndpointSlice,
  trimNamespace,
  trimNode,
  trimPod,
  trimReplicaSet,
  trimService,
} from './trim.js';

export type ChangeType = 'add' | 'update' | 'delete';
type Listener<T> = (obj: T, change: ChangeType) => void;

export const keyOf = (o: KubernetesObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

export function isNodeReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export function isPodReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** Objects by the uid of their controller (ownerReferences with controller: true), kept from watch events. */
class ControllerIndex {
  private readonly byOwner = new Map<string, Set<string>>();
  private readonly ownerOf = new Map<string, string>();

  update(o: KubernetesObject, change: ChangeType): void {
    const key = keyOf(o);
    const before = this.ownerOf.get(key);
    const after = change === 'delete' ? undefined : o.metadata?.ownerReferences?.find((r) => r.controller)?.uid;
    if (before === after) return;
    if (before) {
      const set = this.byOwner.get(before);
      set?.delete(key);
      if (set?.size === 0) this.byOwner.delete(before);
      this.ownerOf.delete(key);
    }
    if (after) {
      let set = this.byOwner.get(after);
      if (!set) {
        set = new Set();
        this.byOwner.set(after, set);
      }
      set.add(key);
      this.ownerOf.set(key, after);
    }
  }

  /** Names (namespace/name keys) of what the owner with this uid controls. */
  keysOf(ownerUid: string | undefined): string[] {
    return ownerUid ? [...(this.byOwner.get(ownerUid) ?? [])] : [];
  }
}

/** One kind of namespaced object across the managed namespaces: a watch per listed namespace, or one for the cluster. */
class ScopedSource<T extends KubernetesObject> {
  /** Keyed by namespace; CLUSTER_WIDE for the one cluster-wide watch. */
  constructor(readonly informers: ReadonlyMap<string, ResilientInformer<T>>) {}

  private informerFor(namespace: string): ResilientInformer<T> | undefined {
    return this.informers.get(CLUSTER_WIDE) ?? this.informers.get(namespace);
  }

  get(name: string, namespace: string): T | undefined {
    return this.informerFor(namespace)?.cache.get(name, namespace);
  }

  /** Every cached object of one namespace (the cache's own list, not a copy: it is read on hot paths), or of all the watched ones. */
  list(namespace?: string): readonly T[] {
    if (namespace !== undefined) return this.informerFor(namespace)?.cache.list(namespace) ?? [];
    return [...this.informers.values()].flatMap((i) => i.cache.list());
  }

  on(change: ChangeType, listener: (obj: T) => void): void {
    for (const i of this.informers.values()) i.cache.on(change, listener);
  }
}

const CLUSTER_WIDE = '*';

interface NamespacedKind<T extends KubernetesObject> {
  what: string;
  /** The API path of the collection, in one namespace or (undefined) across the cluster. */
  path: (namespace: string | undefined) => string;
  list: (namespace: string | undefined, page: ListPage) => ReturnType<PagedList<T>>;
  transform: (obj: T) => T;
}

export class ClusterView {
  readonly nodes: ResilientInformer<V1Node>;
  /** Present only with a namespace selector: the namespaces that match it (the API server filters). */
  readonly namespaces: ResilientInformer<V1Namespace> | undefined;
  readonly pods: ScopedSource<V1Pod>;
  readonly replicaSets: ScopedSource<V1ReplicaSet>;
  readonly deployments: ScopedSource<V1Deployment>;
  readonly services: ScopedSource<V1Service>;
  readonly endpointSlices: ScopedSource<V1EndpointSlice>;

  private readonly nodeByInstance = new Map<string, string>();
  private readonly podsByNode = new Map<string, Set<string>>();
  private readonly nodeOfPod = new Map<string, string>();
  /** Phase 2 asks, per Deployment, for its ReplicaSet and that one's pods: indexed, not scanned. */
  private readonly replicaSetsByDeployment = new ControllerIndex();
  private readonly podsByReplicaSet = new ControllerIndex();
  private readonly deploymentListeners: Listener<V1Deployment>[] = [];
  private readonly podListeners: Listener<V1Pod>[] = [];
  private readonly sliceListeners: Listener<V1EndpointSlice>[] = [];
  private readonly nodeListeners: Listener<V1Node>[] = [];

  constructor(
    kc: KubeConfig,
    readonly scope: NamespaceScope,
    log: Logger,
  ) {
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const onError = (what: string) => (err: unknown, retryInMs: number) => log.warn({ err: String(err), retryInMs }, `watch of ${what} failed; relisting`);
    // A listed scope is watched namespace by namespace, so namespaced Roles are enough; "*" and a
    // selector need one cluster-wide watch per kind (and a ClusterRole), whatever the namespace count.
    const watched: (string | undefined)[] = scope.kind === 'listed' ? [...scope.namespaces] : [undefined];
    const source = <T extends KubernetesObject>(kind: NamespacedKind<T>): ScopedSource<T> =>
      new ScopedSource(
        new Map(
          watched.map((ns) => [
            ns ?? CLUSTER_WIDE,
            resilientInformer(kc, kind.path(ns), (page) => kind.list(ns, page), {
              onError: onError(ns ? `${kind.what} in ${ns}` : kind.what),
              transform: kind.transform,
            }),
          ]),
        ),
      );
    const inNamespace = (ns: string | undefined, group: string, plural: string) => (ns ? `${group}/namespaces/${ns}/${plural}` : `${group}/${plural}`);
    // Each cache keeps only what the controller reads of its objects (trim.ts says what and why).
    this.nodes = resilientInformer(kc, '/api/v1/nodes', (page) => core.listNode(page), { onError: onError('nodes'), transform: trimNode });
    this.namespaces =
      scope.kind === 'cluster' && scope.selector
        ? resilientInformer(kc, '/api/v1/namespaces', (page) => core.listNamespace({ labelSelector: scope.selector!.text, ...page }), {
            onError: onError('namespaces'),
            labelSelector: scope.selector.text,
            transform: trimNamespace,
          })
        : undefined;
    this.pods = source<V1Pod>({
      what: 'pods',
      path: (ns) => inNamespace(ns, '/api/v1', 'pods'),
      list: (ns, page) => (ns ? core.listNamespacedPod({ namespace: ns, ...page }) : core.listPodForAllNamespaces(page)),
      transform: trimPod,
    });
    this.replicaSets = source<V1ReplicaSet>({
      what: 'replicasets',
      path: (ns) => inNamespace(ns, '/apis/apps/v1', 'replicasets'),
      list: (ns, page) => (ns ? apps.listNamespacedReplicaSet({ namespace: ns, ...page }) : apps.listReplicaSetForAllNamespaces(page)),
      transform: trimReplicaSet,
    });
    this.deployments = source<V1Deployment>({
      what: 'deployments',
      path: (ns) => inNamespace(ns, '/apis/apps/v1', 'deployments'),
      list: (ns, page) => (ns ? apps.listNamespacedDeployment({ namespace: ns, ...page }) : apps.listDeploymentForAllNamespaces(page)),
      transform: trimDeployment,
    });
    this.services = source<V1Service>({
      what: 'services',
      path: (ns) => inNamespace(ns, '/api/v1', 'services'),
      list: (ns, page) => (ns ? core.listNamespacedService({ namespace: ns, ...page }) : core.listServiceForAllNamespaces(page)),
      transform: trimService,
    });
    this.endpointSlices = source<V1EndpointSlice>({
      what: 'endpointslices',
      path: (ns) => inNamespace(ns, '/apis/discovery.k8s.io/v1', 'endpointslices'),
      list: (ns, page) => (ns ? discovery.listNamespacedEndpointSlice({ namespace: ns, ...page }) : discovery.listEndpointSliceForAllNamespaces(page)),
      transform: trimEndpointSlice,
    });

    // A namespace labelled into (or out of) the selector changes what is managed from then on: said
    // once, so an operator can tell why a Deployment is (no longer) moved. The first list is not news.
    const namespaces = this.namespaces;
    if (namespaces) {
      namespaces.cache.on('add', (n) => {
        if (namespaces.synced)
          log.info({ namespace: n.metadata?.name, selector: scope.kind === 'cluster' ? scope.selector?.text : undefined }, 'namespace joined the scope');
      });
      namespaces.cache.on('delete', (n) => {
        if (namespaces.synced)
          log.info({ namespace: n.metadata?.name, selector: scope.kind === 'cluster' ? scope.selector?.text : undefined }, 'namespace left the scope');
      });
    }
    this.nodes.cache.on('add', (n) => this.indexNode(n, 'add'));
    this.nodes.cache.on('update', (n) => this.indexNode(n, 'update'));
    this.nodes.cache.on('delete', (n) => this.indexNode(n, 'delete'));
    for (const change of ['add', 'update', 'delete'] as const) {
      this.pods.on(change, (p) => this.indexPod(p, change));
      this.replicaSets.on(change, (rs) => this.replicaSetsByDeployment.update(rs, change));
      this.deployments.on(change, (d) => {
        for (const l of this.deploymentListeners) l(d, change);
      });
      this.endpointSlices.on(change, (s) => {
        for (const l of this.sliceListeners) l(s, change);
      });
    }
  }

  private informers(): ResilientInformer<KubernetesObject>[] {
    const namespaced = [this.pods, this.replicaSets, this.deployments, this.services, this.endpointSlices].flatMap((s) => [...s.informers.values()]);
    return [this.nodes, ...(this.namespaces ? [this.namespaces] : []), ...namespaced] as ResilientInformer<KubernetesObject>[];
  }

  /** Whether Deployments of this namespace are managed (listed, or matching the selector now). */
  readonly inScope = (namespace: string): boolean =>
    namespaceInScope(this.scope, namespace, (ns) => {
      const found = this.namespaces?.cache.get(ns);
      return found ? (found.metadata?.labels ?? {}) : undefined;
    });

  async start(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.stop()));
  }

  get synced(): boolean {
    return this.informers().every((i) => i.synced);
  }

  onDeployment(l: Listener<V1Deployment>) {
    this.deploymentListeners.push(l);
  }
  onPod(l: Listener<V1Pod>) {
    this.podListeners.push(l);
  }
  onEndpointSlice(l: Listener<V1EndpointSlice>) {
    this.sliceListeners.push(l);
  }
  onNode(l: Listener<V1Node>) {
    this.nodeListeners.push(l);
  }

  private indexNode(node: V1Node, change: ChangeType) {
    const instance = parseProviderId(node.spec?.providerID)?.instanceId;
    if (instance) {
      if (change === 'delete') this.nodeByInstance.delete(instance);
      else this.nodeByInstance.set(instance, node.metadata!.name!);
    }
    for (const l of this.nodeListeners) l(node, change);
  }

  private indexPod(pod: V1Pod, change: ChangeType) {
    this.podsByReplicaSet.update(pod, change);
    const key = keyOf(pod);
    const before = this.nodeOfPod.get(key);
    const after = change === 'delete' ? undefined : pod.spec?.nodeName;
    if (before !== after) {
      if (before) {
        const set = this.podsByNode.get(before);
        set?.delete(key);
        if (set?.size === 0) this.podsByNode.delete(before);
      }
      if (after) {
        let set = this.podsByNode.get(after);
        if (!set) {
          set = new Set();
          this.podsByNode.set(after, set);
        }
        set.add(key);
        this.nodeOfPod.set(key, after);
      } else {
        this.nodeOfPod.delete(key);
      }
    }
    for (const l of this.podListeners) l(pod, change);
  }

  nodeForInstance(instanceId: string): V1Node | undefined {
    const name = this.nodeByInstance.get(instanceId);
    return name ? this.nodes.cache.get(name) : undefined;
  }

  podsOnNode(nodeName: string): V1Pod[] {
    const keys = this.podsByNode.get(nodeName) ?? new Set<string>();
    return this.cached(this.pods, [...keys]);
  }

  deploymentOfPod(pod: V1Pod): V1Deployment | undefined {
    const rsRef = pod.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'ReplicaSet');
    if (!rsRef) return undefined;
    const namespace = pod.metadata?.namespace ?? '';
    const rs = this.replicaSets.get(rsRef.name, namespace);
    const depRef = rs?.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'Deployment');
    return depRef ? this.deployments.get(depRef.name, namespace) : undefined;
  }

  deployment(namespace: string, name: string): V1Deployment | undefined {
    return this.deployments.get(name, namespace);
  }

  /** The Deployments of the managed namespaces (opted in or not: isManaged decides). */
  listDeployments(): V1Deployment[] {
    return this.deployments.list().filter((d) => this.inScope(d.metadata?.namespace ?? ''));
  }

  /** The ReplicaSet that carries the Deployment's current template (same revision annotation). */
  currentReplicaSet(deployment: V1Deployment): V1ReplicaSet | undefined {
    const revision = deployment.metadata?.annotations?.[REVISION_ANNOTATION];
    return this.cached(this.replicaSets, this.replicaSetsByDeployment.keysOf(deployment.metadata?.uid)).find(
      (rs) => rs.metadata?.annotations?.[REVISION_ANNOTATION] === revision,
    );
  }

  /**
   * Ready pods of the Deployment's ReplicaSets other than its current one: the old template's pods
   * that still serve. A pod the old ReplicaSet recreated with nowhere to run (Pending) is not one.
   */
  readyOlderPods(deployment: V1Deployment): number {
    const current = this.currentReplicaSet(deployment)?.metadata?.uid;
    let ready = 0;
    for (const rs of this.cached(this.replicaSets, this.replicaSetsByDeployment.keysOf(deployment.metadata?.uid))) {
      if (rs.metadata?.uid === current) continue;
      ready += this.podsOfReplicaSet(rs).filter((p) => !p.metadata?.deletionTimestamp && isPodReady(p)).length;
    }
    return ready;
  }

  podsOfReplicaSet(rs: V1ReplicaSet): V1Pod[] {
    return this.cached(this.pods, this.podsByReplicaSet.keysOf(rs.metadata?.uid));
  }

  private cached<T extends KubernetesObject>(source: ScopedSource<T>, keys: string[]): T[] {
    return keys.flatMap((k) => {
      const [namespace, name] = k.split('/') as [string, string];
      const o = source.get(name, namespace);
      return o ? [o] : [];
    });
  }

  /** Services whose selector picks this Deployment's pods. */
  servicesFor(deployment: V1Deployment, onlyName?: string): V1Service[] {
    const labels = deployment.spec?.template.metadata?.labels ?? {};
    return this.services.list(deployment.metadata?.namespace ?? '').filter((svc) => {
      if (onlyName && svc.metadata?.name !== onlyName) return false;
      const selector = svc.spec?.selector;
      return selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
    });
  }

  endpointSlicesOf(namespace: string, serviceName: string): V1EndpointSlice[] {
    return this.endpointSlices.list(namespace).filter((s) => s.metadata?.labels?.[SERVICE_NAME_LABEL] === serviceName);
  }

  listNodes(): readonly V1Node[] {
    return this.nodes.cache.list();
  }
}
