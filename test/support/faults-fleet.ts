// The workload every fault scenario puts under an interruption: a pool of spot nodes, opted-in
// Deployments pinned to it, and beside them Deployments that did not opt in (the "sentinels"),
// which must come out of every fault exactly as they went in.
import type { V1Deployment } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import type { InterruptionInjector } from '../../testground/src/injector.js';
import { auditMove, listDeployments, podsByApp, sentinelSnapshot, type AuditOptions, type SentinelSnapshot } from './faults-audit.js';
import { appDeployment, eventually, uniqueName, type TestGround } from './ground.js';

export const OPT_IN_KEY = 'spot-orchestrator/enabled';
export const OPT_IN = { [OPT_IN_KEY]: 'true' };

/** Opt-in values that are not opting in (namespace mode wants a true boolean, read like every boolean setting). */
export const SENTINEL_ANNOTATIONS: Record<string, string>[] = [{}, { [OPT_IN_KEY]: 'false' }, { [OPT_IN_KEY]: 'yes' }];

export interface FleetOptions {
  namespace: string;
  /** Fresh spot nodes for this fleet. */
  nodes: number;
  deployments: number;
  replicas?: (i: number) => number;
  podAnnotations?: Record<string, string>;
  annotations?: (i: number) => Record<string, string>;
  /** Opt-in annotation values of the non-opted-in Deployments put on the same nodes. */
  sentinels?: Record<string, string>[];
  prefix?: string;
  /** Create calls in flight at once. */
  concurrency?: number;
  readyTimeoutMs?: number;
}

export interface Fleet {
  namespace: string;
  pool: string;
  nodes: string[];
  names: string[];
  /** The opted-in Deployments as they were just before the interruption. */
  before: Map<string, V1Deployment>;
  sentinels: SentinelSnapshot[];
}

export function fleetDeployment(
  namespace: string,
  name: string,
  pool: string,
  replicas: number,
  annotations: Record<string, string>,
  podAnnotations: Record<string, string> | undefined,
  i: number,
): V1Deployment {
  // Every third one also tolerates a spot taint next to an unrelated one: the move must drop only the first.
  const tolerations =
    i % 3 === 1
      ? [
          { key: 'compute-type', operator: 'Equal', value: 'spot', effect: 'NoSchedule' },
          { key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' },
        ]
      : undefined;
  return appDeployment({
    namespace,
    name,
    replicas,
    annotations,
    podAnnotations,
    nodeSelector: { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool },
    spec: tolerations ? { tolerations } : undefined,
  });
}

export async function createFleet(t: TestGround, injector: InterruptionInjector, o: FleetOptions): Promise<Fleet> {
  const pool = uniqueName(o.prefix ?? 'fpool');
  const nodes = await injector.addSpotNodes(o.nodes, { name: pool, suffix: '' });
  const limit = pLimit(o.concurrency ?? 10);
  const names = Array.from({ length: o.deployments }, (_, i) => `${o.prefix ?? 'app'}-${pool.slice(-6)}-${i}`);
  const sentinelNames = (o.sentinels ?? SENTINEL_ANNOTATIONS).map((_, i) => `other-${pool.slice(-6)}-${i}`);
  await Promise.all([
    ...names.map((name, i) =>
      limit(() =>
        t.apps.createNamespacedDeployment({
          namespace: o.namespace,
          body: fleetDeployment(o.namespace, name, pool, o.replicas?.(i) ?? 1, { ...OPT_IN, ...o.annotations?.(i) }, o.podAnnotations, i),
        }),
      ),
    ),
    ...(o.sentinels ?? SENTINEL_ANNOTATIONS).map((annotations, i) =>
      limit(() =>
        t.apps.createNamespacedDeployment({
          namespace: o.namespace,
          body: fleetDeployment(o.namespace, sentinelNames[i]!, pool, 1, annotations, undefined, i),
        }),
      ),
    ),
  ]);
  await waitReady(t, o.namespace, [...names, ...sentinelNames], o.readyTimeoutMs ?? 90_000);
  const all = await listDeployments(t, o.namespace);
  return {
    namespace: o.namespace,
    pool,
    nodes,
    names,
    before: new Map(names.map((n) => [n, all.get(n)!])),
    sentinels: sentinelNames.map((n) => sentinelSnapshot(all.get(n)!)),
  };
}

/** Every named Deployment rolled out and fully Ready. */
export async function waitReady(t: TestGround, namespace: string, names: string[], timeoutMs: number): Promise<void> {
  await eventually(
    `${names.length} Deployments Ready in ${namespace}`,
    async () => {
      const all = await listDeployments(t, namespace);
      const waiting = names.filter((n) => {
        const d = all.get(n);
        const want = d?.spec?.replicas ?? 1;
        return !d || d.status?.observedGeneration !== d.metadata?.generation || (d.status?.readyReplicas ?? 0) < want || d.status?.updatedReplicas !== want;
      });
      return waiting.length === 0 ? true : undefined;
    },
    timeoutMs,
    // Listing thousands of Deployments is not free: poll a large fleet less often.
    Math.min(5000, 500 + names.length),
  );
}

/**
 * Waits until every moved Deployment passes the audit (healthy on Fargate, nothing in flight), or
 * the time is up; the caller then runs the audit that counts.
 */
export async function waitMoved(
  t: TestGround,
  fleet: Pick<Fleet, 'namespace' | 'before'>,
  timeoutMs: number,
  o: AuditOptions & { perDeployment?: (name: string) => AuditOptions } = {},
): Promise<{ ms: number; pending: string[] }> {
  const started = Date.now();
  let pending: string[] = [...fleet.before.keys()];
  while (Date.now() - started < timeoutMs) {
    const now = await listDeployments(t, fleet.namespace);
    const pods = await podsByApp(t, fleet.namespace);
    pending = [...fleet.before]
      .filter(([name, before]) => auditMove(before, now.get(name), pods.get(name) ?? [], { ...o, ...o.perDeployment?.(name) }).problems.length > 0)
      .map(([n]) => n);
    if (pending.length === 0) break;
    await new Promise((r) => setTimeout(r, Math.min(2000, 200 + fleet.before.size / 5)));
  }
  return { ms: Date.now() - started, pending };
}

/** How many of the fleet's Deployments carry the move already (state fargate), and how many are in flight. */
export async function progress(t: TestGround, fleet: Pick<Fleet, 'namespace' | 'names'>): Promise<{ patched: number; inFlight: number }> {
  const all = await listDeployments(t, fleet.namespace);
  let patched = 0;
  let inFlight = 0;
  for (const n of fleet.names) {
    const a = all.get(n)?.metadata?.annotations ?? {};
    if (a['spot-orchestrator/state'] === 'fargate') patched++;
    if (a['spot-orchestrator/phase'] !== undefined) inFlight++;
  }
  return { patched, inFlight };
}
