import type { V1Affinity, V1DeploymentStrategy, V1Toleration } from '@kubernetes/client-node';

/**
 * What the Fargate patch replaced, kept in the saved-spec annotation so that recovery and rollback
 * restore the Deployment exactly. A property that is missing means the field was absent originally
 * (restore then removes it); JSON.stringify drops undefined members, so this survives the annotation.
 */
export interface SavedSpec {
  version: 1;
  /** spec.template.spec.nodeSelector, whole. */
  nodeSelector?: Record<string, string>;
  /** spec.template.spec.affinity, whole. */
  affinity?: V1Affinity;
  /** spec.template.spec.tolerations, whole. */
  tolerations?: V1Toleration[];
  /** The template label the patch set: its key, and its original value (missing if it had none). */
  label: { key: string; value?: string };
  /** spec.strategy, whole. */
  strategy?: V1DeploymentStrategy;
}

export type SavedSpecResult = { ok: true; saved: SavedSpec } | { ok: false; error: string };

/** JSON for the annotation: plain data only (class instances and undefined members are dropped). */
export function serializeSavedSpec(saved: SavedSpec): string {
  return JSON.stringify(saved);
}

/** Parses and checks the annotation; `where` names the Deployment for the error message. */
export function parseSavedSpec(raw: string | undefined, where: string, annotationKey: string): SavedSpecResult {
  const fail = (why: string): SavedSpecResult => ({
    ok: false,
    error: `reading annotation ${annotationKey} of deployment ${where}: ${why}`,
  });
  if (raw === undefined || raw === '') return fail('annotation is missing, nothing to restore from');
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch (cause) {
    return fail(`not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`);
  }
  if (!isRecord(data)) return fail('not a JSON object');
  if (data['version'] !== 1) return fail(`unsupported version ${JSON.stringify(data['version'])}, expected 1`);

  const label = data['label'];
  if (!isRecord(label) || typeof label['key'] !== 'string' || label['key'] === '') {
    return fail('"label.key" must be a non-empty string');
  }
  if (label['value'] !== undefined && typeof label['value'] !== 'string') return fail('"label.value" must be a string');

  const ns = data['nodeSelector'];
  if (ns !== undefined && !(isRecord(ns) && Object.values(ns).every((v) => typeof v === 'string'))) {
    return fail('"nodeSelector" must be an object of strings');
  }
  if (data['affinity'] !== undefined && !isRecord(data['affinity'])) return fail('"affinity" must be an object');
  const tol = data['tolerations'];
  if (tol !== undefined && !(Array.isArray(tol) && tol.every(isRecord))) {
    return fail('"tolerations" must be an array of objects');
  }
  if (data['strategy'] !== undefined && !isRecord(data['strategy'])) return fail('"strategy" must be an object');

  return { ok: true, saved: data as unknown as SavedSpec };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
