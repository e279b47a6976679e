// The scenario each strategy faces, built fresh for it: a namespace, a pool of spot nodes of its
// own, N opted-in Deployments pinned to that pool (replicas min..max in turn), a Service and a
// PodDisruptionBudget (maxUnavailable 1) in front of a share of them. Then teardown: the namespace,
// the pool, and any Fargate node left for its pods, each waited for (bounded).
import type { V1Deployment } from '@kubernetes/client-node';
import { appDeployment } from '../../test/support/ground.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { type Bench, mapLimit, retrying, shortId, sleep } from './context.js';
import { hasService, podsPerNode, replicasOf } from './options.js';
import { DeploymentTracker } from './trackers.js';

export const OPT_IN = { 'spot-orchestrator/enabled': 'true' };
export const BENCH_LABEL = 'bench.spot-fargate.io/run';
const FARGATE_POD_ANNOTATION = 'testground.spot-fargate.io/pod';

export interface ScenarioSpec {
  /** Short tag used in names: ctl, seq, drain, none, floor, det, scale… */
  tag: string;
  deployments: number;
  nodes: number;
  replicas: (i: number) => number;
  service: (i: number) => boolean;
  /** Deployments created paused (the floor): no ReplicaSet, no pods, no rollout on a patch. */
  paused?: boolean;
  /** Pin each Deployment to one node by hostname (detection: one Deployment per node). */
  pinToNode?: boolean;
  /** Spread the Deployments round-robin over this many namespaces (default 1); one pool serves them all. */
  namespaces?: number;
  /** Pods each spot node holds (default: the ground's 250), or `packed` (see BenchOptions.nodePods). */
  nodePods?: number | 'packed';
  /** Deployments carry the opt-in annotation (default true); a controller watching them acts on none without it. */
  optIn?: boolean;
}

export interface Scenario {
  /** The first namespace; with spec.namespaces > 1, `namespaces` lists it and the others. */
  namespace: string;
  namespaces: string[];
  pool: string;
  nodes: string[];
  names: string[];
  pods: number;
  services: number;
  tracker: DeploymentTracker;
  setupSeconds: number;
}

export const appName = (i: number) => `app-${String(i).padStart(5, '0')}`;

export function mainSpec(b: Bench, tag: string): ScenarioSpec {
  const o = b.options;
  return { tag, deployments: o.n, nodes: o.nodes, replicas: (i) => replicasOf(o, i), service: (i) => hasService(o, i), nodePods: o.nodePods };
}

export function poolSelector(pool: string) {
  return { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool };
}

export async function setUp(b: Bench, spec: ScenarioSpec, section: string): Promise<Scenario> {
  const started = Date.now();
  const id = shortId();
  const namespace = `bench-${spec.tag}-${id}`;
  const pool = `bench-${spec.tag}-${id}`;
  const namespaces = Array.from({ length: spec.namespaces ?? 1 }, (_, k) => (k === 0 ? namespace : `${namespace}-${k}`));
  for (const ns of namespaces) {
    await retrying(() => b.core.createNamespace({ body: { metadata: { name: ns, labels: { [BENCH_LABEL]: spec.tag } } } }));
    b.live.namespaces.add(ns);
  }
  const tracker = new DeploymentTracker(b.kc, namespaces.length === 1 ? namespace : namespaces, (l) => b.say(section, l));
  let nodes: string[] = [];
  try {
    return await populate(b, spec, section, { namespace, namespaces, pool, tracker, started }, (made) => (nodes = made));
  } catch (err) {
    await tearDown(b, { namespace, namespaces, nodes, tracker }, section);
    throw err;
  }
}

async function populate(
  b: Bench,
  spec: ScenarioSpec,
  section: string,
  { namespace, namespaces, pool, tracker, started }: { namespace: string; namespaces: string[]; pool: string; tracker: DeploymentTracker; started: number },
  madeNodes: (nodes: string[]) => void,
): Promise<Scenario> {
  const injector = new InterruptionInjector(b.ground, b);
  let nodes: string[] = [];
  const pods = Array.from({ length: spec.deployments }, (_, i) => spec.replicas(i)).reduce((a, r) => a + r, 0);
  const perNode = podsPerNode(spec.nodePods, pods, spec.nodes);
  if (spec.nodes > 0 && !spec.paused) {
    const names = Array.from({ length: spec.nodes }, (_, i) => `${pool}-${i}`);
    for (const n of names) b.live.nodes.add(n);
    madeNodes(names);
    nodes = await injector.addSpotNodes(spec.nodes, { name: pool, suffix: '', podsPerNode: perNode });
    // addSpotNodes names them <pool>-<i>; keep them in index order.
    nodes.sort((a, c) => Number(a.slice(pool.length + 1)) - Number(c.slice(pool.length + 1)));
  }
  await tracker.start();

  const names = Array.from({ length: spec.deployments }, (_, i) => appName(i));
  let services = 0;
  const bodies: V1Deployment[] = names.map((name, i) => {
    const replicas = spec.replicas(i);
    const d = appDeployment({
      namespace: namespaces[i % namespaces.length]!,
      name,
      replicas,
      annotations: spec.optIn === false ? {} : OPT_IN,
      nodeSelector: spec.pinToNode ? { ...poolSelector(pool), 'kubernetes.io/hostname': nodes[i % nodes.length]! } : poolSelector(pool),
    });
    if (spec.paused) d.spec!.paused = true;
    return d;
  });
  b.say(
    section,
    `setting up ${namespaces.length === 1 ? namespace : `${namespaces.length} namespaces ${namespace}(-k)`}: ${spec.deployments} Deployments, ${spec.paused ? 0 : pods} pods, pool ${pool} of ${nodes.length} spot nodes${perNode ? ` holding ${perNode} pods each` : ''}`,
  );
  let created = 0;
  const progress = setInterval(() => {
    const { settled } = tracker.allSettled(spec.deployments);
    b.say(section, `setup: ${created}/${spec.deployments} created, ${spec.paused ? '-' : settled}/${spec.deployments} ready`);
  }, 5000);
  try {
    await mapLimit(bodies, 16, async (body, i) => {
      const namespace = body.metadata!.namespace!;
      await retrying(() => b.apps.createNamespacedDeployment({ namespace, body }));
      if (spec.service(i)) {
        const name = body.metadata!.name!;
        await retrying(() =>
          b.core.createNamespacedService({
            namespace,
            body: { metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] } },
          }),
        );
        await retrying(() =>
          b.policy.createNamespacedPodDisruptionBudget({
            namespace,
            body: { metadata: { name }, spec: { maxUnavailable: 1, selector: { matchLabels: { app: name } } } },
          }),
        );
        services++;
      }
      created++;
    });
    if (!spec.paused) {
      // Generous and bounded: a 2-core ground places a few dozen pods a second.
      const timeoutMs = 120_000 + pods * 200;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { settled } = tracker.allSettled(spec.deployments);
        if (settled === spec.deployments) break;
        if (Date.now() > deadline) throw new Error(`setup of ${namespace}: only ${settled}/${spec.deployments} Deployments ready after ${timeoutMs / 1000} s`);
        await sleep(500);
      }
    }
  } finally {
    clearInterval(progress);
  }
  const setupSeconds = (Date.now() - started) / 1000;
  b.say(section, `setup done in ${setupSeconds.toFixed(0)} s`);
  return { namespace, namespaces, pool, nodes, names, pods: spec.paused ? 0 : pods, services, tracker, setupSeconds };
}

/**
 * The instances die: their Node objects go (so nothing new binds there), then every pod on them is
 * deleted without grace, 100 deletions in flight at most across all the nodes. InterruptionInjector's
 * terminateNode does the same with every pod's call at once (plus a NotReady patch first), which is
 * fine for a test's handful of pods but floods the API server with the thousands of a benchmark; and
 * one delete-collection call per node is no better, as the API server works through a collection
 * one pod at a time (--delete-collection-workers defaults to 1).
 */
export async function terminateNodes(b: Bench, nodes: string[]): Promise<void> {
  await Promise.all(nodes.map((name) => retrying(() => b.core.deleteNode({ name })).catch(ignoreNotFound)));
  const lists = await Promise.all(nodes.map((node) => retrying(() => b.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` }))));
  // Interleaved, so every node loses its pods at the same pace.
  const pods: { name: string; namespace: string }[] = [];
  for (let i = 0; lists.some((l) => i < l.items.length); i++) {
    for (const l of lists) {
      const p = l.items[i];
      if (p) pods.push({ name: p.metadata!.name!, namespace: p.metadata!.namespace! });
    }
  }
  await mapLimit(pods, 100, (p) => retrying(() => b.core.deleteNamespacedPod({ ...p, gracePeriodSeconds: 0 })).catch(ignoreNotFound));
}

function ignoreNotFound(err: unknown): void {
  if ((err as { code?: number }).code !== 404) throw err;
}

/** Removes everything the scenario made and waits (bounded) until it is gone. */
export async function tearDown(b: Bench, s: Pick<Scenario, 'namespace' | 'nodes' | 'tracker'> & { namespaces?: string[] }, section: string): Promise<void> {
  s.tracker.stop();
  const started = Date.now();
  const namespaces = s.namespaces ?? [s.namespace];
  for (const namespace of namespaces) await emptyNamespace(b, namespace);
  await mapLimit(s.nodes, 10, (name) => retrying(() => b.core.deleteNode({ name })).catch(ignoreNotFound));
  for (const n of s.nodes) b.live.nodes.delete(n);
  await Promise.all(namespaces.map((namespace) => awaitNamespaceGone(b, namespace, section)));
  // The Fargate simulator removes a pod's node when the pod goes; sweep any it missed.
  const fargate = (await retrying(() => b.core.listNode())).items.filter((n) =>
    namespaces.some((ns) => n.metadata?.annotations?.[FARGATE_POD_ANNOTATION]?.startsWith(`${ns}/`)),
  );
  if (fargate.length > 0) await mapLimit(fargate, 10, (n) => retrying(() => b.core.deleteNode({ name: n.metadata!.name! })).catch(ignoreNotFound));
  for (const namespace of namespaces) b.live.namespaces.delete(namespace);
  b.say(section, `teardown done in ${((Date.now() - started) / 1000).toFixed(0)} s${fargate.length ? ` (swept ${fargate.length} Fargate nodes)` : ''}`);
}

/**
 * Empties a namespace, one object per call, 50 calls in flight, then deletes it: the namespace
 * controller would use delete-collection calls, which the API server works through one object at a time.
 */
async function emptyNamespace(b: Bench, namespace: string): Promise<void> {
  const each = async (names: string[], del: (name: string) => Promise<unknown>) =>
    mapLimit(names, 50, (name) => retrying(() => del(name)).catch(ignoreNotFound));
  const deployments = await retrying(() => b.apps.listNamespacedDeployment({ namespace })).catch(() => undefined);
  await each(deployments?.items.map((d) => d.metadata!.name!) ?? [], (name) =>
    b.apps.deleteNamespacedDeployment({ name, namespace, propagationPolicy: 'Orphan' }),
  );
  const replicaSets = await retrying(() => b.apps.listNamespacedReplicaSet({ namespace })).catch(() => undefined);
  await each(replicaSets?.items.map((r) => r.metadata!.name!) ?? [], (name) =>
    b.apps.deleteNamespacedReplicaSet({ name, namespace, propagationPolicy: 'Orphan' }),
  );
  const podList = await retrying(() => b.core.listNamespacedPod({ namespace })).catch(() => undefined);
  await each(podList?.items.map((p) => p.metadata!.name!) ?? [], (name) => b.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }));
  await retrying(() => b.core.deleteNamespace({ name: namespace })).catch(ignoreNotFound);
}

/**
 * Waited for until its pods are gone; what the namespace controller still has to delete after that
 * (Events, endpoint slices) is light, and is left to it after 30 s more.
 */
async function awaitNamespaceGone(b: Bench, namespace: string, section: string): Promise<void> {
  const deadline = Date.now() + 15 * 60_000;
  let last = 0;
  let emptySince: number | undefined;
  for (;;) {
    const ns = await b.core.readNamespace({ name: namespace }).catch(() => undefined);
    if (!ns) break;
    if (Date.now() > deadline) {
      b.say(section, `namespace ${namespace} still terminating after 15 min; moving on`);
      break;
    }
    const left = await b.core.listNamespacedPod({ namespace, limit: 1 }).catch(() => undefined);
    const remaining = left ? (left.metadata?.remainingItemCount ?? 0) + left.items.length : undefined;
    if (remaining === 0) {
      emptySince ??= Date.now();
      if (Date.now() - emptySince > 30_000) {
        b.say(section, `namespace ${namespace} has no pods left; leaving the rest of its deletion to the namespace controller`);
        break;
      }
    }
    if (Date.now() - last > 10_000) {
      last = Date.now();
      b.say(section, `teardown: namespace ${namespace} terminating, ${remaining ?? '?'} pods left`);
    }
    await sleep(1000);
  }
}
