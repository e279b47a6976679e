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
  type V1Node,
  type V1Pod,
  type V1ReplicaSet,
  type V1Service,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { parseProviderId } from '../events/provider-id.js';
import { resilientInformer, type ResilientInformer } from './informer.js';
import { REVISION_ANNOTATION, SERVICE_NAME_LABEL, trimDeployment, trimEndpointSlice, trimNode, trimPod, trimReplicaSet, trimService } from './trim.js';

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

export class ClusterView {
  readonly nodes: ResilientInformer<V1Node>;
  readonly pods: ResilientInformer<V1Pod>;
  readonly replicaSets: ResilientInformer<V1ReplicaSet>;
  readonly deployments: ResilientInformer<V1Deployment>;
  readonly services: ResilientInformer<V1Service>;
  readonly endpointSlices: ResilientInformer<V1EndpointSlice>;

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
    readonly namespace: string,
    log: Logger,
  ) {
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const onError = (what: string) => (err: unknown, retryInMs: number) => log.warn({ err: String(err), retryInMs }, `watch of ${what} failed; relisting`);
    const ns = namespace;
    // Each cache keeps only what the controller reads of its objects (trim.ts says what and why).
    this.nodes = resilientInformer(kc, '/api/v1/nodes', () => core.listNode(), { onError: onError('nodes'), transform: trimNode });
    this.pods = resilientInformer(kc, `/api/v1/namespaces/${ns}/pods`, () => core.listNamespacedPod({ namespace: ns }), {
      onError: onError('pods'),
      transform: trimPod,
    });
    this.replicaSets = resilientInformer(kc, `/apis/apps/v1/namespaces/${ns}/replicasets`, () => apps.listNamespacedReplicaSet({ namespace: ns }), {
      onError: onError('replicasets'),
      transform: trimReplicaSet,
    });
    this.deployments = resilientInformer(kc, `/apis/apps/v1/namespaces/${ns}/deployments`, () => apps.listNamespacedDeployment({ namespace: ns }), {
      onError: onError('deployments'),
      transform: trimDeployment,
    });
    this.services = resilientInformer(kc, `/api/v1/namespaces/${ns}/services`, () => core.listNamespacedService({ namespace: ns }), {
      onError: onError('services'),
      transform: trimService,
    });
    this.endpointSlices = resilientInformer(
      kc,
      `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
      () => discovery.listNamespacedEndpointSlice({ namespace: ns }),
      { onError: onError('endpointslices'), transform: trimEndpointSlice },
    );

    this.nodes.cache.on('add', (n) => this.indexNode(n, 'add'));
    this.nodes.cache.on('update', (n) => this.indexNode(n, 'update'));
    this.nodes.cache.on('delete', (n) => this.indexNode(n, 'delete'));
    this.pods.cache.on('add', (p) => this.indexPod(p, 'add'));
    this.pods.cache.on('update', (p) => this.indexPod(p, 'update'));
    this.pods.cache.on('delete', (p) => this.indexPod(p, 'delete'));
    for (const change of ['add', 'update', 'delete'] as const) {
      this.replicaSets.cache.on(change, (rs) => this.replicaSetsByDeployment.update(rs, change));
      this.deployments.cache.on(change, (d) => {
        for (const l of this.deploymentListeners) l(d, change);
      });
      this.endpointSlices.cache.on(change, (s) => {
        for (const l of this.sliceListeners) l(s, change);
      });
    }
  }

  private informers() {
    return [this.nodes, this.pods, this.replicaSets, this.deployments, this.services, this.endpointSlices];
  }

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
    return [...keys].map((k) => this.pods.cache.get(k.split('/')[1]!, this.namespace)).filter((p): p is V1Pod => p !== undefined);
  }

  deploymentOfPod(pod: V1Pod): V1Deployment | undefined {
    const rsRef = pod.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'ReplicaSet');
    if (!rsRef) return undefined;
    const rs = this.replicaSets.cache.get(rsRef.name, pod.metadata!.namespace);
    const depRef = rs?.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'Deployment');
    return depRef ? this.deployments.cache.get(depRef.name, pod.metadata!.namespace) : undefined;
  }

  deployment(name: string): V1Deployment | undefined {
    return this.deployments.cache.get(name, this.namespace);
  }

  listDeployments(): readonly V1Deployment[] {
    return this.deployments.cache.list(this.namespace);
  }

  /** The ReplicaSet that carries the Deployment's current template (same revision annotation). */
  currentReplicaSet(deployment: V1Deployment): V1ReplicaSet | undefined {
    const revision = deployment.metadata?.annotations?.[REVISION_ANNOTATION];
    return this.cached(this.replicaSets, this.replicaSetsByDeployment.keysOf(deployment.metadata?.uid)).find(
      (rs) => rs.metadata?.annotations?.[REVISION_ANNOTATION] === revision,
    );
  }

  podsOfReplicaSet(rs: V1ReplicaSet): V1Pod[] {
    return this.cached(this.pods, this.podsByReplicaSet.keysOf(rs.metadata?.uid));
  }

  private cached<T extends KubernetesObject>(informer: ResilientInformer<T>, keys: string[]): T[] {
    return keys.flatMap((k) => {
      const [namespace, name] = k.split('/') as [string, string];
      const o = informer.cache.get(name, namespace);
      return o ? [o] : [];
    });
  }

  /** Services whose selector picks this Deployment's pods. */
  servicesFor(deployment: V1Deployment, onlyName?: string): V1Service[] {
    const labels = deployment.spec?.template.metadata?.labels ?? {};
    return this.services.cache.list(this.namespace).filter((svc) => {
      if (onlyName && svc.metadata?.name !== onlyName) return false;
      const selector = svc.spec?.selector;
      return selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
    });
  }

  endpointSlicesOf(serviceName: string): V1EndpointSlice[] {
    return this.endpointSlices.cache.list(this.namespace).filter((s) => s.metadata?.labels?.[SERVICE_NAME_LABEL] === serviceName);
  }

  listNodes(): readonly V1Node[] {
    return this.nodes.cache.list();
  }
}
