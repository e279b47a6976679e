// Pure planning of what the controller writes on Nodes: sealing off a doomed node (cordon, a NoSchedule
// taint of its own, the exclude-from-external-load-balancers label, the deadline marks), taking that
// back from a node that outlived its deadline, and which scheduled changes are due. The writes are
// merge patches that carry the node's resourceVersion: `spec.taints` is an atomic list, so a patch
// computed from a stale copy would drop a taint someone else added in between; the API server refuses
// it instead (409) and the caller plans again from a fresh read.
import type { V1Node, V1Taint } from '@kubernetes/client-node';
import { parseProviderId } from '../events/provider-id.js';
import { isNodeReady } from '../kube/cluster-view.js';
import { EXCLUDE_FROM_LB_LABEL, INTERRUPTED_TAINT_KEY, NODE_ANNOTATIONS } from '../state/annotations.js';

/** What the controller itself added to a node when it sealed it; only these are taken back. */
export interface SealRecord {
  taint: boolean;
  label: boolean;
  cordon: boolean;
}

export interface NodePatch {
  metadata: { resourceVersion?: string; labels?: Record<string, string | null>; annotations?: Record<string, string | null> };
  spec?: { unschedulable?: boolean | null; taints?: V1Taint[] | null };
}

const hasOurTaint = (node: V1Node) => (node.spec?.taints ?? []).some((t) => t.key === INTERRUPTED_TAINT_KEY && t.effect === 'NoSchedule');

export function readSealRecord(node: V1Node): SealRecord | undefined {
  const text = node.metadata?.annotations?.[NODE_ANNOTATIONS.sealed];
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<SealRecord>;
    return { taint: value.taint === true, label: value.label === true, cordon: value.cordon === true };
  } catch {
    // A damaged record: take back nothing rather than guess what was ours.
    return { taint: false, label: false, cordon: false };
  }
}

/**
 * Seals a doomed node: cordon, taint and label, plus `annotations`. The record keeps what an earlier
 * seal added, and adds what this one adds: a label or cordon that was there before is not ours.
 */
export function planSeal(node: V1Node, annotations: Record<string, string>, now: Date): NodePatch {
  const before = readSealRecord(node) ?? { taint: false, label: false, cordon: false };
  const addTaint = !hasOurTaint(node);
  const addLabel = node.metadata?.labels?.[EXCLUDE_FROM_LB_LABEL] === undefined;
  const addCordon = node.spec?.unschedulable !== true;
  const record: SealRecord = { taint: before.taint || addTaint, label: before.label || addLabel, cordon: before.cordon || addCordon };
  const patch: NodePatch = {
    metadata: {
      resourceVersion: node.metadata?.resourceVersion,
      annotations: { ...annotations, [NODE_ANNOTATIONS.sealed]: JSON.stringify(record) },
    },
    spec: { unschedulable: true },
  };
  if (addLabel) patch.metadata.labels = { [EXCLUDE_FROM_LB_LABEL]: 'true' };
  if (addTaint) {
    const taint: V1Taint = { key: INTERRUPTED_TAINT_KEY, value: 'true', effect: 'NoSchedule', timeAdded: now };
    patch.spec!.taints = [...(node.spec?.taints ?? []), taint];
  }
  return patch;
}

/** Only annotations (a scheduled change noted, a rebalance recommendation): nothing that needs a fresh copy. */
export function planMark(annotations: Record<string, string>, cordon: boolean): NodePatch {
  return { metadata: { annotations }, ...(cordon ? { spec: { unschedulable: true } } : {}) };
}

/**
 * When a sealed node should be gone by: its termination deadline, else when it was marked interrupted,
 * else (sealed by a rebalance move that no warning followed) when its recommendation came.
 */
export function deadlineOf(node: V1Node): Date | undefined {
  const a = node.metadata?.annotations ?? {};
  const text = a[NODE_ANNOTATIONS.terminationDeadline] ?? a[NODE_ANNOTATIONS.interruptedAt] ?? a[NODE_ANNOTATIONS.rebalanceMovedAt];
  const at = text === undefined ? Number.NaN : Date.parse(text);
  return Number.isNaN(at) ? undefined : new Date(at);
}

/**
 * Whether the node's marks say it goes at a termination deadline still ahead: a warning, or a due
 * scheduled change, that this process or an earlier one handled and sealed the node for.
 */
export function markedDoomed(node: V1Node, now: Date): boolean {
  // deadlineOf falls back to other marks (a rebalance's among them): only a termination deadline counts.
  if (node.metadata?.annotations?.[NODE_ANNOTATIONS.terminationDeadline] === undefined) return false;
  const deadline = deadlineOf(node);
  return deadline !== undefined && deadline.getTime() >= now.getTime();
}

/** The marks that say a node is doomed; a node that has one but no seal record was marked, not sealed (an older version). */
const hasDoomMark = (node: V1Node) =>
  node.metadata?.annotations?.[NODE_ANNOTATIONS.interruptedAt] !== undefined ||
  node.metadata?.annotations?.[NODE_ANNOTATIONS.terminationDeadline] !== undefined;

/**
 * Sealed (or interruption-marked) nodes still Ready `graceMs` after their deadline: the instance was
 * not taken after all, and the marks must not keep the node out of recovery for the rest of its life.
 */
export function survivors(nodes: readonly V1Node[], now: Date, graceMs: number): V1Node[] {
  return nodes.filter((node) => {
    if ((readSealRecord(node) === undefined && !hasDoomMark(node)) || !isNodeReady(node)) return false;
    const deadline = deadlineOf(node);
    return deadline !== undefined && now.getTime() >= deadline.getTime() + graceMs;
  });
}

/**
 * Takes back from a survivor what the controller added (and only that) and the marks that say it is
 * doomed, so recovery may use it again; notes when. undefined when there is nothing to take back.
 * rebalance-moved-at stays: the node's recommendation has had its move.
 */
export function planUnseal(node: V1Node, now: Date): NodePatch | undefined {
  // Without a record nothing was ours to take back but the marks: a cordon there may be someone else's.
  const record = readSealRecord(node) ?? (hasDoomMark(node) ? { taint: false, label: false, cordon: false } : undefined);
  if (record === undefined) return undefined;
  const annotations: Record<string, string | null> = { [NODE_ANNOTATIONS.survivedAt]: now.toISOString() };
  for (const key of [
    NODE_ANNOTATIONS.sealed,
    NODE_ANNOTATIONS.interruptedAt,
    NODE_ANNOTATIONS.terminationDeadline,
    NODE_ANNOTATIONS.scheduledChangeAt,
    NODE_ANNOTATIONS.scheduledChangeEvent,
    NODE_ANNOTATIONS.scheduledChangeMoved,
  ]) {
    if (node.metadata?.annotations?.[key] !== undefined) annotations[key] = null;
  }
  const patch: NodePatch = { metadata: { resourceVersion: node.metadata?.resourceVersion, annotations } };
  if (record.label && node.metadata?.labels?.[EXCLUDE_FROM_LB_LABEL] !== undefined) patch.metadata.labels = { [EXCLUDE_FROM_LB_LABEL]: null };
  const spec: NonNullable<NodePatch['spec']> = {};
  if (record.cordon && node.spec?.unschedulable === true) spec.unschedulable = null;
  if (record.taint && hasOurTaint(node)) {
    const rest = (node.spec?.taints ?? []).filter((t) => t.key !== INTERRUPTED_TAINT_KEY);
    spec.taints = rest.length > 0 ? rest : null;
  }
  if (Object.keys(spec).length > 0) patch.spec = spec;
  return patch;
}

/**
 * Uninstall (`recover --all --now`): every mark the controller writes on a node goes (each key of
 * NODE_ANNOTATIONS), with what its seal record says it added (the label, the cordon). Its own taint
 * goes even without a readable record: the key is the controller's alone, so no one else's taint can
 * be taken by it, whereas a label or a cordon may have been there before and is left unless the
 * record says it was ours. undefined when the node carries nothing of the controller's.
 */
export function planClearMarks(node: V1Node): NodePatch | undefined {
  const record = readSealRecord(node) ?? { taint: false, label: false, cordon: false };
  const present = node.metadata?.annotations ?? {};
  const annotations: Record<string, string | null> = {};
  for (const key of Object.values(NODE_ANNOTATIONS)) if (present[key] !== undefined) annotations[key] = null;
  const patch: NodePatch = { metadata: { resourceVersion: node.metadata?.resourceVersion } };
  if (Object.keys(annotations).length > 0) patch.metadata.annotations = annotations;
  if (record.label && node.metadata?.labels?.[EXCLUDE_FROM_LB_LABEL] !== undefined) patch.metadata.labels = { [EXCLUDE_FROM_LB_LABEL]: null };
  const spec: NonNullable<NodePatch['spec']> = {};
  if (record.cordon && node.spec?.unschedulable === true) spec.unschedulable = null;
  // Any effect: the key is ours whatever the effect someone may have edited it to.
  if ((node.spec?.taints ?? []).some((t) => t.key === INTERRUPTED_TAINT_KEY)) {
    const rest = (node.spec?.taints ?? []).filter((t) => t.key !== INTERRUPTED_TAINT_KEY);
    spec.taints = rest.length > 0 ? rest : null;
  }
  if (Object.keys(spec).length > 0) patch.spec = spec;
  return patch.metadata.annotations || patch.metadata.labels || patch.spec ? patch : undefined;
}

/** What planClearMarks takes off, for a person: "annotations interrupted-at, sealed; taint; cordon". */
export function describeClearMarks(patch: NodePatch): string {
  const parts: string[] = [];
  const removed = Object.keys(patch.metadata.annotations ?? {});
  if (removed.length > 0) parts.push(`annotations ${removed.map((k) => k.replace(/^spot-orchestrator\//, '')).join(', ')}`);
  if (patch.spec?.taints !== undefined) parts.push(`taint ${INTERRUPTED_TAINT_KEY}`);
  if (patch.metadata.labels) parts.push(`label ${EXCLUDE_FROM_LB_LABEL}`);
  if (patch.spec?.unschedulable === null) parts.push('cordon');
  return parts.join('; ');
}

/**
 * When a node's rebalance recommendation mark stops keeping recovery off it: `ttlMs` after the
 * recommendation. A mark that is not a time says nothing of when: it is expired at once.
 */
export function rebalanceMarkExpired(node: V1Node, now: Date, ttlMs: number): boolean {
  const text = node.metadata?.annotations?.[NODE_ANNOTATIONS.rebalanceRecommendedAt];
  if (text === undefined) return false;
  const at = Date.parse(text);
  return Number.isNaN(at) || now.getTime() >= at + ttlMs;
}

/**
 * Removes an expired rebalance mark. The patch carries the node's resourceVersion, and is planned from
 * the freshest copy: a newer recommendation written in between is not expired, and stays.
 */
export function planRebalanceExpiry(node: V1Node, now: Date, ttlMs: number): NodePatch | undefined {
  if (!rebalanceMarkExpired(node, now, ttlMs)) return undefined;
  return { metadata: { resourceVersion: node.metadata?.resourceVersion, annotations: { [NODE_ANNOTATIONS.rebalanceRecommendedAt]: null } } };
}

/** scheduled-change-moved: scope -> the startTime moved for. A damaged value counts as no move made. */
export function movedScopes(node: V1Node): Record<string, string> {
  const text = node.metadata?.annotations?.[NODE_ANNOTATIONS.scheduledChangeMoved];
  try {
    const value = text === undefined ? {} : (JSON.parse(text) as unknown);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'))
      : {};
  } catch {
    return {};
  }
}

/** The scheduled-change-moved value with this scope's move added, the other scopes' kept. */
export function withMovedScope(node: V1Node, scope: string, startTime: string): string {
  return JSON.stringify({ ...movedScopes(node), [scope]: startTime });
}

/** The nodes one Health event marked whose move is due now, with the instances behind them. */
export interface DueChange {
  eventId: string;
  startTime: Date;
  nodes: { node: V1Node; instanceId: string }[];
}

/**
 * Scheduled changes whose lead time has come (startTime - leadMs <= now) and whose move was not made,
 * one per Health event and startTime; and when the next one not yet due comes due.
 */
export function dueScheduledChanges(nodes: readonly V1Node[], now: Date, leadMs: number, scope: string): { due: DueChange[]; nextAt?: Date } {
  const due = new Map<string, DueChange>();
  let nextAt: number | undefined;
  for (const node of nodes) {
    const a = node.metadata?.annotations ?? {};
    const text = a[NODE_ANNOTATIONS.scheduledChangeAt];
    if (text === undefined || movedScopes(node)[scope] === text) continue;
    const startTime = Date.parse(text);
    const instanceId = parseProviderId(node.spec?.providerID)?.instanceId;
    if (Number.isNaN(startTime) || instanceId === undefined) continue;
    const dueAt = startTime - leadMs;
    if (dueAt > now.getTime()) {
      nextAt = Math.min(nextAt ?? dueAt, dueAt);
      continue;
    }
    const eventId = a[NODE_ANNOTATIONS.scheduledChangeEvent] ?? 'scheduled-change';
    const key = JSON.stringify([eventId, startTime]);
    const change = due.get(key) ?? { eventId, startTime: new Date(startTime), nodes: [] };
    change.nodes.push({ node, instanceId });
    due.set(key, change);
  }
  return { due: [...due.values()], ...(nextAt === undefined ? {} : { nextAt: new Date(nextAt) }) };
}
