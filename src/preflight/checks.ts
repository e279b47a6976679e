// The preflight's judgements, pure: what Kubernetes access the controller needs for a configuration,
// whether a set of EKS Fargate profiles puts the moved pods on Fargate in a namespace, and how a
// result reads. preflight.ts gathers the facts (EKS, SQS, SelfSubjectAccessReview) and runs these.
import type { Config } from '../config/config.js';
import { namespaceScope } from '../config/scope.js';

export type CheckStatus = 'ok' | 'failed' | 'skipped';

export interface CheckResult {
  /** What was checked: "fargate profile", "queue", "rbac". */
  check: string;
  /** Where: a namespace, "cluster", the queue URL. */
  subject: string;
  status: CheckStatus;
  /** What was found, or why it failed or was skipped, in words. */
  detail: string;
}

/** One verb on one resource the controller uses, where (namespace; none: cluster-wide) and on what name. */
export interface AccessNeed {
  group: string;
  resource: string;
  verb: string;
  namespace?: string;
  name?: string;
}

const WATCHED: readonly { group: string; resource: string }[] = [
  { group: '', resource: 'pods' },
  { group: '', resource: 'services' },
  { group: 'apps', resource: 'replicasets' },
  { group: 'discovery.k8s.io', resource: 'endpointslices' },
];

/**
 * Every resource verb the controller calls (the chart's RBAC grants exactly these, and
 * test/e2e/shipping.test.ts keeps this list equal to the calls in the code `run` loads), for this
 * configuration: per listed namespace, or cluster-wide for "*" and a selector.
 */
export function requiredAccess(config: Pick<Config, 'kubernetes' | 'controller'>, leaseNamespace: string): AccessNeed[] {
  const k = config.kubernetes;
  const scope = namespaceScope(k);
  const needs: AccessNeed[] = ['get', 'list', 'watch', 'patch'].map((verb) => ({ group: '', resource: 'nodes', verb }));
  const inNamespace = (namespace: string | undefined) => {
    for (const { group, resource } of WATCHED) for (const verb of ['list', 'watch']) needs.push({ group, resource, verb, namespace });
    if (k.mode === 'single') {
      for (const verb of ['list', 'watch']) needs.push({ group: 'apps', resource: 'deployments', verb, namespace });
      for (const verb of ['get', 'patch']) needs.push({ group: 'apps', resource: 'deployments', verb, namespace, name: k.deployment_name });
    } else {
      for (const verb of ['get', 'list', 'watch', 'patch']) needs.push({ group: 'apps', resource: 'deployments', verb, namespace });
    }
    for (const verb of ['create', 'patch']) needs.push({ group: '', resource: 'events', verb, namespace });
  };
  if (scope.kind === 'cluster') {
    inNamespace(undefined);
    if (scope.selector) for (const verb of ['list', 'watch']) needs.push({ group: '', resource: 'namespaces', verb });
  } else {
    for (const namespace of scope.namespaces) inNamespace(namespace);
    const nodeEvents = config.controller.node_events_namespace;
    if (!scope.namespaces.includes(nodeEvents))
      for (const verb of ['create', 'patch']) needs.push({ group: '', resource: 'events', verb, namespace: nodeEvents });
  }
  // The restore-record key (kube/record-key.ts): read by name, created the first time.
  needs.push({ group: '', resource: 'secrets', verb: 'create', namespace: leaseNamespace });
  needs.push({ group: '', resource: 'secrets', verb: 'get', namespace: leaseNamespace, name: config.controller.record_key_secret });
  if (config.controller.leader_elect) {
    needs.push({ group: 'coordination.k8s.io', resource: 'leases', verb: 'create', namespace: leaseNamespace });
    for (const verb of ['get', 'patch'])
      needs.push({ group: 'coordination.k8s.io', resource: 'leases', verb, namespace: leaseNamespace, name: config.controller.lease_name });
  }
  return needs;
}

/** "patch deployments.apps/checkout": a verb on a resource as kubectl auth can-i names it. */
export function describeNeed(n: AccessNeed): string {
  return `${n.verb} ${n.resource}${n.group ? `.${n.group}` : ''}${n.name ? `/${n.name}` : ''}`;
}

/**
 * One result per place (cluster-wide, then each namespace): ok with how many verbs were allowed, or
 * FAILED naming every verb that was not (and the authorizer's reason, when it gave one).
 */
export function judgeAccess(answers: readonly { need: AccessNeed; allowed: boolean; reason?: string }[]): CheckResult[] {
  const byPlace = new Map<string, typeof answers>();
  for (const a of answers) {
    const place = a.need.namespace === undefined ? 'cluster-wide' : `namespace ${a.need.namespace}`;
    byPlace.set(place, [...(byPlace.get(place) ?? []), a]);
  }
  return [...byPlace].map(([subject, list]) => {
    const denied = list.filter((a) => !a.allowed);
    if (denied.length === 0) return { check: 'rbac', subject, status: 'ok', detail: `allowed: ${list.map((a) => describeNeed(a.need)).join(', ')}` };
    const why = denied.map((a) => `${describeNeed(a.need)}${a.reason ? ` (${a.reason})` : ''}`);
    return { check: 'rbac', subject, status: 'failed', detail: `not allowed: ${why.join(', ')}` };
  });
}

/** A Fargate profile as the EKS API describes it (DescribeFargateProfile), reduced to what decides. */
export interface FargateProfileFacts {
  name: string;
  status?: string;
  selectors: { namespace?: string; labels?: Record<string, string> }[];
}

/** EKS's selector namespaces take * and ? wildcards. */
function globMatches(glob: string, value: string): boolean {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`).test(value);
}

/**
 * Whether the cluster's Fargate profiles put a moved pod on Fargate in each namespace. A moved pod
 * carries `compute_label_key: fargate_label` and its own labels; only that one label is known to
 * every moved pod, so a selector counts when its namespace matches and every label it requires is
 * that one (or it requires none). Only an ACTIVE profile schedules pods. A FAILED result names the
 * near misses: a profile of that namespace that wants other labels, or one not yet ACTIVE.
 */
export function judgeFargateProfiles(
  namespaces: readonly string[],
  profiles: readonly FargateProfileFacts[],
  compute: Pick<Config['compute'], 'compute_label_key' | 'fargate_label'>,
  cluster: string,
): CheckResult[] {
  const label = `${compute.compute_label_key}=${compute.fargate_label}`;
  return namespaces.map((namespace) => {
    const subject = `namespace ${namespace}`;
    const misses: string[] = [];
    for (const p of profiles) {
      for (const s of p.selectors) {
        if (s.namespace === undefined || !globMatches(s.namespace, namespace)) continue;
        const labels = Object.entries(s.labels ?? {});
        const fits = labels.every(([k, v]) => k === compute.compute_label_key && v === compute.fargate_label);
        if (!fits) {
          misses.push(`profile ${p.name} selects ${namespace} only with labels ${labels.map(([k, v]) => `${k}=${v}`).join(', ')}`);
        } else if (p.status !== undefined && p.status !== 'ACTIVE') {
          misses.push(`profile ${p.name} would, but is ${p.status}, not ACTIVE`);
        } else {
          const how = labels.length === 0 ? `every pod of ${namespace}, so the moved ones too` : `pods labelled ${label}`;
          return {
            check: 'fargate profile',
            subject,
            status: 'ok',
            detail: `profile ${p.name} (${p.status ?? 'status unknown'}) of cluster ${cluster} selects ${how}`,
          };
        }
      }
    }
    const near = misses.length > 0 ? `; ${misses.join('; ')}` : '';
    return {
      check: 'fargate profile',
      subject,
      status: 'failed',
      detail: `no ACTIVE Fargate profile of cluster ${cluster} selects pods labelled ${label} in ${namespace}: a Deployment moved there would stay Pending and roll back${near}`,
    };
  });
}

/** One line for a person: the status in a fixed-width column, then what and why. */
export function formatResult(r: CheckResult): string {
  const status = r.status === 'ok' ? 'ok' : r.status === 'failed' ? 'FAILED' : 'skipped';
  return `${status.padEnd(8)}${r.check}: ${r.subject}: ${r.detail}`;
}
