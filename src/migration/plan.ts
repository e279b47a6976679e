// Pure planners for moving a Deployment between spot and Fargate. Each one reads a Deployment as the
// API server returned it and answers with RFC 6902 ops that carry the resourceVersion they were
// computed from; applying them is someone else's job. No I/O, no clock: callers pass `now`.

import type { V1Deployment, V1DeploymentStrategy } from '@kubernetes/client-node';

import { MANAGED_ANNOTATIONS, type MigrationReason } from '../state/annotations.js';
import { fargateRefusal } from './fargate-refusal.js';
import { unobservedGeneration } from './rollout.js';
import { jsonEqual, pointer, type JsonPatchOp } from './json-patch.js';
import type { RecordSigner } from './record-signature.js';
import { readRestoreRecord, readSignedSavedSpec, signedSavedSpecAnnotations, type LegacyRestoreLabel, type SavedSpec } from './saved-spec.js';
import { selectorConflicts, stripAffinity, stripNodeSelector, stripTolerations, type ComputeLabels } from './spot-constraints.js';

export { fargateRefusal } from './fargate-refusal.js';
export type { JsonPatchOp } from './json-patch.js';
export type { LegacyRestoreLabel, SavedSpec } from './saved-spec.js';
export type { ComputeLabels } from './spot-constraints.js';

export const SKIP_REASONS = ['allow_fargate_false', 'paused', 'fargate_refuses', 'already_on_fargate', 'selector_pins_spot', 'zero_replicas'] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

export type MigrationPlan = { action: 'patch'; ops: JsonPatchOp[]; removed: SavedSpec } | { action: 'skip'; reason: SkipReason; detail: string };

export interface MigrationInput extends ComputeLabels {
  /** Resolved by the caller from config and the Deployment's allow-fargate annotation. */
  allowFargate: boolean;
  now: Date;
  reason: Extract<MigrationReason, 'spot-interruption' | 'manual'>;
  eventId: string;
  instanceIds: string[];
  /** Signs the saved-spec written, and verifies one kept from an earlier move. */
  signer: RecordSigner;
}

/** `note` says how the patch was planned when people should hear of it (a Go original's Deployment restored by its convention). */
export type PatchResult = { ops: JsonPatchOp[]; note?: string } | { error: string };

export type RestorePurpose = 'recovery' | 'rollback';

export interface RestoreInput {
  purpose: RestorePurpose;
  /** Accepted for symmetry with the other planners; the restore itself stamps no time. */
  now: Date;
  /**
   * Given for recovery: a Deployment on Fargate with no saved-spec at all was moved by the Go
   * original and goes back by its convention (see readRestoreRecord).
   */
  legacy?: LegacyRestoreLabel;
  /** Only a saved-spec whose signature verifies is restored (record-signature.ts). */
  signer: RecordSigner;
}

export type FinishOutcome =
  /** The move to Fargate rolled out: give back the user's strategy; state stays fargate. */
  | { kind: 'migrated' }
  /** The move back to spot rolled out. */
  | { kind: 'recovered'; now: Date; recoveryReason: string }
  /** A failed migration was rolled back to spot. */
  | { kind: 'rolled-back' }
  /**
   * The move back to spot failed: the template goes back to Fargate (phase migrating, so a later
   * planFinish({kind:'migrated'}) gives back the strategy once that rollout is done).
   */
  | ({ kind: 'recovery-failed'; now: Date; recoveryReason: string } & ComputeLabels);

/** Strategy used while pods move: new pods all start in one wave, none of the old go before. */
export const MOVE_STRATEGY: V1DeploymentStrategy = {
  type: 'RollingUpdate',
  rollingUpdate: { maxUnavailable: 0, maxSurge: '100%' },
};

const P = {
  strategy: pointer('spec', 'strategy'),
  nodeSelector: pointer('spec', 'template', 'spec', 'nodeSelector'),
  affinity: pointer('spec', 'template', 'spec', 'affinity'),
  tolerations: pointer('spec', 'template', 'spec', 'tolerations'),
  templateLabel: (key: string) => pointer('spec', 'template', 'metadata', 'labels', key),
  annotation: (key: string) => pointer('metadata', 'annotations', key),
};

/** RFC 3339 in UTC without milliseconds: 2024-05-01T12:00:00Z. */
export function formatTimestamp(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Plans the move of a Deployment's pods to Fargate, or says why not. Skips, in this order:
 * already_on_fargate (template label and state annotation both fargate: a repeated message),
 * allow_fargate_false, paused, zero_replicas, selector_pins_spot, fargate_refuses.
 *
 * The patch tests metadata.resourceVersion (when the object has one), sets the template label,
 * removes spot-pinning nodeSelector entries, node affinity and tolerations (whole fields replaced),
 * sets MOVE_STRATEGY, and writes the managed annotations. The saved-spec of an earlier move that
 * was never undone (state fargate, saved-spec readable) is kept, not overwritten.
 */
export function planMigration(deployment: V1Deployment, input: MigrationInput): MigrationPlan {
  return planToFargate(deployment, input, false);
}

/**
 * Plans writing the Fargate patch again over a template that someone reverted during phase 2 (see
 * revert.ts): planMigration's patch, except that the template label alone does not make it
 * `already_on_fargate` (a server-side apply can put the spot nodeSelector back and leave the label
 * the controller added), only a template with nothing left to change does. The saved-spec of the
 * move stays: it is the user's template from before the move, and the reverted one says the same.
 * migrated-at is stamped anew, so the rollout this patch starts gets its own rollout-timeout, also
 * after a restart.
 */
export function planReapply(deployment: V1Deployment, input: MigrationInput): MigrationPlan {
  if (fargateTemplateOps(deployment, input).length === 0) {
    return skip('already_on_fargate', `the template of deployment ${deploymentName(deployment)} is the Fargate template again`);
  }
  return planToFargate(deployment, input, true);
}

/**
 * Plans the end of a move to Fargate whose template was reverted twice (see revert.ts): the
 * controller stops fighting. The template the reverter wrote is the spot template, so the move ends
 * as rolled back: state spot, reason rollback, no saved-spec, no phase. Of the fields the move
 * wrote, only those still holding what the controller wrote go back to the saved values (the label
 * the controller added, which a server-side apply that does not own it leaves behind; the move's
 * strategy, when the reverter's manifest does not name one); whatever the reverter wrote stays as it
 * wrote it. Without a readable saved-spec only the annotations change.
 */
export function planYieldToRevert(deployment: V1Deployment, labels: ComputeLabels, signer: RecordSigner): PatchResult {
  const where = deploymentName(deployment);
  const A = MANAGED_ANNOTATIONS;
  const ops: JsonPatchOp[] = [...concurrencyTest(deployment)];
  // Only a record this controller signed gives values back; without one only the annotations change.
  const parsed = readSignedSavedSpec(deployment, where, signer);
  if (parsed.ok) {
    const saved = parsed.saved;
    const podSpec = deployment.spec?.template?.spec;
    const current = deployment.spec?.template?.metadata?.labels?.[saved.label.key];
    if (current === labels.fargateLabel) {
      if (saved.label.value !== undefined) ops.push(...templateLabelOps(deployment, saved.label.key, saved.label.value));
      else ops.push({ op: 'remove', path: P.templateLabel(saved.label.key) });
    }
    const giveBack = (path: string, now: unknown, original: unknown, written: unknown): JsonPatchOp[] =>
      jsonEqual(plain(now), plain(written)) ? fieldOps(path, now, original) : [];
    ops.push(...giveBack(P.nodeSelector, podSpec?.nodeSelector, saved.nodeSelector, stripNodeSelector(labels, saved.nodeSelector).value));
    ops.push(...giveBack(P.affinity, podSpec?.affinity, saved.affinity, stripAffinity(labels, saved.affinity).value));
    ops.push(...giveBack(P.tolerations, podSpec?.tolerations, saved.tolerations, stripTolerations(labels, saved.tolerations).value));
    ops.push(...giveBack(P.strategy, deployment.spec?.strategy, saved.strategy, MOVE_STRATEGY));
  }
  ops.push(...annotationOps(deployment, { [A.state]: 'spot', [A.reason]: 'rollback' }, [A.savedSpec, A.savedSpecSignature, A.phase]));
  return { ops };
}

function planToFargate(deployment: V1Deployment, input: MigrationInput, reapply: boolean): MigrationPlan {
  const where = deploymentName(deployment);
  const annotations = deployment.metadata?.annotations ?? {};
  const template = deployment.spec?.template;
  const labels = template?.metadata?.labels ?? {};
  const { computeLabelKey: key, fargateLabel } = input;
  const state = annotations[MANAGED_ANNOTATIONS.state];

  if (!reapply && labels[key] === fargateLabel && state === 'fargate') {
    const phase = annotations[MANAGED_ANNOTATIONS.phase];
    return skip(
      'already_on_fargate',
      `deployment ${where} already has template label ${key}=${fargateLabel} and state fargate${phase !== undefined ? ` (phase ${phase})` : ''}`,
    );
  }
  if (!input.allowFargate) {
    return skip('allow_fargate_false', `Fargate is not allowed for deployment ${where}: its pods on the interrupted nodes will be lost with them`);
  }
  if (deployment.spec?.paused === true) {
    // A paused Deployment starts no rollout: patching it would only wait out the whole window and
    // leave a Fargate template behind that rolls out whenever someone resumes it.
    return skip('paused', `deployment ${where} is paused (spec.paused): no rollout can start, so its pods on the interrupted nodes will be lost with them`);
  }
  if (deployment.spec?.replicas === 0) {
    return skip('zero_replicas', `deployment ${where} is scaled to 0 replicas, no pod to move`);
  }
  const conflicts = selectorConflicts(deployment.spec?.selector, key, fargateLabel);
  if (conflicts.length > 0) {
    return skip(
      'selector_pins_spot',
      `spec.selector of deployment ${where} requires ${conflicts.join(' and ')}; the template label cannot ` +
        `become ${key}=${fargateLabel} (and spec.selector is immutable)`,
    );
  }
  const refusal = fargateRefusal(template?.spec);
  if (refusal !== null) {
    return skip('fargate_refuses', `Fargate would refuse the pods of deployment ${where}: ${refusal}`);
  }

  // A kept record must verify: an unsigned or forged one is replaced by what the template is now.
  const previous = state === 'fargate' ? readSignedSavedSpec(deployment, where, input.signer) : undefined;
  const keepPrevious = previous?.ok === true;
  const removed: SavedSpec = previous?.ok === true ? previous.saved : snapshot(deployment, input);

  const ops: JsonPatchOp[] = [...concurrencyTest(deployment)];
  ops.push(...fargateTemplateOps(deployment, input));
  ops.push(...fieldOps(P.strategy, deployment.spec?.strategy, MOVE_STRATEGY));

  const set: Record<string, string> = {
    [MANAGED_ANNOTATIONS.state]: 'fargate',
    [MANAGED_ANNOTATIONS.migratedAt]: formatTimestamp(input.now),
    [MANAGED_ANNOTATIONS.reason]: input.reason,
    [MANAGED_ANNOTATIONS.phase]: 'migrating',
    [MANAGED_ANNOTATIONS.interruption]: JSON.stringify({ eventId: input.eventId, instanceIds: input.instanceIds }),
    ...(keepPrevious ? {} : signedSavedSpecAnnotations(deployment, removed, input.signer)),
  };
  ops.push(...annotationOps(deployment, set, []));

  return { action: 'patch', ops, removed };
}

/**
 * Plans putting the template back as the saved-spec recorded it (nodeSelector, affinity,
 * tolerations, template label; a field absent originally is removed). The strategy stays
 * MOVE_STRATEGY during the move; planFinish gives the original back. Sets phase recovering or
 * rolling-back. Fails, with no ops at all, when the saved-spec is missing or unreadable, except for
 * a Deployment the Go original moved (input.legacy): its restore record is written as the
 * saved-spec in the same patch, so finishing, rolling back and resuming after a restart read it
 * like any other.
 */
export function planRestoreToSpot(deployment: V1Deployment, input: RestoreInput): PatchResult {
  const where = deploymentName(deployment);
  const record = readRestoreRecord(deployment, where, input.legacy, input.signer);
  if (!record.ok) return { error: `cannot plan ${input.purpose} to spot: ${record.error}` };
  const saved = record.saved;
  const podSpec = deployment.spec?.template?.spec;
  const labels = deployment.spec?.template?.metadata?.labels;

  const ops: JsonPatchOp[] = [...concurrencyTest(deployment)];
  ops.push(...fieldOps(P.nodeSelector, podSpec?.nodeSelector, saved.nodeSelector));
  ops.push(...fieldOps(P.affinity, podSpec?.affinity, saved.affinity));
  ops.push(...fieldOps(P.tolerations, podSpec?.tolerations, saved.tolerations));
  if (saved.label.value !== undefined) {
    ops.push(...templateLabelOps(deployment, saved.label.key, saved.label.value));
  } else if (labels !== undefined && Object.hasOwn(labels, saved.label.key)) {
    ops.push({ op: 'remove', path: P.templateLabel(saved.label.key) });
  }
  ops.push(...fieldOps(P.strategy, deployment.spec?.strategy, MOVE_STRATEGY));
  const set: Record<string, string> = {
    [MANAGED_ANNOTATIONS.phase]: input.purpose === 'recovery' ? 'recovering' : 'rolling-back',
    ...(record.source === 'go-original' ? signedSavedSpecAnnotations(deployment, saved, input.signer) : {}),
  };
  ops.push(...annotationOps(deployment, set, []));
  return record.source === 'go-original' ? { ops, note: record.note } : { ops };
}

/** Plans the small patch that ends a transition; see FinishOutcome. Needs a readable saved-spec. */
export function planFinish(deployment: V1Deployment, outcome: FinishOutcome, signer: RecordSigner): PatchResult {
  const where = deploymentName(deployment);
  const annotations = deployment.metadata?.annotations ?? {};
  const A = MANAGED_ANNOTATIONS;
  const ops: JsonPatchOp[] = [...concurrencyTest(deployment)];

  if (outcome.kind === 'recovery-failed') {
    // The template goes back to Fargate; the saved-spec (still the user's original) stays as it is.
    ops.push(...fargateTemplateOps(deployment, outcome));
    ops.push(...fieldOps(P.strategy, deployment.spec?.strategy, MOVE_STRATEGY));
    const attempts = Number.parseInt(annotations[A.failedRecoveryAttempts] ?? '0', 10);
    ops.push(
      ...annotationOps(
        deployment,
        {
          [A.state]: 'fargate',
          [A.phase]: 'migrating',
          [A.failedRecoveryAttempts]: String((Number.isFinite(attempts) && attempts > 0 ? attempts : 0) + 1),
          [A.recoveryReason]: outcome.recoveryReason,
          [A.lastRecoveredAt]: formatTimestamp(outcome.now),
        },
        [],
      ),
    );
    return { ops };
  }

  const parsed = readSignedSavedSpec(deployment, where, signer);
  if (!parsed.ok) return { error: `cannot finish (${outcome.kind}): ${parsed.error}` };
  ops.push(...fieldOps(P.strategy, deployment.spec?.strategy, parsed.saved.strategy));

  switch (outcome.kind) {
    case 'migrated':
      ops.push(...annotationOps(deployment, {}, [A.phase]));
      break;
    case 'recovered':
      ops.push(
        ...annotationOps(
          deployment,
          {
            [A.state]: 'spot',
            [A.lastRecoveredAt]: formatTimestamp(outcome.now),
            [A.recoveryReason]: outcome.recoveryReason,
            [A.failedRecoveryAttempts]: '0',
          },
          [A.savedSpec, A.savedSpecSignature, A.phase],
        ),
      );
      break;
    case 'rolled-back':
      ops.push(...annotationOps(deployment, { [A.state]: 'spot', [A.reason]: 'rollback' }, [A.savedSpec, A.savedSpecSignature, A.phase]));
      break;
  }
  return { ops };
}

/**
 * Plans giving a Deployment its own strategy back after a move that ended on Fargate without a
 * finish: a migration that never became healthy, with no spot capacity to roll back to, keeps
 * MOVE_STRATEGY so that no pod of the older ReplicaSet is taken down while the new ones cannot start
 * (see MigrationFlow.onMigrationFailed). Once none of those serves any more, maxUnavailable 0 protects
 * nothing, and the move's 100 % surge would double the pods of the Deployment's next rollout, all of
 * them Fargate launches. So the strategy saved at migration comes back, as a successful move's
 * finish would have given it.
 *
 * `readyOlderPods` counts the Ready pods of its older ReplicaSets (the caller's cache knows them); it
 * is asked only once the cheap checks pass, as this runs on every Deployment and pod change. An
 * old ReplicaSet that lost its instance recreates its pods, and they stay Pending with nowhere to
 * run: those serve nothing, and the move's strategy does not wait for them.
 *
 * Skips (with why) a Deployment that is in a move (phase set), not on Fargate, not on MOVE_STRATEGY,
 * whose status does not speak for its generation yet, that still has Ready pods of an older ReplicaSet, or
 * whose saved strategy is MOVE_STRATEGY itself, or that has no saved-spec (moved by the Go original).
 * A saved-spec that does not verify is an error: the strategy is not guessed.
 */
export function planStrategyReturn(deployment: V1Deployment, readyOlderPods: () => number, signer: RecordSigner): PatchResult | { skip: string } {
  const annotations = deployment.metadata?.annotations ?? {};
  const A = MANAGED_ANNOTATIONS;
  const phase = annotations[A.phase];
  if (phase !== undefined) return { skip: `a move is in flight (phase ${phase})` };
  if (annotations[A.state] !== 'fargate') return { skip: 'not on Fargate' };
  if (!jsonEqual(plain(deployment.spec?.strategy), MOVE_STRATEGY)) return { skip: "the strategy is not the move's" };
  const unobserved = unobservedGeneration(deployment);
  if (unobserved !== undefined) return { skip: unobserved };
  const serving = readyOlderPods();
  if (serving > 0) return { skip: `${serving} Ready pod(s) of an older ReplicaSet still serve` };
  // A Deployment the Go original moved has no saved-spec: its strategy is whatever it was given.
  if (annotations[A.savedSpec] === undefined) return { skip: 'no saved spec: not moved by this controller' };
  const parsed = readSignedSavedSpec(deployment, deploymentName(deployment), signer);
  if (!parsed.ok) return { error: `cannot give the strategy back: ${parsed.error}` };
  const ops = fieldOps(P.strategy, deployment.spec?.strategy, parsed.saved.strategy);
  if (ops.length === 0) return { skip: "the saved strategy is the move's" };
  return { ops: [...concurrencyTest(deployment), ...ops] };
}

// ---------------------------------------------------------------------------------------------

function skip(reason: SkipReason, detail: string): MigrationPlan {
  return { action: 'skip', reason, detail };
}

function deploymentName(d: V1Deployment): string {
  return `${d.metadata?.namespace ?? 'default'}/${d.metadata?.name ?? '<unnamed>'}`;
}

/** The optimistic-concurrency guard; an object that never came from the API server has none to test. */
function concurrencyTest(d: V1Deployment): JsonPatchOp[] {
  const rv = d.metadata?.resourceVersion;
  return rv === undefined ? [] : [{ op: 'test', path: pointer('metadata', 'resourceVersion'), value: rv }];
}

/** Plain JSON copy: drops class prototypes and undefined members, so it compares and serializes cleanly. */
function plain<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

function snapshot(d: V1Deployment, compute: ComputeLabels): SavedSpec {
  const podSpec = d.spec?.template?.spec;
  const labels = d.spec?.template?.metadata?.labels;
  const labelKey = compute.computeLabelKey;
  const saved: SavedSpec = { version: 1, label: { key: labelKey } };
  if (labels !== undefined && Object.hasOwn(labels, labelKey)) {
    // A template already labelled for Fargate with no state of ours was half-moved by someone else
    // (the Go original stopped between its template patch and its state annotation): the way back
    // is the spot label, by the original's convention, never the Fargate label recorded as "spot".
    saved.label.value = labels[labelKey] === compute.fargateLabel ? compute.spotLabel : labels[labelKey];
  }
  if (podSpec?.nodeSelector !== undefined) saved.nodeSelector = plain(podSpec.nodeSelector);
  if (podSpec?.affinity !== undefined) saved.affinity = plain(podSpec.affinity);
  if (podSpec?.tolerations !== undefined) saved.tolerations = plain(podSpec.tolerations);
  if (d.spec?.strategy !== undefined) saved.strategy = plain(d.spec.strategy);
  return saved;
}

/** Template label set to Fargate and spot-pinning scheduling constraints removed. */
function fargateTemplateOps(d: V1Deployment, labels: ComputeLabels): JsonPatchOp[] {
  const podSpec = d.spec?.template?.spec;
  const ops: JsonPatchOp[] = [];
  const ns = stripNodeSelector(labels, podSpec?.nodeSelector);
  if (ns.changed) ops.push(...fieldOps(P.nodeSelector, podSpec?.nodeSelector, ns.value));
  const aff = stripAffinity(labels, podSpec?.affinity);
  if (aff.changed) ops.push(...fieldOps(P.affinity, podSpec?.affinity, aff.value));
  const tol = stripTolerations(labels, podSpec?.tolerations);
  if (tol.changed) ops.push(...fieldOps(P.tolerations, podSpec?.tolerations, tol.value));
  ops.push(...templateLabelOps(d, labels.computeLabelKey, labels.fargateLabel));
  return ops;
}

/** Ops that make the field at path hold next (undefined = absent): whole-field add, or remove. */
function fieldOps(path: string, current: unknown, next: unknown): JsonPatchOp[] {
  if (next === undefined) return current === undefined ? [] : [{ op: 'remove', path }];
  if (current !== undefined && jsonEqual(plain(current), next)) return [];
  return [{ op: 'add', path, value: plain(next) }];
}

function templateLabelOps(d: V1Deployment, key: string, value: string): JsonPatchOp[] {
  const metadata = d.spec?.template?.metadata;
  if (metadata === undefined) {
    return [{ op: 'add', path: pointer('spec', 'template', 'metadata'), value: { labels: { [key]: value } } }];
  }
  if (metadata.labels === undefined) {
    return [{ op: 'add', path: pointer('spec', 'template', 'metadata', 'labels'), value: { [key]: value } }];
  }
  if (metadata.labels[key] === value) return [];
  return [{ op: 'add', path: P.templateLabel(key), value }];
}

/** Sets and removes Deployment annotations; a missing annotations map is created whole. */
function annotationOps(d: V1Deployment, set: Record<string, string>, remove: readonly string[]): JsonPatchOp[] {
  const current = d.metadata?.annotations;
  if (current === undefined) {
    return Object.keys(set).length > 0 ? [{ op: 'add', path: pointer('metadata', 'annotations'), value: set }] : [];
  }
  const ops: JsonPatchOp[] = [];
  for (const [key, value] of Object.entries(set)) {
    if (current[key] !== value) ops.push({ op: 'add', path: P.annotation(key), value });
  }
  for (const key of remove) {
    if (Object.hasOwn(current, key)) ops.push({ op: 'remove', path: P.annotation(key) });
  }
  return ops;
}
