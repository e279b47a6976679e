import type { V1Affinity, V1LabelSelector, V1NodeAffinity, V1NodeSelectorRequirement, V1NodeSelectorTerm, V1Toleration } from '@kubernetes/client-node';

/** The label convention of the cluster: which pod/node label selects spot, which one Fargate. */
export interface ComputeLabels {
  /** Label key on pods (Fargate profile selector) and on spot nodes, e.g. `compute-type`. */
  computeLabelKey: string;
  /** Value of computeLabelKey on spot nodes, e.g. `spot`. */
  spotLabel: string;
  /** Value of computeLabelKey the Fargate profiles select, e.g. `fargate`. */
  fargateLabel: string;
}

/** Node label (and taint) that EKS managed node groups put on spot nodes, value `SPOT`. */
export const EKS_CAPACITY_TYPE_KEY = 'eks.amazonaws.com/capacityType';
/** Node label that Karpenter puts on its nodes, value `spot` on spot capacity. */
export const KARPENTER_CAPACITY_TYPE_KEY = 'karpenter.sh/capacity-type';

/** Label key -> lower-cased values that mean "spot". */
function spotValues(labels: ComputeLabels): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  const add = (key: string, value: string): void => {
    const set = m.get(key) ?? new Set<string>();
    set.add(value.toLowerCase());
    m.set(key, set);
  };
  add(labels.computeLabelKey, labels.spotLabel);
  add(EKS_CAPACITY_TYPE_KEY, 'SPOT');
  add(KARPENTER_CAPACITY_TYPE_KEY, 'spot');
  return m;
}

/** True if `key: value` as a node selector entry selects spot nodes (value compared case-insensitively). */
export function selectsSpot(labels: ComputeLabels, key: string, value: string): boolean {
  return spotValues(labels).get(key)?.has(value.toLowerCase()) ?? false;
}

/** True if a node selector requirement is `<spot key> In [... a spot value ...]`. */
export function requirementSelectsSpot(labels: ComputeLabels, req: V1NodeSelectorRequirement): boolean {
  return req.operator === 'In' && (req.values ?? []).some((v) => selectsSpot(labels, req.key, v));
}

/** True if a toleration tolerates a spot taint: its key is a spot label key, `spot`, or the EKS capacity taint. */
export function toleratesSpot(labels: ComputeLabels, t: V1Toleration): boolean {
  if (t.key === undefined) return false;
  return t.key === 'spot' || spotValues(labels).has(t.key);
}

/** Result of stripping one field: its new value (undefined = remove the field) and whether it changed. */
export interface Stripped<T> {
  value: T | undefined;
  changed: boolean;
}

/** Drops nodeSelector entries that select spot; an emptied selector becomes absent. */
export function stripNodeSelector(labels: ComputeLabels, nodeSelector: Record<string, string> | undefined): Stripped<Record<string, string>> {
  if (nodeSelector === undefined) return { value: undefined, changed: false };
  const kept = Object.entries(nodeSelector).filter(([k, v]) => !selectsSpot(labels, k, v));
  if (kept.length === Object.keys(nodeSelector).length) return { value: nodeSelector, changed: false };
  return { value: kept.length > 0 ? Object.fromEntries(kept) : undefined, changed: true };
}

/**
 * Drops spot-selecting node affinity:
 * - required terms: spot-selecting match expressions are removed; a term left with no expressions
 *   and no fields is dropped; requiredDuringScheduling… is dropped when no term remains. A term with
 *   other expressions keeps them.
 * - preferred terms with any spot-selecting expression are dropped whole.
 * An emptied nodeAffinity is dropped, and an emptied affinity becomes absent. Pod (anti-)affinity
 * is never touched.
 */
export function stripAffinity(labels: ComputeLabels, affinity: V1Affinity | undefined): Stripped<V1Affinity> {
  const na = affinity?.nodeAffinity;
  if (affinity === undefined || na === undefined) return { value: affinity, changed: false };

  const next: V1NodeAffinity = { ...na };
  let changed = false;

  const required = na.requiredDuringSchedulingIgnoredDuringExecution;
  if (required !== undefined) {
    const terms: V1NodeSelectorTerm[] = [];
    let termsChanged = false;
    for (const term of required.nodeSelectorTerms ?? []) {
      const exprs = term.matchExpressions ?? [];
      const kept = exprs.filter((e) => !requirementSelectsSpot(labels, e));
      if (kept.length === exprs.length) {
        terms.push(term);
        continue;
      }
      termsChanged = true;
      const t: V1NodeSelectorTerm = { ...term };
      if (kept.length > 0) t.matchExpressions = kept;
      else delete t.matchExpressions;
      if ((t.matchExpressions?.length ?? 0) + (t.matchFields?.length ?? 0) > 0) terms.push(t);
    }
    if (termsChanged) {
      changed = true;
      if (terms.length > 0) {
        next.requiredDuringSchedulingIgnoredDuringExecution = { ...required, nodeSelectorTerms: terms };
      } else {
        delete next.requiredDuringSchedulingIgnoredDuringExecution;
      }
    }
  }

  const preferred = na.preferredDuringSchedulingIgnoredDuringExecution;
  if (preferred !== undefined) {
    const kept = preferred.filter((p) => !(p.preference?.matchExpressions ?? []).some((e) => requirementSelectsSpot(labels, e)));
    if (kept.length !== preferred.length) {
      changed = true;
      if (kept.length > 0) next.preferredDuringSchedulingIgnoredDuringExecution = kept;
      else delete next.preferredDuringSchedulingIgnoredDuringExecution;
    }
  }

  if (!changed) return { value: affinity, changed: false };
  const out: V1Affinity = { ...affinity };
  if (isEmpty(next)) delete out.nodeAffinity;
  else out.nodeAffinity = next;
  return { value: isEmpty(out) ? undefined : out, changed: true };
}

/** Drops tolerations of spot taints; an emptied list becomes absent. */
export function stripTolerations(labels: ComputeLabels, tolerations: V1Toleration[] | undefined): Stripped<V1Toleration[]> {
  if (tolerations === undefined) return { value: undefined, changed: false };
  const kept = tolerations.filter((t) => !toleratesSpot(labels, t));
  if (kept.length === tolerations.length) return { value: tolerations, changed: false };
  return { value: kept.length > 0 ? kept : undefined, changed: true };
}

/**
 * The requirements of a label selector on `key` that `value` would fail, described for a human
 * (empty when the selector accepts key=value). Only requirements on that key are looked at.
 */
export function selectorConflicts(selector: V1LabelSelector | undefined, key: string, value: string): string[] {
  const out: string[] = [];
  const required = selector?.matchLabels?.[key];
  if (required !== undefined && required !== value) out.push(`matchLabels ${key}=${required}`);
  for (const e of selector?.matchExpressions ?? []) {
    if (e.key !== key) continue;
    const values = e.values ?? [];
    const ok = e.operator === 'In' ? values.includes(value) : e.operator === 'NotIn' ? !values.includes(value) : e.operator === 'Exists';
    if (!ok) out.push(`matchExpressions ${key} ${e.operator}${values.length > 0 ? ` [${values.join(', ')}]` : ''}`);
  }
  return out;
}

function isEmpty(o: object): boolean {
  return Object.values(o).every((v) => v === undefined);
}
