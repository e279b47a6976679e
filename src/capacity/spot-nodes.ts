// Judging spot capacity from the Node cache and what the controller wrote on Nodes, so the verdict
// survives a restart: a node under an interruption warning, a scheduled change or a rebalance
// recommendation is at risk.
import type { V1Node } from '@kubernetes/client-node';
import type { Config } from '../config/config.js';
import { NODE_ANNOTATIONS } from '../state/annotations.js';
import { isNodeReady } from '../kube/cluster-view.js';

/**
 * The labels that say a node is spot capacity, any one of them enough: the project's own
 * (compute.compute_label_key = compute.spot_label), EKS managed node groups', and Karpenter's.
 */
export function spotCapacityLabels(compute: Config['compute']): [key: string, value: string][] {
  return [
    [compute.compute_label_key, compute.spot_label],
    ['eks.amazonaws.com/capacityType', 'SPOT'],
    ['karpenter.sh/capacity-type', 'spot'],
  ];
}

export function isSpotNode(node: V1Node, compute: Config['compute']): boolean {
  const labels = node.metadata?.labels ?? {};
  return spotCapacityLabels(compute).some(([key, value]) => labels[key] === value);
}

export function atRiskReason(node: V1Node): string | undefined {
  const a = node.metadata?.annotations ?? {};
  if (a[NODE_ANNOTATIONS.interruptedAt]) return `interruption warning at ${a[NODE_ANNOTATIONS.interruptedAt]}`;
  if (a[NODE_ANNOTATIONS.scheduledChangeAt]) return `AWS Health scheduled change at ${a[NODE_ANNOTATIONS.scheduledChangeAt]}`;
  if (a[NODE_ANNOTATIONS.rebalanceRecommendedAt]) return `rebalance recommendation at ${a[NODE_ANNOTATIONS.rebalanceRecommendedAt]}`;
  return undefined;
}

/** Spot nodes a Deployment could run on now: Ready, schedulable, not cordoned, not at risk. */
export function healthySpotNodes(nodes: readonly V1Node[], compute: Config['compute']): V1Node[] {
  return nodes.filter((n) => isSpotNode(n, compute) && isNodeReady(n) && !n.spec?.unschedulable && !atRiskReason(n));
}
