// What "nothing lost, nothing half-patched, nothing else touched" means, checked against the cluster
// with no help from the controller's own code: the expected template is computed here from the
// Deployment as it was before the interruption.
import type { V1Deployment, V1Pod } from '@kubernetes/client-node';
import { USER_AGENT } from '../../src/kube/api.js';
import type { ScenarioLedger } from './faults-ledger.js';
import { isPodReady, type TestGround } from './ground.js';

export const FARGATE_NODE_PREFIX = 'fargate-ip-';
const COMPUTE_KEY = 'compute-type';
/** Node selector entries and toleration keys that pin to spot (README: what the patch removes). */
const SPOT_SELECTOR: Record<string, string> = { 'compute-type': 'spot', 'eks.amazonaws.com/capacityType': 'SPOT', 'karpenter.sh/capacity-type': 'spot' };
const SPOT_TOLERATION_KEYS = new Set(['spot', ...Object.keys(SPOT_SELECTOR)]);
const A = {
  state: 'spot-orchestrator/state',
  phase: 'spot-orchestrator/phase',
  savedSpec: 'spot-orchestrator/saved-spec',
  reason: 'spot-orchestrator/reason',
};

/** Plain JSON: client-node returns class instances and Dates; compare data, not prototypes. */
export function plain<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(plain(a))) === JSON.stringify(sortKeys(plain(b)));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** The pod template the move must produce: the fargate label added, spot pins removed, nothing else. */
export function expectedFargateTemplate(before: V1Deployment): NonNullable<V1Deployment['spec']>['template'] {
  const template = plain(before.spec!.template);
  template.metadata ??= {};
  template.metadata.labels = { ...template.metadata.labels, [COMPUTE_KEY]: 'fargate' };
  const spec = template.spec!;
  if (spec.nodeSelector) {
    for (const [k, v] of Object.entries(SPOT_SELECTOR)) if (spec.nodeSelector[k]?.toLowerCase() === v.toLowerCase()) delete spec.nodeSelector[k];
    if (Object.keys(spec.nodeSelector).length === 0) delete spec.nodeSelector;
  }
  if (spec.tolerations) {
    spec.tolerations = spec.tolerations.filter((t) => t.key === undefined || !SPOT_TOLERATION_KEYS.has(t.key));
    if (spec.tolerations.length === 0) delete spec.tolerations;
  }
  return template;
}

export interface Audit {
  name: string;
  /** Not healthy on Fargate at the end (or gone). */
  lost: boolean;
  /** A partial or repeated patch, a move left marked in flight, a strategy not given back. */
  halfPatched: boolean;
  /** Rolled back cleanly to its old template (accepted only where the scenario allows it). */
  rolledBack: boolean;
  problems: string[];
}

export interface AuditOptions {
  /** A clean rollback to the spot template counts as handled (rollouts "completed or rolled back"). */
  allowRollback?: boolean;
  /** Metadata another writer put on the Deployment meanwhile; it must still be there. */
  writerLabels?: Record<string, string>;
  writerAnnotations?: Record<string, string>;
  /** Spec changes allowed on top of the move (a writer that scaled it, say): none by default. */
  expectedGenerationBump?: number;
}

/** Judges one opted-in Deployment that had pods on the interrupted nodes. */
export function auditMove(before: V1Deployment, after: V1Deployment | undefined, pods: V1Pod[], o: AuditOptions = {}): Audit {
  const name = before.metadata!.name!;
  const problems: string[] = [];
  const audit: Audit = { name, lost: false, halfPatched: false, rolledBack: false, problems };
  if (!after) {
    audit.lost = true;
    problems.push('the Deployment is gone');
    return audit;
  }
  const a = after.metadata?.annotations ?? {};
  const replicas = after.spec?.replicas ?? 1;
  const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
  const half = (why: string) => {
    audit.halfPatched = true;
    problems.push(why);
  };
  if (a[A.phase] !== undefined) half(`still marked in flight (phase ${a[A.phase]})`);
  for (const [k, v] of Object.entries(o.writerLabels ?? {}))
    if (after.metadata?.labels?.[k] !== v) half(`the other writer's label ${k}=${v} was lost (now ${after.metadata?.labels?.[k]})`);
  for (const [k, v] of Object.entries(o.writerAnnotations ?? {})) if (a[k] !== v) half(`the other writer's annotation ${k}=${v} was lost (now ${a[k]})`);
  if (!same(after.spec?.strategy, before.spec?.strategy)) half(`strategy not given back: ${JSON.stringify(plain(after.spec?.strategy))}`);

  const rolledBack = o.allowRollback === true && a[A.state] === 'spot' && a[A.reason] === 'rollback';
  if (rolledBack) {
    audit.rolledBack = true;
    if (!same(after.spec?.template, before.spec?.template)) half('rolled back, but not to the template it had');
    const ready = live.filter(isPodReady);
    if (ready.length < replicas) {
      audit.lost = true;
      problems.push(`rolled back, ${ready.length}/${replicas} pods Ready`);
    }
    return audit;
  }

  if (a[A.state] !== 'fargate') {
    audit.lost = true;
    problems.push(`state ${a[A.state] ?? '(none)'}, not fargate`);
  }
  if (!same(after.spec?.template, expectedFargateTemplate(before))) {
    half(`template is not the old one moved to Fargate: ${JSON.stringify(plain(after.spec?.template)).slice(0, 400)}`);
  }
  const saved = a[A.savedSpec];
  try {
    if (!saved) throw new Error('missing');
    JSON.parse(saved);
  } catch {
    half(`saved-spec annotation ${saved === undefined ? 'missing' : 'unreadable'}`);
  }
  const expectedGeneration = (before.metadata?.generation ?? 1) + 2 + (o.expectedGenerationBump ?? 0);
  if (after.metadata?.generation !== expectedGeneration) {
    half(`generation ${after.metadata?.generation}, expected ${expectedGeneration} (one move patch, one strategy restore)`);
  }
  const onFargate = live.filter((p) => isPodReady(p) && p.spec?.nodeName?.startsWith(FARGATE_NODE_PREFIX));
  if (onFargate.length !== replicas || live.length !== replicas) {
    audit.lost = true;
    problems.push(
      `${onFargate.length}/${replicas} pods Ready on Fargate (${live.length} pods: ${live.map((p) => `${p.spec?.nodeName ?? 'unbound'}${isPodReady(p) ? '' : ' not ready'}`).join(', ')})`,
    );
  }
  return audit;
}

/** The parts of a Deployment only a writer (never the deployment controller) changes. */
export interface SentinelSnapshot {
  namespace: string;
  name: string;
  resourceVersion: string;
  generation: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: unknown;
}

export function sentinelSnapshot(d: V1Deployment): SentinelSnapshot {
  return {
    namespace: d.metadata!.namespace!,
    name: d.metadata!.name!,
    resourceVersion: d.metadata!.resourceVersion!,
    generation: d.metadata?.generation ?? 0,
    labels: plain(d.metadata?.labels ?? {}),
    annotations: plain(d.metadata?.annotations ?? {}),
    spec: plain(d.spec),
  };
}

/**
 * Differences on a Deployment the controller must never touch, and any write the API server
 * attributes to the controller (a managedFields entry under its User-Agent): that one holds whoever
 * else wrote, so it is checked everywhere, status writes included. The resourceVersion is compared
 * only when nothing else could have written it (the nodes under it were not terminated, so the
 * deployment controller had no status to update).
 */
export function sentinelChanges(
  before: SentinelSnapshot,
  after: V1Deployment | undefined,
  { compareResourceVersion }: { compareResourceVersion: boolean },
): string[] {
  if (!after) return ['deleted'];
  const now = sentinelSnapshot(after);
  const changes: string[] = [];
  if (now.generation !== before.generation) changes.push(`generation ${before.generation} -> ${now.generation}`);
  if (!same(now.spec, before.spec)) changes.push('spec changed');
  if (!same(now.labels, before.labels)) changes.push(`labels ${JSON.stringify(before.labels)} -> ${JSON.stringify(now.labels)}`);
  if (!same(now.annotations, before.annotations)) changes.push(`annotations ${JSON.stringify(before.annotations)} -> ${JSON.stringify(now.annotations)}`);
  for (const entry of after.metadata?.managedFields ?? []) {
    if (entry.manager === USER_AGENT)
      changes.push(`written by the controller (${entry.operation}${entry.subresource ? ` of ${entry.subresource}` : ''} at ${String(entry.time)})`);
  }
  if (compareResourceVersion && now.resourceVersion !== before.resourceVersion)
    changes.push(`resourceVersion ${before.resourceVersion} -> ${now.resourceVersion}`);
  return changes;
}

/** Every Deployment of a namespace, paged (the load scenario has thousands). */
export async function listDeployments(t: TestGround, namespace: string): Promise<Map<string, V1Deployment>> {
  const out = new Map<string, V1Deployment>();
  let _continue: string | undefined;
  do {
    const page = await t.apps.listNamespacedDeployment({ namespace, limit: 1000, _continue });
    for (const d of page.items) out.set(d.metadata!.name!, d);
    _continue = page.metadata?._continue;
  } while (_continue);
  return out;
}

/** Pods of a namespace grouped by their app label, paged. */
export async function podsByApp(t: TestGround, namespace: string): Promise<Map<string, V1Pod[]>> {
  const out = new Map<string, V1Pod[]>();
  let _continue: string | undefined;
  do {
    const page = await t.core.listNamespacedPod({ namespace, limit: 2000, _continue });
    for (const p of page.items) {
      const app = p.metadata?.labels?.app;
      if (!app) continue;
      const list = out.get(app) ?? [];
      list.push(p);
      out.set(app, list);
    }
    _continue = page.metadata?._continue;
  } while (_continue);
  return out;
}

/**
 * Audits every moved Deployment and every sentinel of a namespace, adds the figures to the ledger,
 * and returns the problems (an empty list is a pass).
 */
export async function auditNamespace(
  t: TestGround,
  ledger: ScenarioLedger,
  namespace: string,
  moved: Map<string, V1Deployment>,
  sentinels: SentinelSnapshot[],
  o: AuditOptions & { compareResourceVersion?: boolean; perDeployment?: (name: string) => AuditOptions } = {},
): Promise<{ problems: string[]; audits: Audit[] }> {
  const now = await listDeployments(t, namespace);
  const pods = await podsByApp(t, namespace);
  const problems: string[] = [];
  const audits: Audit[] = [];
  for (const [name, before] of moved) {
    const audit = auditMove(before, now.get(name), pods.get(name) ?? [], { ...o, ...o.perDeployment?.(name) });
    audits.push(audit);
    ledger.add('deployments');
    if (audit.lost) ledger.add('lost');
    if (audit.halfPatched) ledger.add('halfPatched');
    if (audit.problems.length > 0) {
      const line = `${namespace}/${name}: ${audit.problems.join('; ')}`;
      problems.push(line);
      ledger.problem(line);
    }
  }
  for (const s of sentinels) {
    const after =
      s.namespace === namespace ? now.get(s.name) : await t.apps.readNamespacedDeployment({ name: s.name, namespace: s.namespace }).catch(() => undefined);
    const changes = sentinelChanges(s, after, { compareResourceVersion: o.compareResourceVersion ?? false });
    ledger.add('sentinels');
    if (changes.length > 0) {
      ledger.add('touched');
      const line = `not opted in, yet changed: ${s.namespace}/${s.name}: ${changes.join('; ')}`;
      problems.push(line);
      ledger.problem(line);
    }
  }
  return { problems, audits };
}
