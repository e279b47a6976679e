// Scaling series: phase 1 time and the controller's peak memory for N Deployments of 1 replica
// each. The pool has max(--nodes, ceil(N / 200)) spot nodes (KWOK nodes take 250 pods) and half of
// it is warned, so about N/2 Deployments are patched. The nodes are not killed at the deadline (the
// figures are the patching and the observation, not the aftermath); the controller runs until the
// deadline plus the tail, so its peak memory covers phase 2 as well, and on until every affected
// Deployment is patched (10 min at most), so that phase 1 is measured however long it takes.
import { InterruptionInjector, WARNING_WINDOW_MS } from '../../testground/src/injector.js';
import { type Bench, retrying, sleep } from './context.js';
import { startController } from './controller-process.js';
import { setUp, tearDown } from './scenario.js';
import { round } from './stats.js';

export interface ScalingPoint {
  n: number;
  nodes: number;
  doomedNodes: number;
  affected: number;
  patched: number;
  /** Warning -> last patch seen, seconds (null when not every affected Deployment was patched). */
  phase1Seconds: number | null;
  /** The controller's own phase1Seconds, the largest over the messages it handled. */
  phase1LoggedMax: number | null;
  peakRssMiB: number;
  cpuSeconds: number;
  setupSeconds: number;
}

export async function runScalingPoint(b: Bench, n: number, entry: string | undefined): Promise<ScalingPoint> {
  const section = `scale-${n}`;
  const nodes = Math.max(b.options.nodes, Math.ceil(n / 200));
  const scenario = await setUp(b, { tag: `scale${n}`, deployments: n, nodes, replicas: () => 1, service: () => false }, section);
  let controller: Awaited<ReturnType<typeof startController>> | undefined;
  try {
    controller = await startController(b, scenario.namespace, section, entry);
    const doomed = scenario.nodes.slice(0, Math.floor(nodes / 2));
    const doomedSet = new Set(doomed);
    const pods = await retrying(() => b.core.listNamespacedPod({ namespace: scenario.namespace }));
    const affected = [...new Set(pods.items.filter((p) => doomedSet.has(p.spec?.nodeName ?? '')).map((p) => p.metadata!.labels!.app!))];
    await sleep(1000);
    const cpuBefore = controller.sample().cpuSeconds;
    const warnedAt = Date.now();
    await new InterruptionInjector(b.ground, b).interrupt(doomed, { terminate: false });
    // At least the window plus the tail (phase 2 in the peak memory); longer if phase 1 is not done, up to 10 min.
    const minEnd = warnedAt + b.scaled(WARNING_WINDOW_MS) + b.scaled(b.options.tailSeconds * 1000);
    const maxEnd = Math.max(minEnd, warnedAt + 600_000);
    const allPatched = () => affected.every((a) => scenario.tracker.states.get(a)?.patchedAt !== undefined);
    b.say(section, `warning sent for ${doomed.length} of ${nodes} nodes, ${affected.length} Deployments affected`);
    while (Date.now() < minEnd || (!allPatched() && Date.now() < maxEnd)) {
      await sleep(Math.min(5000, Math.max(100, (allPatched() ? minEnd : maxEnd) - Date.now())));
      const patched = affected.filter((a) => scenario.tracker.states.get(a)?.patchedAt !== undefined).length;
      const s = controller.sample();
      b.say(
        section,
        `t+${((Date.now() - warnedAt) / 1000).toFixed(1)}s: patched ${patched}/${affected.length}, controller RSS ${s.rssMiB.toFixed(0)} MiB (peak ${s.peakRssMiB.toFixed(0)})`,
      );
    }
    const sample = controller.sample();
    const times = affected.map((a) => scenario.tracker.states.get(a)?.patchedAt).filter((t): t is number => t !== undefined);
    const point: ScalingPoint = {
      n,
      nodes,
      doomedNodes: doomed.length,
      affected: affected.length,
      patched: times.length,
      phase1Seconds: times.length === affected.length && times.length > 0 ? round((Math.max(...times) - warnedAt) / 1000) : null,
      phase1LoggedMax: controller.phase1Logged.length ? round(Math.max(...controller.phase1Logged)) : null,
      peakRssMiB: round(sample.peakRssMiB, 1),
      cpuSeconds: round(sample.cpuSeconds - cpuBefore, 2),
      setupSeconds: round(scenario.setupSeconds, 0),
    };
    b.say(section, `N=${n}: phase 1 ${point.phase1Seconds ?? '-'} s for ${point.patched}/${point.affected}, peak RSS ${point.peakRssMiB} MiB`);
    return point;
  } finally {
    await controller?.stop();
    await tearDown(b, scenario, section);
  }
}
