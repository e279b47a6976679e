// What the watch caches keep of each object: only the fields the controller reads, so that memory
// grows with the number of objects and not with their size (a Pod as the API server sends it is
// 5-10 KiB, most of it managedFields, container specs and status it never looks at).
//
// The readers, per kind (keep this list and the functions below in step when a reader changes):
// - every kind: metadata.name, namespace, uid (events, indexes), resourceVersion (the informer
//   compares it to drop repeats and resumes its watch from it).
// - Deployment: almost everything. The cached copy is the base of JSON patches (src/migration/plan.ts,
//   tested against its resourceVersion), of the saved spec (the template's scheduling fields), of
//   the settings (annotations) and of rollout judgement (spec.replicas, status). Only
//   metadata.managedFields goes: nothing reads it, and it is often the largest part of the object.
// - Pod: metadata.ownerReferences (pod -> ReplicaSet), metadata.deletionTimestamp (terminating pods
//   do not count as new pods), spec.nodeName (pods on a doomed node), status.conditions Ready
//   (health check after a rollout).
// - Node: metadata.labels (spot detection, nodeSelector and node affinity), metadata.annotations
//   (the controller's own interruption and rebalance marks), spec.providerID (instance id ->
//   node), spec.unschedulable and spec.taints (healthy spot capacity, tolerations), status.conditions
//   Ready.
// - ReplicaSet: metadata.ownerReferences (ReplicaSet -> Deployment) and the
//   deployment.kubernetes.io/revision annotation (the current ReplicaSet of a Deployment).
// - Service: spec.selector (which Services front a Deployment's pods).
// - EndpointSlice: the kubernetes.io/service-name label, and per endpoint conditions.ready and
//   targetRef (kind and name: which pods a Service serves).
//
// The trimmed objects keep their client-node types (the ClusterView API is unchanged) although
// required fields such as a Pod's spec.containers are gone: the casts below are where that happens.
import type {
  V1Deployment,
  V1Endpoint,
  V1EndpointSlice,
  V1Namespace,
  V1Node,
  V1NodeCondition,
  V1ObjectMeta,
  V1OwnerReference,
  V1Pod,
  V1PodCondition,
  V1ReplicaSet,
  V1Service,
} from '@kubernetes/client-node';

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/** The identity every cached object keeps. */
function identity(m: V1ObjectMeta | undefined): V1ObjectMeta {
  const out: V1ObjectMeta = {};
  if (m?.name !== undefined) out.name = m.name;
  if (m?.namespace !== undefined) out.namespace = m.namespace;
  if (m?.uid !== undefined) out.uid = m.uid;
  if (m?.resourceVersion !== undefined) out.resourceVersion = m.resourceVersion;
  return out;
}

function ownerReferences(refs: V1OwnerReference[] | undefined): V1OwnerReference[] | undefined {
  return refs?.map((r) => {
    const out: V1OwnerReference = { apiVersion: r.apiVersion, kind: r.kind, name: r.name, uid: r.uid };
    if (r.controller !== undefined) out.controller = r.controller;
    return out;
  });
}

function pick(map: Record<string, string> | undefined, key: string): Record<string, string> | undefined {
  const value = map?.[key];
  return value === undefined ? undefined : { [key]: value };
}

function readyCondition<C extends V1PodCondition | V1NodeCondition>(conditions: C[] | undefined): { type: string; status: string }[] | undefined {
  const ready = conditions?.find((c) => c.type === 'Ready');
  return ready ? [{ type: ready.type, status: ready.status }] : undefined;
}

export function trimDeployment(d: V1Deployment): V1Deployment {
  if (d.metadata?.managedFields === undefined) return d;
  const { managedFields: _dropped, ...metadata } = d.metadata;
  return { ...d, metadata };
}

export function trimPod(p: V1Pod): V1Pod {
  const metadata = identity(p.metadata);
  const owners = ownerReferences(p.metadata?.ownerReferences);
  if (owners) metadata.ownerReferences = owners;
  if (p.metadata?.deletionTimestamp) metadata.deletionTimestamp = p.metadata.deletionTimestamp;
  const out: V1Pod = { metadata };
  if (p.spec?.nodeName !== undefined) out.spec = { nodeName: p.spec.nodeName } as V1Pod['spec'];
  const conditions = readyCondition(p.status?.conditions);
  if (conditions) out.status = { conditions };
  return out;
}

export function trimNode(n: V1Node): V1Node {
  const metadata = identity(n.metadata);
  if (n.metadata?.labels) metadata.labels = n.metadata.labels;
  if (n.metadata?.annotations) metadata.annotations = n.metadata.annotations;
  const out: V1Node = { metadata };
  if (n.spec) {
    const spec: NonNullable<V1Node['spec']> = {};
    if (n.spec.providerID !== undefined) spec.providerID = n.spec.providerID;
    if (n.spec.unschedulable !== undefined) spec.unschedulable = n.spec.unschedulable;
    if (n.spec.taints !== undefined) spec.taints = n.spec.taints;
    out.spec = spec;
  }
  const conditions = readyCondition(n.status?.conditions);
  if (conditions) out.status = { conditions };
  return out;
}

export function trimReplicaSet(rs: V1ReplicaSet): V1ReplicaSet {
  const metadata = identity(rs.metadata);
  const owners = ownerReferences(rs.metadata?.ownerReferences);
  if (owners) metadata.ownerReferences = owners;
  const revision = pick(rs.metadata?.annotations, REVISION_ANNOTATION);
  if (revision) metadata.annotations = revision;
  return { metadata };
}

export function trimService(s: V1Service): V1Service {
  const out: V1Service = { metadata: identity(s.metadata) };
  if (s.spec?.selector !== undefined) out.spec = { selector: s.spec.selector };
  return out;
}

export function trimEndpointSlice(s: V1EndpointSlice): V1EndpointSlice {
  const metadata = identity(s.metadata);
  const serviceName = pick(s.metadata?.labels, SERVICE_NAME_LABEL);
  if (serviceName) metadata.labels = serviceName;
  const endpoints = (s.endpoints ?? []).map((ep) => {
    const out: Partial<V1Endpoint> = {};
    if (ep.conditions?.ready !== undefined) out.conditions = { ready: ep.conditions.ready };
    if (ep.targetRef) {
      const ref: NonNullable<typeof ep.targetRef> = {};
      if (ep.targetRef.kind !== undefined) ref.kind = ep.targetRef.kind;
      if (ep.targetRef.name !== undefined) ref.name = ep.targetRef.name;
      out.targetRef = ref;
    }
    return out;
  });
  return { metadata, endpoints } as V1EndpointSlice;
}

/** A Namespace is only asked whether it exists and what its labels are (namespace_selector). */
export function trimNamespace(ns: V1Namespace): V1Namespace {
  const metadata = identity(ns.metadata);
  if (ns.metadata?.labels) metadata.labels = ns.metadata.labels;
  return { metadata };
}
