// The floor for phase 1: a minimal client that issues the same patches as the controller
// (planMigration's ops, resourceVersion test included), to the same number of Deployments, with the
// same bounded concurrency, as fast as the API server takes them. The Deployments are paused, so a
// patch starts no rollout: what is left is the API server's cost of the patches alone.
//
// With rollouts (`withRollouts`), the same client patches Deployments of the main scenario, running
// on spot nodes: each patch starts the rollout the controller's patch starts, and the ground's
// deployment controller, scheduler, KWOK and Fargate simulator do that work while the later patches
// go out. That is the floor of what any client could do on this ground, so the controller's phase 1
// against it says how much is the controller's own cost and how much the rollouts'.
//
// Watched (`watchedBy`), the floor with rollouts runs while the controller, started on that namespace
// with an empty queue, only watches: the Deployments carry no opt-in annotation, so it caches and
// decodes every Deployment, ReplicaSet, pod and EndpointSlice change of the rollouts, as it does in its
// own phase 1, and acts on none. What that floor adds to the floor with rollouts is the cost of any
// controller's watches on this ground; what the controller's phase 1 adds to it is its own.
import { JSON_PATCH } from '../../src/kube/api.js';
import { AppsV1Api, type V1Deployment } from '@kubernetes/client-node';
import { kubeConfigFrom } from '../../testground/src/ground.js';
import { type Bench, mapLimit, retrying, sleep } from './context.js';
import { replicasOf } from './options.js';
import { benchMigrationPlan } from './plan.js';
import { mainSpec, setUp, tearDown } from './scenario.js';
import { awaitQuietMachine, type Quiet } from './quiet.js';
import { type RunningController, startController } from './controller-process.js';
import { apiCallsBetween, sampleApiCalls } from './api-calls.js';
import { percentile, round } from './stats.js';

export interface FloorResult {
  /** The patches started rollouts (Deployments of the main scenario), or none (paused Deployments). */
  withRollouts?: boolean;
  deployments: number;
  concurrency: number;
  seconds: number;
  patchesPerSecond: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  latencyMeanMs: number;
  errors: number;
  /** Patches refused by the resourceVersion test and redone after a fresh read. */
  conflicts: number;
  /** How the machine was when the clock started (see quiet.ts). */
  quiet?: Quiet;
  /** A controller watched the namespace, acting on nothing, while the patches went out: its CPU in that window. */
  watchingController?: { cpuSeconds: number; peakRssMiB: number; deploymentWrites: number | null };
}

export interface FloorOptions {
  withRollouts?: boolean;
  /** Run the controller (this entry point, or tsx when undefined) watching the floor's namespace. */
  watchedBy?: { entry: string | undefined };
}

export async function runFloor(b: Bench, count: number, o: FloorOptions = {}): Promise<FloorResult> {
  if (o.watchedBy && !o.withRollouts) throw new Error('a watched floor is a floor with rollouts');
  const section = o.watchedBy ? 'watched rollout floor' : o.withRollouts ? 'rollout floor' : 'floor';
  const scenario = await setUp(
    b,
    o.watchedBy
      ? { ...mainSpec(b, 'wfloor'), deployments: count, optIn: false }
      : o.withRollouts
        ? { ...mainSpec(b, 'rfloor'), deployments: count }
        : { tag: 'floor', deployments: count, nodes: 0, replicas: (i) => replicasOf(b.options, i), service: () => false, paused: true },
    section,
  );
  let watcher: RunningController | undefined;
  // The patches go as the controller's identity (identity.ts), so they face the same API priority.
  const kc = kubeConfigFrom(b.controllerKubeconfig);
  const apps = kc.makeApiClient(AppsV1Api);
  try {
    // What the controller's cache would hold: one LIST, before the clock starts, once the deployment
    // controller has written its status (a later status write would fail the resourceVersion test).
    const ready = Date.now() + 60_000;
    while ([...scenario.tracker.states.values()].some((d) => d.observedGeneration < d.generation) && Date.now() < ready) await sleep(200);
    const list = await retrying(() => b.apps.listNamespacedDeployment({ namespace: scenario.namespace }));
    // Started once the scenario is in place, so its caches are full and its start-up is behind it.
    if (o.watchedBy) watcher = await startController(b, scenario.namespace, section, o.watchedBy.entry);

    const latencies: number[] = [];
    let errors = 0;
    let conflicts = 0;
    const concurrency = b.options.patchConcurrency;
    // The patch an unpaused Deployment gets (the controller skips paused ones); its ops never touch
    // spec.paused, so paused Deployments stay paused and no rollout starts.
    const plan = (d: V1Deployment) => benchMigrationPlan({ ...d, spec: { ...d.spec!, paused: false } }, 'bench-floor', ['i-0123456789abcdef0']);
    const quiet = await awaitQuietMachine((l) => b.say(section, l));
    b.say(
      section,
      `patching ${list.items.length} ${o.withRollouts ? 'running Deployments (each patch starts a rollout)' : 'paused Deployments'}, ${concurrency} at a time${watcher ? ', the controller watching' : ''}`,
    );
    const cpuAtStart = watcher?.sample().cpuSeconds;
    const callsAtStart = watcher ? await sampleApiCalls(watcher.metricsPort) : null;
    const started = performance.now();
    await mapLimit(list.items, concurrency, async (cached) => {
      let d = cached;
      // As the controller does: a refused resourceVersion test means read again and recompute.
      for (let attempt = 0; attempt < 4; attempt++) {
        const p = plan(d);
        if (p.action !== 'patch') break;
        const t = performance.now();
        try {
          await apps.patchNamespacedDeployment({ name: d.metadata!.name!, namespace: scenario.namespace, body: p.ops }, JSON_PATCH);
          latencies.push(performance.now() - t);
          return;
        } catch (err) {
          const code = (err as { code?: number }).code;
          if (code !== 409 && code !== 422) break;
          conflicts++;
          d = await apps.readNamespacedDeployment({ name: d.metadata!.name!, namespace: scenario.namespace });
        }
      }
      errors++;
    });
    const seconds = (performance.now() - started) / 1000;
    const watched = watcher?.sample();
    const callsAtEnd = watcher ? await sampleApiCalls(watcher.metricsPort) : null;
    // What proves it only watched: no write to a Deployment, from its own /metrics.
    const deploymentWrites =
      callsAtStart && callsAtEnd
        ? apiCallsBetween(callsAtStart, callsAtEnd)
            .calls.filter((c) => c.resource === 'deployments' && c.verb !== 'get' && c.verb !== 'list')
            .reduce((sum, c) => sum + c.count, 0)
        : null;
    const result: FloorResult = {
      withRollouts: o.withRollouts === true,
      deployments: list.items.length,
      concurrency,
      seconds: round(seconds, 3),
      patchesPerSecond: round(latencies.length / seconds, 1),
      latencyP50Ms: round(percentile(latencies, 50), 1),
      latencyP95Ms: round(percentile(latencies, 95), 1),
      latencyMeanMs: round(latencies.reduce((a, x) => a + x, 0) / Math.max(1, latencies.length), 1),
      errors,
      conflicts,
      quiet,
      ...(watched && {
        watchingController: { cpuSeconds: round(watched.cpuSeconds - cpuAtStart!, 2), peakRssMiB: round(watched.peakRssMiB, 1), deploymentWrites },
      }),
    };
    b.say(
      section,
      `${section}: ${result.deployments} patches in ${result.seconds} s (${result.patchesPerSecond}/s), ${errors} errors${result.watchingController ? `; the watching controller used ${result.watchingController.cpuSeconds} cpu-s and wrote to ${result.watchingController.deploymentWrites ?? '(unknown)'} Deployments` : ''}`,
    );
    return result;
  } finally {
    kc.closeConnections();
    await watcher?.stop();
    await tearDown(b, scenario, section);
  }
}
