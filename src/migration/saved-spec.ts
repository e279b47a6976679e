import type { V1Affinity, V1Deployment, V1DeploymentStrategy, V1Toleration } from '@kubernetes/client-node';
import { MANAGED_ANNOTATIONS } from '../state/annotations.js';
import type { RecordSigner } from './record-signature.js';

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

/** unverified: present but not signed by this controller's key for this Deployment (forged, edited or copied). */
export type SavedSpecResult = { ok: true; saved: SavedSpec } | { ok: false; error: string; unverified?: true };

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
  if (data.version !== 1) return fail(`unsupported version ${JSON.stringify(data.version)}, expected 1`);

  const label = data.label;
  if (!isRecord(label) || typeof label.key !== 'string' || label.key === '') {
    return fail('"label.key" must be a non-empty string');
  }
  if (label.value !== undefined && typeof label.value !== 'string') return fail('"label.value" must be a string');

  const ns = data.nodeSelector;
  if (ns !== undefined && !(isRecord(ns) && Object.values(ns).every((v) => typeof v === 'string'))) {
    return fail('"nodeSelector" must be an object of strings');
  }
  if (data.affinity !== undefined && !isRecord(data.affinity)) return fail('"affinity" must be an object');
  const tol = data.tolerations;
  if (tol !== undefined && !(Array.isArray(tol) && tol.every(isRecord))) {
    return fail('"tolerations" must be an array of objects');
  }
  if (data.strategy !== undefined && !isRecord(data.strategy)) return fail('"strategy" must be an object');

  return { ok: true, saved: data as unknown as SavedSpec };
}

/** The saved-spec, only if its signature verifies for this Deployment; then parsed and checked like any. */
export function readSignedSavedSpec(d: V1Deployment, where: string, signer: RecordSigner): SavedSpecResult {
  const annotations = d.metadata?.annotations ?? {};
  const raw = annotations[MANAGED_ANNOTATIONS.savedSpec];
  if (raw !== undefined && raw !== '') {
    const signature = annotations[MANAGED_ANNOTATIONS.savedSpecSignature];
    const why =
      signature === undefined
        ? `has no ${MANAGED_ANNOTATIONS.savedSpecSignature}`
        : !signer.verify(d, raw, signature)
          ? `does not match its ${MANAGED_ANNOTATIONS.savedSpecSignature} (changed after this controller wrote it, copied from another Deployment, or signed with another key)`
          : undefined;
    if (why !== undefined) {
      return {
        ok: false,
        unverified: true,
        error: `reading annotation ${MANAGED_ANNOTATIONS.savedSpec} of deployment ${where}: the record ${why}; it is not applied`,
      };
    }
  }
  return parseSavedSpec(raw, where, MANAGED_ANNOTATIONS.savedSpec);
}

/** The saved-spec annotation and its signature, as written together. */
export function signedSavedSpecAnnotations(d: V1Deployment, saved: SavedSpec, signer: RecordSigner): Record<string, string> {
  const raw = serializeSavedSpec(saved);
  return { [MANAGED_ANNOTATIONS.savedSpec]: raw, [MANAGED_ANNOTATIONS.savedSpecSignature]: signer.sign(d, raw) };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The template label the Go original flips, and nothing else: compute_label_key and the spot value. */
export interface LegacyRestoreLabel {
  computeLabelKey: string;
  spotLabel: string;
}

/**
 * What a move back to spot restores: the saved-spec this controller wrote, or, for a Deployment on
 * Fargate that has none at all (the Go original moves Deployments by flipping the template label and
 * writes no saved-spec), the original's own convention: the template label goes back to
 * compute_label_key=spot_label and every scheduling field stays as it is, so nothing is invented.
 * An unreadable saved-spec is an error, never a reason to guess.
 */
export type RestoreRecord =
  | { ok: true; saved: SavedSpec; source: 'saved-spec' }
  | { ok: true; saved: SavedSpec; source: 'go-original'; note: string }
  | { ok: false; error: string; unverified?: true };

export function readRestoreRecord(d: V1Deployment, where: string, legacy: LegacyRestoreLabel | undefined, signer: RecordSigner): RestoreRecord {
  const annotations = d.metadata?.annotations ?? {};
  const raw = annotations[MANAGED_ANNOTATIONS.savedSpec];
  if (raw === undefined && legacy !== undefined && annotations[MANAGED_ANNOTATIONS.state] === 'fargate') {
    const podSpec = d.spec?.template?.spec;
    const saved: SavedSpec = { version: 1, label: { key: legacy.computeLabelKey, value: legacy.spotLabel } };
    // The current values, so the restore leaves them exactly as they are.
    if (podSpec?.nodeSelector !== undefined) saved.nodeSelector = plainCopy(podSpec.nodeSelector);
    if (podSpec?.affinity !== undefined) saved.affinity = plainCopy(podSpec.affinity);
    if (podSpec?.tolerations !== undefined) saved.tolerations = plainCopy(podSpec.tolerations);
    if (d.spec?.strategy !== undefined) saved.strategy = plainCopy(d.spec.strategy);
    const note =
      `no ${MANAGED_ANNOTATIONS.savedSpec} (moved by the Go original, which keeps none): restoring by its convention, ` +
      `template label ${legacy.computeLabelKey}=${legacy.spotLabel}, nodeSelector, affinity, tolerations and strategy unchanged`;
    return { ok: true, saved, source: 'go-original', note };
  }
  const parsed = readSignedSavedSpec(d, where, signer);
  return parsed.ok ? { ok: true, saved: parsed.saved, source: 'saved-spec' } : parsed;
}

function plainCopy<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
