// Scaling series: phase 1 time and the controller's peak memory for N Deployments of
// BENCH_SCALING_REPLICAS replicas each (default 1), once per set of node flags (BENCH_NODE_FLAGS). The pool has max(--nodes, ceil(N / 200)) spot nodes (KWOK nodes take 250 pods) and half of
// it is warned, so about N/2 Deployments are patched. The nodes are not killed at the deadline (the
// figures are the patching and the observation, not the aftermath); the controller runs until the
// deadline plus the tail, so its peak memory covers phase 2 as well, and on until every affected
// Deployment is patched (10 min at most), so that phase 1 is measured however long it takes.
import { InterruptionInjector, WARNING_WINDOW_MS } from '../../testground/src/injector.js';
import { collectGarbage, inspectorFlag } from './collect.js';
import { type Bench, retrying, sleep } from './context.js';
import { readMetricsText, startController } from './controller-process.js';
import type { NodeFlagSet } from './options.js';
import { awaitQuietMachine, type Quiet } from './quiet.js';
import { setUp, tearDown } from './scenario.js';
import { freePort } from '../../testground/src/net.js';
import { round } from './stats.js';

/** The controller's own memory figures (its /metrics: process.memoryUsage() and V8's heap spaces), MiB. */
export interface MemorySample {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  /** Committed size of V8's young generation (both semi-spaces) and of its old space. */
  newSpace: number;
  oldSpace: number;
}

export interface ScalingPoint {
  n: number;
  replicas: number;
  /** The Deployments were spread over this many namespaces (absent in results from before: 1). */
  namespaces?: number;
  /** The node flags the controller ran with; image: the Dockerfile's. */
  nodeFlags: string[];
  nodeFlagsFromImage: boolean;
  nodes: number;
  doomedNodes: number;
  affected: number;
  patched: number;
  /** Warning -> last patch seen, seconds (null when not every affected Deployment was patched). */
  phase1Seconds: number | null;
  /** The controller's own phase1Seconds, the largest over the messages it handled. */
  phase1LoggedMax: number | null;
  peakRssMiB: number;
  /** VmHWM just before the warning: the start-up's high-water mark (the initial lists); absent in results from before. */
  peakRssBeforeWarningMiB?: number;
  /** Before the warning (after the initial lists), and at the sample with the highest RSS (every second). */
  memoryBefore: MemorySample | null;
  memoryAtPeak: MemorySample | null;
  /** The largest heapTotal sampled. */
  heapTotalMax: number | null;
  cpuSeconds: number;
  setupSeconds: number;
  /** With BENCH_COLLECT_AT: memory around two full collections forced at that moment (collect.ts). */
  collection?: Collection;
  /** How the machine was when the warning went out (see quiet.ts); absent in results from before. */
  quiet?: Quiet;
}

/** Memory just before two forced full collections and one second after them. */
export interface Collection {
  /** Seconds after the warning. */
  atSeconds: number;
  /** VmRSS, MiB. */
  rssBefore: number;
  rssAfter: number;
  /** The controller's /metrics at those two moments. */
  before: MemorySample | null;
  after: MemorySample | null;
}

const MEMORY_METRICS: Record<string, (m: MemorySample, v: number) => void> = {
  process_resident_memory_bytes: (m, v) => (m.rss = v),
  nodejs_heap_size_total_bytes: (m, v) => (m.heapTotal = v),
  nodejs_heap_size_used_bytes: (m, v) => (m.heapUsed = v),
  nodejs_external_memory_bytes: (m, v) => (m.external = v),
  'nodejs_heap_space_size_total_bytes{space="new"}': (m, v) => (m.newSpace = v),
  'nodejs_heap_space_size_total_bytes{space="old"}': (m, v) => (m.oldSpace = v),
};

/** One reading of the controller's /metrics; null when it does not answer. */
export async function sampleMemory(metricsPort: number): Promise<MemorySample | null> {
  const text = await readMetricsText(metricsPort);
  if (text === null) return null;
  const m: MemorySample = { rss: NaN, heapTotal: NaN, heapUsed: NaN, external: NaN, newSpace: NaN, oldSpace: NaN };
  for (const line of text.split('\n')) {
    const space = line.lastIndexOf(' ');
    const name = line.slice(0, space).replace(/^spot_orchestrator_/, '');
    MEMORY_METRICS[name]?.(m, round(Number(line.slice(space + 1)) / 1048576, 1));
  }
  return Number.isNaN(m.rss) ? null : m;
}

export async function runScalingPoint(b: Bench, n: number, entry: string | undefined, nodeFlags: NodeFlagSet, namespaces = 1): Promise<ScalingPoint> {
  const section = namespaces === 1 ? `scale-${n}` : `scale-${n}-ns${namespaces}`;
  const replicas = b.options.scalingReplicas;
  const nodes = Math.max(b.options.nodes, Math.ceil((n * replicas) / 200));
  const scenario = await setUp(b, { tag: `scale${n}`, deployments: n, nodes, replicas: () => replicas, service: () => false, namespaces }, section);
  let controller: Awaited<ReturnType<typeof startController>> | undefined;
  let sampling = true;
  try {
    // Several namespaces: the controller watches every one ("*"), one watch per kind, as a platform team runs it.
    const collectAt = b.options.collectAtSeconds;
    const inspectorPort = collectAt === null ? undefined : await freePort();
    const flags = inspectorPort === undefined ? nodeFlags.flags : [...nodeFlags.flags, inspectorFlag(inspectorPort)];
    controller = await startController(b, namespaces === 1 ? scenario.namespace : '*', section, entry, {}, flags);
    b.say(section, `node flags: ${flags.join(' ') || '(none)'}${nodeFlags.image ? " (the image's)" : ''}`);
    const doomed = scenario.nodes.slice(0, Math.floor(nodes / 2));
    const doomedSet = new Set(doomed);
    const pods = {
      items: (await Promise.all(scenario.namespaces.map((namespace) => retrying(() => b.core.listNamespacedPod({ namespace }))))).flatMap((l) => l.items),
    };
    const affected = [...new Set(pods.items.filter((p) => doomedSet.has(p.spec?.nodeName ?? '')).map((p) => p.metadata!.labels!.app!))];
    const quiet = await awaitQuietMachine((l) => b.say(section, l));
    const memoryBefore = await sampleMemory(controller.metricsPort);
    const peakRssBeforeWarningMiB = round(controller.sample().peakRssMiB, 1);
    let memoryAtPeak: MemorySample | null = null;
    let heapTotalMax: number | null = null;
    const port = controller.metricsPort;
    const memorySampler = (async () => {
      while (sampling) {
        const m = await sampleMemory(port);
        if (m && (memoryAtPeak === null || m.rss > memoryAtPeak.rss)) memoryAtPeak = m;
        if (m) heapTotalMax = Math.max(heapTotalMax ?? 0, m.heapTotal);
        await sleep(1000);
      }
    })();
    const cpuBefore = controller.sample().cpuSeconds;
    const warnedAt = Date.now();
    await new InterruptionInjector(b.ground, b).interrupt(doomed, { terminate: false });
    // At least the window plus the tail (phase 2 in the peak memory); longer if phase 1 is not done, up to 10 min.
    const minEnd = warnedAt + b.scaled(WARNING_WINDOW_MS) + b.scaled(b.options.tailSeconds * 1000);
    const maxEnd = Math.max(minEnd, warnedAt + 600_000);
    const allPatched = () => affected.every((a) => scenario.tracker.states.get(a)?.patchedAt !== undefined);
    b.say(section, `warning sent for ${doomed.length} of ${nodes} nodes, ${affected.length} Deployments affected`);
    let collection: Collection | undefined;
    while (Date.now() < minEnd || (!allPatched() && Date.now() < maxEnd)) {
      const collectAtMs = collectAt === null || collection !== undefined ? Infinity : warnedAt + collectAt * 1000;
      await sleep(Math.min(5000, Math.max(100, Math.min(collectAtMs, allPatched() ? minEnd : maxEnd) - Date.now())));
      if (inspectorPort !== undefined && collectAt !== null && Date.now() >= collectAtMs) {
        const running = controller;
        const before = await sampleMemory(port);
        const rssBefore = running.sample().rssMiB;
        await collectGarbage(inspectorPort);
        await sleep(1000);
        collection = {
          atSeconds: collectAt,
          rssBefore: round(rssBefore, 1),
          rssAfter: round(running.sample().rssMiB, 1),
          before,
          after: await sampleMemory(port),
        };
        b.say(section, `t+${collectAt}s: two full collections forced: RSS ${collection.rssBefore} -> ${collection.rssAfter} MiB`);
        continue;
      }
      const patched = affected.filter((a) => scenario.tracker.states.get(a)?.patchedAt !== undefined).length;
      const s = controller.sample();
      b.say(
        section,
        `t+${((Date.now() - warnedAt) / 1000).toFixed(1)}s: patched ${patched}/${affected.length}, controller RSS ${s.rssMiB.toFixed(0)} MiB (peak ${s.peakRssMiB.toFixed(0)})`,
      );
    }
    sampling = false;
    await memorySampler;
    const sample = controller.sample();
    const times = affected.map((a) => scenario.tracker.states.get(a)?.patchedAt).filter((t): t is number => t !== undefined);
    const point: ScalingPoint = {
      n,
      replicas,
      namespaces,
      nodeFlags: nodeFlags.flags,
      nodeFlagsFromImage: nodeFlags.image,
      nodes,
      doomedNodes: doomed.length,
      affected: affected.length,
      patched: times.length,
      phase1Seconds: times.length === affected.length && times.length > 0 ? round((Math.max(...times) - warnedAt) / 1000) : null,
      phase1LoggedMax: controller.phase1Logged.length ? round(Math.max(...controller.phase1Logged)) : null,
      peakRssMiB: round(sample.peakRssMiB, 1),
      peakRssBeforeWarningMiB,
      memoryBefore,
      memoryAtPeak,
      heapTotalMax,
      cpuSeconds: round(sample.cpuSeconds - cpuBefore, 2),
      setupSeconds: round(scenario.setupSeconds, 0),
      ...(collection ? { collection } : {}),
      quiet,
    };
    b.say(
      section,
      `N=${n}: phase 1 ${point.phase1Seconds ?? '-'} s for ${point.patched}/${point.affected}, peak RSS ${point.peakRssMiB} MiB (${peakRssBeforeWarningMiB} by the warning)` +
        (memoryAtPeak ? `; at the highest sample ${JSON.stringify(memoryAtPeak)}` : ''),
    );
    return point;
  } finally {
    sampling = false;
    await controller?.stop();
    await tearDown(b, scenario, section);
  }
}
