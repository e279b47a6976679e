// Pure judgements about a pod template that someone else put back while a move to Fargate was in
// flight: a GitOps tool (Argo CD self-heal, Flux's drift correction), a `helm upgrade` of the
// application or a `kubectl rollout undo` re-applies the spot template it knows, and the pods head
// back to the nodes that are about to die. No I/O: the flow decides from these and writes.

import type { V1Deployment } from '@kubernetes/client-node';
import { stripAffinity, stripNodeSelector, stripTolerations, type ComputeLabels } from './spot-constraints.js';

/** Where the guide to configuring GitOps tools lives; every alert about a revert points to it. */
export const GITOPS_GUIDE = 'docs/gitops.md';

/** What the controller does about a revert seen during phase 2. */
export type RevertResponse =
  /** The first revert of this move: write the Fargate patch again, once. */
  | 'reapply'
  /** It came back after the re-apply: something re-applies the spot template on purpose and will again. Stop the move. */
  | 'stop';

/**
 * How the template differs from the Fargate template the move wrote, as short phrases for people;
 * empty when it still is the Fargate template. The Fargate template carries the Fargate label and
 * nothing that pins it to spot: a revert shows as the label gone or changed (a client-side apply or
 * helm's three-way merge of a manifest that names the label), or as a spot nodeSelector, affinity or
 * toleration back (a server-side apply that owns those fields but not the label the controller added).
 */
export function fargateTemplateDrift(d: V1Deployment, labels: ComputeLabels): string[] {
  const template = d.spec?.template;
  const podSpec = template?.spec;
  const key = labels.computeLabelKey;
  const value = template?.metadata?.labels?.[key];
  const drift: string[] = [];
  if (value !== labels.fargateLabel) drift.push(value === undefined ? `template label ${key} removed` : `template label ${key}=${value}`);
  if (stripNodeSelector(labels, podSpec?.nodeSelector).changed) drift.push('nodeSelector selects spot');
  if (stripAffinity(labels, podSpec?.affinity).changed) drift.push('node affinity selects spot');
  if (stripTolerations(labels, podSpec?.tolerations).changed) drift.push('tolerations of spot taints');
  return drift;
}

/**
 * One re-apply per move, then no fight. A single revert is often a one-off (a `helm upgrade` or a
 * manual `kubectl apply` that happened to land in the window), and the re-apply saves the pods. A
 * second one means a reconciler that will revert every patch within seconds: fighting it would
 * restart the rollout on every round and finish nowhere, so the move stops and people are told how
 * to configure the tool.
 */
export function revertResponse(revertsSoFar: number): RevertResponse {
  return revertsSoFar === 0 ? 'reapply' : 'stop';
}

/** The fix, in one sentence, for the Event, the log and the alert. */
export function revertFix(): string {
  return (
    'a GitOps tool or a `helm upgrade` of the application re-applied the spot template: tell it to leave the fields the ' +
    'controller writes alone (Argo CD: ignoreDifferences with RespectIgnoreDifferences=true; Flux: Kustomization spec.ignore), ' +
    `see ${GITOPS_GUIDE}`
  );
}
