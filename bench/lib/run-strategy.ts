// One strategy against one fresh scenario: set up, warn K nodes, let the strategy act, kill the
// nodes at the deadline, observe until deadline + tail, compute the figures, tear down.
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { NODE_DRAW_ANNOTATION, NODE_POD_ANNOTATION } from '../../testground/src/fargate/scheduler.js';
import { groundFargateSettings } from '../../testground/src/ground.js';
import { InterruptionInjector, WARNING_WINDOW_MS } from '../../testground/src/injector.js';
import { type BudgetDeployment, type BudgetModel, budgetOptimum, drawnStarts, slotReadyTimes } from './budget-model.js';
import type { ControllerStats, Strategy, StrategyRun } from './strategy.js';
import { type Bench, retrying, sleep } from './context.js';
import { awaitQuietMachine, type Quiet } from './quiet.js';
import { mainSpec, setUp, tearDown, terminateNodes, type ScenarioSpec } from './scenario.js';
import { PodTracker } from './trackers.js';

export interface StrategyResult {
  strategy: string;
  describe: string;
  namespace: string;
  deployments: number;
  pods: number;
  services: number;
  doomedNodes: number;
  doomedPods: number;
  affected: number;
  /** Affected Deployments with their desired count Ready off the doomed nodes before the deadline. */
  availableBeforeDeadline: number;
  availableBeforeDeadlinePct: number;
  /** Replica-seconds below desired (readyReplicas < spec.replicas), all Deployments, warning to end of observation, wall clock. */
  replicaSecondsBelowDesired: number;
  /** Same, in simulated seconds (divided by the time scale). */
  replicaSecondsBelowDesiredSimulated: number;
  /** Cross-check from the pod watch: max(0, spec.replicas - Ready non-terminating pods), integrated the same way. */
  replicaSecondsBelowDesiredFromPods: number;
  hitZero: number;
  /** Deployments whose Ready, not terminating pods fell to 0 at some point, from the pod watch (absent in older results). */
  hitZeroFromPods?: number;
  /** Deployments whose template was seen patched onto Fargate. */
  patched: number;
  /** Warning -> first / last patch seen (seconds, wall clock). */
  firstPatchSeconds: number | null;
  phase1Seconds: number | null;
  /** Set when phase 1 was followed past the observation: how long it was followed. */
  phase1FollowedSeconds: number | null;
  /** Warning -> last pod on a doomed node started terminating before the deadline (the drain's evictions). */
  lastEvictionSeconds: number | null;
  evictedBeforeDeadline: number;
  /** Warning -> the last affected Deployment fully available off the doomed nodes (null: not within the observation). */
  allAvailableSeconds: number | null;
  availableByEnd: number;
  /** Warning -> the last patched Deployment's rollout complete (deployment status), for strategies that patch. */
  rolloutsCompleteSeconds: number | null;
  rolloutsCompleted: number;
  windowSeconds: number;
  observedSeconds: number;
  setupSeconds: number;
  controller?: ControllerStats;
  patchesIssued?: number;
  notes: string[];
  timeline: { deficit: [number, number][]; available: [number, number][] };
  watchRestarts: number;
  /** 1-minute load average of the machine when the warning went out and when the observation ended. */
  loadAverage: { atWarning: number; atEnd: number };
  /** How the machine was when the warning went out: the wait for it to become quiet, and its idle share. */
  quiet?: Quiet;
  /** The launch budget: the model optimum for this run's placement and draws, and what the run did against it. */
  budget?: BudgetRun;
  /** Set when the observation ended as soon as phase 1 was done (--phase1-n). */
  phase1Only?: boolean;
}

export interface BudgetRun {
  model: BudgetModel;
  /** Index in the simulator's seeded sequence of this run's first start-up draw. */
  drawOffset: number;
  /** 'own launches': the lowest draw index on this run's Fargate nodes; 'after the previous runs': no launch of its own seen. */
  offsetSource: 'own launches' | 'after the previous runs';
  /** Fargate nodes of this run seen at the end of the observation, and how many of their recorded draws the model reproduced. */
  fargateNodes: number;
  drawsMatched: number;
  /** At-risk Deployments (all Ready replicas on warned nodes at the warning) that hit zero ready (status; and from the pod watch). */
  atRiskHitZero: number;
  atRiskHitZeroFromPods?: number;
  /** Which at-risk Deployments hit zero ready (from the pod watch), and where each stood in the patch order (absent in older results). */
  atRiskHitZeroNamed?: HitZeroApp[];
}

export interface HitZeroApp {
  app: string;
  replicas: number;
  /** Warning -> its patch seen, seconds (null: not patched within phase 1). */
  patchedSeconds: number | null;
  /** Its place in the patch order among the affected Deployments (1 = first patched; null: not patched). */
  patchRank: number | null;
}

/** One past the highest start-up draw index seen so far in this process (the next run's offset when it launches nothing). */
let nextDraw = 0;

/** Reads this run's Fargate nodes (their recorded draws) and computes the model optimum for its placement. */
async function budgetRun(
  b: Bench,
  namespace: string,
  placement: Map<string, { replicas: number; survivors: number }>,
): Promise<Omit<BudgetRun, 'atRiskHitZero'>> {
  const settings = groundFargateSettings(b.ground);
  const nodes = (await retrying(() => b.core.listNode())).items.filter((n) => n.metadata?.annotations?.[NODE_POD_ANNOTATION]?.startsWith(`${namespace}/`));
  const recorded: [number, number][] = [];
  for (const n of nodes) {
    const m = /^(\d+)\/(\d+)$/.exec(n.metadata?.annotations?.[NODE_DRAW_ANNOTATION] ?? '');
    if (m) recorded.push([Number(m[1]), Number(m[2]) / 1000]);
  }
  const own = recorded.length > 0;
  const drawOffset = own ? Math.min(...recorded.map(([i]) => i)) : nextDraw;
  if (own) nextDraw = Math.max(nextDraw, ...recorded.map(([i]) => i + 1));
  const deployments: BudgetDeployment[] = [...placement].map(([name, p]) => ({ name, ...p }));
  const launches = deployments.reduce((s, d) => s + d.replicas, 0);
  const starts = drawnStarts(settings.seed, drawOffset, launches, settings.start);
  const drawsMatched = recorded.filter(([i, s]) => i - drawOffset < starts.length && starts[i - drawOffset] === s).length;
  const model = budgetOptimum(deployments, slotReadyTimes(starts, settings.throttle), WARNING_WINDOW_MS / 1000);
  return { model, drawOffset, offsetSource: own ? 'own launches' : 'after the previous runs', fargateNodes: nodes.length, drawsMatched };
}

const round = (v: number, digits = 2) => Math.round(v * 10 ** digits) / 10 ** digits;

export async function runStrategy(
  b: Bench,
  strategy: Strategy,
  spec: ScenarioSpec = mainSpec(b, tagOf(strategy.name)),
  { phase1Only = false }: { phase1Only?: boolean } = {},
): Promise<StrategyResult> {
  const section = strategy.name;
  const scenario = await setUp(b, spec, section);
  const pods = new PodTracker(b.kc, scenario.namespace, (l) => b.say(section, l));
  const abort = new AbortController();
  let acting: Promise<void> | undefined;
  try {
    await pods.start();
    await strategy.prepare?.({ bench: b, scenario, pods, section });
    const doomed = scenario.nodes.slice(0, b.options.k);
    const desiredOf = (app: string) => scenario.tracker.states.get(app)?.desired ?? 1;
    const windowMs = b.scaled(WARNING_WINDOW_MS);
    const tailMs = b.scaled(b.options.tailSeconds * 1000);
    // The clock starts on a quiet machine, so the run measures the strategy, not the setup's leftovers.
    const quiet = await awaitQuietMachine((l) => b.say(section, l));

    const injector = new InterruptionInjector(b.ground, b);
    const warnedAt = Date.now();
    const deadline = warnedAt + windowMs;
    scenario.tracker.begin(warnedAt);
    pods.apps = scenario.names;
    pods.begin(warnedAt, doomed, deadline, desiredOf);
    const affected = [...pods.affected].sort();
    await injector.interrupt(doomed, { terminate: false });
    const loadAtWarning = loadavg()[0]!;
    b.say(
      section,
      `warning sent for ${doomed.length} nodes (${pods.doomedPodsAtWarning} pods, ${affected.length} Deployments affected); they die in ${(windowMs / 1000).toFixed(1)} s`,
    );

    const killer = sleep(deadline - Date.now(), abort.signal).then(async () => {
      if (abort.signal.aborted) return;
      b.say(section, `deadline: terminating ${doomed.length} nodes`);
      await terminateNodes(b, doomed).catch((err: unknown) => b.say(section, `terminating nodes: ${String(err)}`));
    });
    const run: StrategyRun = { bench: b, scenario, pods, section, doomed, affected, warnedAt, deadline, signal: abort.signal };
    acting = strategy.act(run).catch((err: unknown) => b.say(section, `strategy failed: ${String(err)}`));

    const end = deadline + tailMs;
    const allPatched = () => affected.every((n) => scenario.tracker.states.get(n)?.patchedAt !== undefined);
    let lastProgress = 0;
    while (Date.now() < end) {
      if (phase1Only) {
        // Only phase 1 is measured: the observation ends when the last patch is seen (the nodes are not killed).
        if (allPatched()) break;
        await sleep(Math.min(250, end - Date.now()));
        if (Date.now() - lastProgress < 5000) continue;
        lastProgress = Date.now();
      } else await sleep(Math.min(5000, end - Date.now()));
      const patched = affected.filter((n) => scenario.tracker.states.get(n)?.patchedAt !== undefined).length;
      const t = ((Date.now() - warnedAt) / 1000).toFixed(1);
      b.say(
        section,
        `t+${t}s${Date.now() < deadline ? '' : ' (after deadline)'}: ${strategy.patches ? `patched ${patched}/${affected.length}, ` : ''}available off doomed nodes ${pods.survivedAt.size}/${affected.length}, replicas below desired ${scenario.tracker.currentDeficit}`,
      );
    }
    const endedAt = Date.now();
    scenario.tracker.end(endedAt);
    pods.end(endedAt);
    const loadAtEnd = loadavg()[0]!;
    // The controller's figures are read now, not after the nodes' pods are all gone.
    await strategy.snapshot?.(run);
    const budget = phase1Only
      ? undefined
      : await budgetRun(b, scenario.namespace, pods.placement).catch((err: unknown) => {
          b.say(section, `budget model: ${String(err)}`);
          return undefined;
        });
    const patchedAll = () => affected.every((n) => scenario.tracker.states.get(n)?.patchedAt !== undefined);
    let phase1End = endedAt;
    if (strategy.followPhase1 && !patchedAll()) {
      b.say(section, 'phase 1 not done at the end of the observation: following it (10 min at most)');
      const limit = Date.now() + 600_000;
      while (!patchedAll() && Date.now() < limit) await sleep(500);
      phase1End = Date.now();
    }
    const outcome = await strategy.finish(run);
    abort.abort();
    await acting;
    acting = undefined;
    pods.stop();
    // On a saturated ground the dead nodes' pods can take a while to go; teardown finishes the job.
    const killed = await Promise.race([killer.then(() => true), sleep(60_000).then(() => false)]);
    if (!killed) outcome.notes.push('the termination of the warned nodes was still deleting their pods 60 s after the observation ended');

    const states = [...scenario.tracker.states.values()];
    writeFileSync(
      join(b.workDir, `${scenario.namespace}-final.json`),
      JSON.stringify({ warnedAt, deadline, endedAt, affected, doomed, states, survivedAt: Object.fromEntries(pods.survivedAt) }, null, 1),
    );
    const affectedStates = affected.map((n) => scenario.tracker.states.get(n)!).filter(Boolean);
    // Only what happened inside the observation counts (the watches ran on until now).
    const inside = (t: number | undefined): t is number => t !== undefined && t <= endedAt;
    const patchTimes = affectedStates.map((s) => s.patchedAt).filter((t): t is number => t !== undefined && t <= phase1End);
    const rolloutTimes = affectedStates.map((s) => s.rolloutCompleteAt).filter(inside);
    const availableTimes = [...pods.survivedAt.values()].filter(inside);
    const before = availableTimes.filter((t) => t <= deadline).length;
    const sec = (t: number) => round((t - warnedAt) / 1000);
    const deficitMs = states.reduce((sum, s) => sum + s.deficitMs, 0);
    const atRiskHitZeroNamed: HitZeroApp[] = [...pods.placement]
      .filter(([app, p]) => p.survivors === 0 && pods.hitZero.has(app))
      .map(([app, p]) => {
        const at = scenario.tracker.states.get(app)?.patchedAt;
        const patched = at !== undefined && at <= phase1End;
        return {
          app,
          replicas: p.replicas,
          patchedSeconds: patched ? sec(at) : null,
          patchRank: patched ? patchTimes.filter((t) => t < at).length + 1 : null,
        };
      });
    const result: StrategyResult = {
      strategy: strategy.name,
      describe: strategy.describe,
      namespace: scenario.namespace,
      deployments: scenario.names.length,
      pods: scenario.pods,
      services: scenario.services,
      doomedNodes: doomed.length,
      doomedPods: pods.doomedPodsAtWarning,
      affected: affected.length,
      availableBeforeDeadline: before,
      availableBeforeDeadlinePct: affected.length ? round((100 * before) / affected.length, 1) : 100,
      replicaSecondsBelowDesired: round(deficitMs / 1000, 1),
      replicaSecondsBelowDesiredSimulated: round(deficitMs / 1000 / b.ground.timeScale, 1),
      replicaSecondsBelowDesiredFromPods: round(pods.deficitMs / 1000, 1),
      hitZero: states.filter((s) => s.hitZero).length,
      hitZeroFromPods: pods.hitZero.size,
      patched: patchTimes.length,
      firstPatchSeconds: patchTimes.length ? sec(Math.min(...patchTimes)) : null,
      phase1Seconds: strategy.patches && patchTimes.length ? sec(Math.max(...patchTimes)) : null,
      phase1FollowedSeconds: phase1End > endedAt ? sec(phase1End) : null,
      lastEvictionSeconds: !strategy.patches && pods.lastDoomedPodDeletionAt !== undefined ? sec(pods.lastDoomedPodDeletionAt) : null,
      evictedBeforeDeadline: pods.doomedPodsDeletedBeforeDeadline,
      allAvailableSeconds: availableTimes.length === affected.length && affected.length > 0 ? sec(Math.max(...availableTimes)) : null,
      availableByEnd: availableTimes.length,
      rolloutsCompleteSeconds: strategy.patches && rolloutTimes.length === affected.length && affected.length > 0 ? sec(Math.max(...rolloutTimes)) : null,
      rolloutsCompleted: rolloutTimes.length,
      windowSeconds: round(windowMs / 1000),
      observedSeconds: round((endedAt - warnedAt) / 1000),
      setupSeconds: round(scenario.setupSeconds, 0),
      controller: outcome.controller,
      patchesIssued: outcome.patchesIssued,
      notes: outcome.notes,
      timeline: { deficit: scenario.tracker.deficitTimeline, available: pods.survivedTimeline },
      watchRestarts: scenario.tracker.restarts + pods.restarts,
      loadAverage: { atWarning: round(loadAtWarning), atEnd: round(loadAtEnd) },
      quiet,
      budget: budget && {
        ...budget,
        atRiskHitZero: [...pods.placement].filter(([app, p]) => p.survivors === 0 && scenario.tracker.states.get(app)?.hitZero).length,
        atRiskHitZeroFromPods: atRiskHitZeroNamed.length,
        atRiskHitZeroNamed,
      },
      phase1Only: phase1Only || undefined,
    };
    if (phase1End > endedAt) {
      result.notes.push(
        `phase 1 was followed past the end of the observation: ${result.patched}/${affected.length} patched ${sec(phase1End)} s after the warning (every other figure stops at ${result.observedSeconds} s)`,
      );
    }
    b.say(
      section,
      `done: ${result.availableBeforeDeadlinePct}% available off doomed nodes before the deadline, ${result.replicaSecondsBelowDesired} replica-s below desired, ${result.hitZero} hit zero ready` +
        (result.phase1Seconds !== null ? `, phase 1 ${result.phase1Seconds} s` : '') +
        (result.controller ? `, controller ${result.controller.cpuSeconds.toFixed(1)} CPU s, peak RSS ${result.controller.peakRssMiB.toFixed(0)} MiB` : ''),
    );
    return result;
  } finally {
    abort.abort();
    await acting;
    pods.stop();
    await strategy.dispose?.().catch((err: unknown) => b.say(section, `stopping the strategy: ${String(err)}`));
    await tearDown(b, scenario, section);
  }
}

export function tagOf(name: string): string {
  return ({ controller: 'ctl', 'controller-no-triage': 'ctlnt', sequential: 'seq', drain: 'drain', none: 'none' } as Record<string, string>)[name] ?? name;
}
