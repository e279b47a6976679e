// Whether a node could take the pods of a Deployment once its spot constraints are restored: the
// nodeSelector, the required node affinity and the tolerations saved at migration are checked the way
// the scheduler's NodeAffinity and TaintToleration filters check them. Resources and pod (anti-)
// affinity are not: a recovery with too little room simply does not complete and is rolled back.
import type { V1Node, V1NodeSelectorRequirement, V1NodeSelectorTerm, V1Toleration, V1Taint } from '@kubernetes/client-node';
import type { SavedSpec } from '../migration/saved-spec.js';

export type PlacementConstraints = Pick<SavedSpec, 'nodeSelector' | 'affinity' | 'tolerations'>;

/** Why the node does not fit, or undefined when it does. */
export function misfit(node: V1Node, c: PlacementConstraints): string | undefined {
  const labels = node.metadata?.labels ?? {};
  for (const [key, value] of Object.entries(c.nodeSelector ?? {})) {
    if (labels[key] !== value) return `nodeSelector ${key}=${value} not matched`;
  }
  const required = c.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required && !(required.nodeSelectorTerms ?? []).some((term) => termMatches(term, node))) {
    return 'required node affinity not matched';
  }
  for (const taint of node.spec?.taints ?? []) {
    if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
    if (!(c.tolerations ?? []).some((t) => tolerates(t, taint)))
      return `taint ${taint.key}${taint.value ? `=${taint.value}` : ''}:${taint.effect} not tolerated`;
  }
  return undefined;
}

export function fits(node: V1Node, c: PlacementConstraints): boolean {
  return misfit(node, c) === undefined;
}

/** A term matches when all its requirements do; an empty term matches no node (as in Kubernetes). */
function termMatches(term: V1NodeSelectorTerm, node: V1Node): boolean {
  const expressions = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (expressions.length === 0 && fields.length === 0) return false;
  const labels = node.metadata?.labels ?? {};
  return (
    expressions.every((r) => requirementMatches(r, labels)) &&
    fields.every((r) => r.key === 'metadata.name' && requirementMatches(r, { 'metadata.name': node.metadata?.name ?? '' }))
  );
}

function requirementMatches(r: V1NodeSelectorRequirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const value = labels[r.key];
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return has && values.includes(value!);
    case 'NotIn':
      return !has || !values.includes(value!);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    case 'Gt':
    case 'Lt': {
      if (!has || values.length !== 1) return false;
      const actual = Number.parseInt(value!, 10);
      const bound = Number.parseInt(values[0]!, 10);
      if (!Number.isFinite(actual) || !Number.isFinite(bound)) return false;
      return r.operator === 'Gt' ? actual > bound : actual < bound;
    }
    default:
      return false;
  }
}

/** Kubernetes' Toleration.ToleratesTaint. */
function tolerates(t: V1Toleration, taint: V1Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key && t.key !== taint.key) return false;
  if (t.operator === 'Exists') return true;
  // Equal (the default): an empty key only goes with Exists.
  return !!t.key && (t.value ?? '') === (taint.value ?? '');
}
