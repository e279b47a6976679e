// Which Deployments the controller may touch. single: the one named Deployment, no annotation
// needed. namespace: every Deployment of the managed namespaces whose opt-in annotation is "true".
// The managed namespaces are listed (kubernetes.namespace, or kubernetes.namespaces), or every
// namespace of the cluster ("*"), optionally only those whose labels match namespace_selector.
import type { V1Deployment } from '@kubernetes/client-node';
import type { Config } from './config.js';
import { type LabelSelector, selectorMatches } from './label-selector.js';
import { isOptedIn } from './overrides.js';

export type NamespaceScope = { kind: 'listed'; namespaces: readonly string[] } | { kind: 'cluster'; selector?: LabelSelector };

type KubernetesScopeSettings = Pick<Config['kubernetes'], 'namespace' | 'namespaces' | 'namespace_selector'>;

export function namespaceScope(kubernetes: KubernetesScopeSettings): NamespaceScope {
  if (kubernetes.namespace_selector) return { kind: 'cluster', selector: kubernetes.namespace_selector };
  if (kubernetes.namespaces === '*') return { kind: 'cluster' };
  return { kind: 'listed', namespaces: kubernetes.namespaces ?? [kubernetes.namespace] };
}

/** For people: "namespace shop", "namespaces a, b", "every namespace", "namespaces matching team=x". */
export function describeScope(scope: NamespaceScope): string {
  if (scope.kind === 'cluster') return scope.selector ? `namespaces matching ${scope.selector.text}` : 'every namespace';
  return scope.namespaces.length === 1 ? `namespace ${scope.namespaces[0]}` : `namespaces ${scope.namespaces.join(', ')}`;
}

/**
 * Whether a namespace is managed. A selector needs the namespace's labels: `labelsOf` gives them
 * (from the Namespace watch, or a list in the CLI), undefined for a namespace that does not exist.
 */
export function namespaceInScope(scope: NamespaceScope, namespace: string, labelsOf: (namespace: string) => Record<string, string> | undefined): boolean {
  if (scope.kind === 'listed') return scope.namespaces.includes(namespace);
  if (!scope.selector) return true;
  const labels = labelsOf(namespace);
  return labels !== undefined && selectorMatches(scope.selector, labels);
}

/** Whether the Deployment is the controller's to move: in a managed namespace, and opted in (or the single one). */
export function isManaged(config: Pick<Config, 'kubernetes'>, d: V1Deployment, inScope: (namespace: string) => boolean): boolean {
  const namespace = d.metadata?.namespace;
  if (namespace === undefined || !inScope(namespace)) return false;
  if (config.kubernetes.mode === 'single') return namespace === config.kubernetes.namespace && d.metadata?.name === config.kubernetes.deployment_name;
  return isOptedIn(config, d.metadata?.annotations);
}

/**
 * What this controller is on node marks shared with other installs (which scheduled changes it has
 * moved for): stable across restarts, and distinct for installs that manage different Deployments.
 */
export function scopeKey(kubernetes: Pick<Config['kubernetes'], 'mode' | 'deployment_name'> & KubernetesScopeSettings): string {
  if (kubernetes.mode === 'single') return `${kubernetes.namespace}/${kubernetes.deployment_name ?? ''}`;
  const scope = namespaceScope(kubernetes);
  if (scope.kind === 'cluster') return scope.selector ? `*[${scope.selector.text}]` : '*';
  return [...scope.namespaces].sort().join(',');
}

/**
 * Where the leader-election Lease lives: as set, else the one managed namespace (config refuses a
 * wider scope without it, so the fallback below is never reached then).
 */
export function leaseNamespace(config: Pick<Config, 'kubernetes' | 'controller'>): string {
  if (config.controller.lease_namespace) return config.controller.lease_namespace;
  const scope = namespaceScope(config.kubernetes);
  return scope.kind === 'listed' && scope.namespaces.length === 1 ? scope.namespaces[0]! : config.kubernetes.namespace;
}
