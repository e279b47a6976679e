// The results file (Markdown: tables, definitions, the exact command and environment) and the
// short fragment for the README.
import { type BenchOptions, mainScenarioPods, podsPerNode } from './options.js';
import type { Environment } from './environment.js';
import type { DetectionResult } from './detection.js';
import type { FloorResult } from './floor.js';
import type { HitZeroApp, StrategyResult } from './run-strategy.js';
import type { Quiet } from './quiet.js';
import type { MemorySample, ScalingPoint } from './scaling.js';

export interface BenchResults {
  stamp: string;
  command: string;
  options: BenchOptions;
  environment: Environment;
  strategies: StrategyResult[];
  floor?: FloorResult;
  /** The controller alone at another N (--phase1-n), observed until phase 1 was done, and the floor right after it. */
  phase1At?: { n: number; strategy: StrategyResult; floor?: FloorResult; rolloutFloor?: FloorResult; watchedFloor?: FloorResult };
  detection?: DetectionResult;
  scaling: ScalingPoint[];
  plots: string[];
  errors: string[];
  durationSeconds: number;
}

const dash = '—';
const s = (v: number | null | undefined, digits = 1) => (v === null || v === undefined || !Number.isFinite(v) ? dash : `${v.toFixed(digits)} s`);
const n1 = (v: number | null | undefined, digits = 1) => (v === null || v === undefined || !Number.isFinite(v) ? dash : v.toFixed(digits));

export function phase1Ratio(r: StrategyResult, floor?: FloorResult): number | null {
  if (!floor || r.phase1Seconds === null || r.patched < r.affected || floor.seconds <= 0) return null;
  return r.phase1Seconds / floor.seconds;
}

function phase1Cell(r: StrategyResult): string {
  if (r.phase1Seconds !== null) {
    const within = r.phase1FollowedSeconds ?? r.observedSeconds;
    return r.patched < r.affected ? `not done: ${r.patched}/${r.affected} patched in ${within.toFixed(0)} s` : s(r.phase1Seconds, 2);
  }
  if (r.lastEvictionSeconds !== null) return `(last eviction ${s(r.lastEvictionSeconds)})`;
  return dash;
}

function availableCell(r: StrategyResult): string {
  if (r.allAvailableSeconds !== null) return s(r.allAvailableSeconds);
  return `not within ${r.observedSeconds.toFixed(0)} s (${r.availableByEnd}/${r.affected})`;
}

function rolloutCell(r: StrategyResult): string {
  if (!r.strategy.startsWith('controller') && r.strategy !== 'sequential') return 'n/a (no rollout)';
  if (r.rolloutsCompleteSeconds !== null) return s(r.rolloutsCompleteSeconds);
  return `not within ${r.observedSeconds.toFixed(0)} s (${r.rolloutsCompleted}/${r.affected})`;
}

export function mainTable(results: BenchResults): string {
  const { strategies, floor } = results;
  const lines = [
    "| strategy | affected Deployments | fully available on surviving capacity before the deadline | replica-seconds below desired: readyReplicas (wall / simulated) | same, from pods' Ready condition (wall) | Deployments that hit 0 ready | phase 1: warning → last patch | phase 1 ÷ floor | all affected available on surviving capacity | all rollouts complete | controller CPU s (event / process) | controller peak RSS |",
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of strategies) {
    const ratio = phase1Ratio(r, floor);
    lines.push(
      `| ${r.strategy} | ${r.affected} of ${r.deployments} | ${r.availableBeforeDeadlinePct.toFixed(1)} % (${r.availableBeforeDeadline}) | ${n1(r.replicaSecondsBelowDesired)} / ${n1(r.replicaSecondsBelowDesiredSimulated, 0)} | ${n1(r.replicaSecondsBelowDesiredFromPods)} | ${r.hitZero} | ${phase1Cell(r)} | ${ratio === null ? dash : `${ratio.toFixed(1)}×`} | ${availableCell(r)} | ${rolloutCell(r)} | ${r.controller ? `${r.controller.cpuSeconds.toFixed(1)} / ${r.controller.cpuSecondsTotal.toFixed(1)}` : dash} | ${r.controller ? `${r.controller.peakRssMiB.toFixed(0)} MiB` : dash} |`,
    );
  }
  return lines.join('\n');
}

function nodePodsText(o: BenchOptions): string {
  // Older result files predate the setting: their pools held the ground's 250.
  const p = o.nodePods ?? 250;
  if (p !== 'packed') return `${p} pods each`;
  return `packed: ${podsPerNode('packed', mainScenarioPods(o), o.nodes)} pods each, the scenario's pods + 5 %, so the survivors cannot take in the warned nodes' pods`;
}

function environmentTable(e: Environment, o: BenchOptions): string {
  const rows: [string, string][] = [
    ['date', e.date],
    ['machine', `${e.cores} cores (${e.cpuModel}), ${e.memoryGiB} GiB memory, Linux ${e.kernel}`],
    ['load average at start (1, 5, 15 min)', e.loadAverageAtStart.join(', ')],
    ['Node.js', e.node],
    ['Kubernetes (API server, controller-manager, scheduler; kubectl)', `${e.kubernetesServer}; kubectl ${e.kubectl}`],
    ['etcd / KWOK / moto', `${e.etcd} / ${e.kwok} / ${e.moto}`],
    ['ground time scale', `${e.timeScale} (fixed at cluster-up, read from ground.json)`],
    ['Fargate start (drawn per pod)', `${(e.fargateDelayMs / 1000).toFixed(2)} s wall clock (${e.fargateDelaySource})`],
    ['warning window (simulated 120 s)', `${(e.windowMs / 1000).toFixed(2)} s wall clock`],
    ['observation', `warning → deadline + ${o.tailSeconds} simulated s`],
    ['N Deployments / replicas / Services+PDBs', `${o.n} / ${o.replicasMin}-${o.replicasMax} in turn / ${Math.round(o.serviceShare * 100)} % of Deployments`],
    ['spot pool per strategy / K interrupted', `${o.nodes} fresh KWOK nodes (${nodePodsText(o)}) / the first ${o.k}`],
    ['patch concurrency (controller MAX_CONCURRENT_PATCHES, floor)', String(o.patchConcurrency)],
    ['the controller and the floor call the API server as', e.controllerIdentity ?? 'the admin certificate'],
    [
      "the controller's environment beyond these settings (the image's ENV, BENCH_CONTROLLER_ENV)",
      Object.entries(e.controllerEnv ?? {})
        .map(([k, v]) => `\`${k}=${v}\``)
        .join(' ') || 'nothing',
    ],
    ['project commit', `${e.gitCommit}${e.gitDirty ? ' (with uncommitted changes)' : ''}`],
  ];
  return ['| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

export function renderResults(r: BenchResults): string {
  const e = r.environment;
  const o = r.options;
  const out: string[] = [];
  out.push(`# Benchmark ${r.stamp}: spot interruption of ${o.k} of ${o.nodes} nodes, ${o.n} Deployments, time scale ${e.timeScale}`);
  out.push('');
  out.push('Command:');
  out.push('');
  out.push('```sh');
  out.push(r.command);
  out.push('```');
  out.push('');
  out.push(`Took ${(r.durationSeconds / 60).toFixed(1)} min. Raw data: \`${r.stamp}.json\`.`);
  out.push('');
  out.push('## Environment');
  out.push('');
  out.push(environmentTable(e, o));
  out.push('');
  if (r.strategies.length > 0) {
    out.push('## One interruption, per strategy');
    out.push('');
    out.push(mainTable(r));
    out.push('');
    out.push('Each strategy ran on a fresh namespace and a fresh pool of spot nodes, one after the other, against the same ground.');
    out.push('All times are wall clock, from the moment the warning was sent (EventBridge PutEvents), on this ground at time scale');
    out.push(`${e.timeScale}: the Fargate start took ${(e.fargateDelayMs / 1000).toFixed(2)} s and the window ${(e.windowMs / 1000).toFixed(2)} s.`);
    out.push('');
    out.push('| strategy | what it does | setup | notes |');
    out.push('|---|---|---:|---|');
    for (const x of r.strategies) {
      const notes = [...x.notes];
      if (x.controller)
        notes.push(
          `controller run from the ${x.controller.runtime === 'build' ? 'build (node dist/src/cli.js run, one bundle as the image ships it)' : 'TypeScript sources through tsx'}; its own phase 1 per message: max ${x.controller.phase1Logged.length ? Math.max(...x.controller.phase1Logged).toFixed(2) : dash} s over ${x.controller.phase1Logged.length} messages`,
        );
      if (x.strategy === 'drain')
        notes.push(
          `${x.evictedBeforeDeadline} pods on the warned nodes evicted before the deadline (${x.doomedPods} were there at the warning; replacements can land on a node before its drain cordons it)`,
        );
      if (x.watchRestarts > 0) notes.push(`${x.watchRestarts} watch restarts (resumed from the last resourceVersion)`);
      if (x.loadAverage) notes.push(`load average ${x.loadAverage.atWarning} at the warning, ${x.loadAverage.atEnd} at the end`);
      if (x.quiet) notes.push(`machine at the warning ${quietCell(x.quiet)}`);
      out.push(`| ${x.strategy} | ${x.describe} | ${x.setupSeconds} s | ${notes.join('; ') || dash} |`);
    }
    out.push('');
    out.push('Definitions:');
    out.push('- **affected**: Deployments with at least one pod on a warned node when the warning went out.');
    out.push('- **fully available on surviving capacity before the deadline**: affected Deployments that, at some moment before the');
    out.push('  instances died, had `spec.replicas` pods Ready, not terminating, on nodes that were not warned (Fargate or the rest of');
    out.push("  the spot pool). From a watch on the namespace's pods.");
    out.push('- **replica-seconds below desired**: the integral of max(0, `spec.replicas` − `status.readyReplicas`) over every Deployment');
    out.push('  of the namespace, from the warning to the end of the observation, from a watch on the Deployments (every event');
    out.push('  counted, no polling). "Simulated" divides the wall-clock figure by the time scale. The next column integrates the');
    out.push('  same deficit from the pod watch instead (Ready, not terminating pods per Deployment): it does not wait for the');
    out.push('  deployment controller to write the status, which lags on a loaded ground and can miss short dips altogether.');
    out.push('- **hit 0 ready**: Deployments whose `status.readyReplicas` was 0 at some point in the observation.');
    out.push("- **phase 1**: warning → the last affected Deployment's template seen with `compute-type: fargate` on the watch. For");
    out.push('  the controller this includes EventBridge → SQS → long poll. Sequential and drain start the moment the warning is sent,');
    out.push('  with no queue in between, which can only flatter them. For drain, the last eviction (a pod on a warned node starting');
    out.push('  to terminate before the deadline) is shown instead.');
    out.push("- **phase 1 ÷ floor**: phase 1 divided by the floor's time for the same number of the same patches (below).");
    out.push('- **all affected available on surviving capacity**: when the last affected Deployment first became fully available');
    out.push('  there (possibly after the deadline, when the ReplicaSets replaced the dead pods).');
    out.push('- **all rollouts complete**: when the last patched Deployment reported its rollout complete (`observedGeneration`,');
    out.push('  `updatedReplicas`, `availableReplicas` and `replicas` all at the patched generation and desired count).');
    out.push('- **controller CPU s**: user + system time from /proc/<pid>/stat, from the warning to the end of the observation');
    out.push('  (and over the whole process life, startup and cache sync included). **Peak RSS**: VmHWM from /proc/<pid>/status.');
    out.push('');
  }
  if (r.strategies.length > 0) {
    out.push('What this ground is, and is not:');
    out.push('- Everything (etcd, the API server, controller-manager, scheduler, KWOK, the Fargate simulator, moto, the controller');
    out.push(`  and this harness) shares the ${e.cores} cores above. When the load average is well above the core count, the API server`);
    out.push('  is the bottleneck and every strategy is slowed by it, including the reaction of the cluster to its own actions (the');
    out.push("  controller's patches start rollouts that create pods while it is still patching).");
    out.push('- The Fargate simulator, as EKS does, gives every Fargate pod a node of its own; KWOK keeps each one alive with lease');
    out.push("  and status updates, so a thousand Fargate pods are a thousand more nodes for the API server. Launches pass AWS's");
    out.push("  token bucket (see the ground's settings above), then each pod's drawn (scaled) start-up runs in parallel; after it");
    out.push('  the simulator creates the node and binds the pod with at most 50 API calls in flight.');
    out.push('- KWOK makes a pod Ready the moment it is bound: no image pull, no start-up, no readiness probe. Pods rescheduled onto');
    out.push('  surviving spot nodes (drain, none, sequential) are therefore ready sooner than in a real cluster.');
    out.push('- `status.readyReplicas` is written by the deployment controller; under load it lags behind the pods, which is why the');
    out.push('  pod-side integral is given beside it in the notes.');
    out.push('');
  }
  const budgets = r.strategies.filter((x) => x.budget);
  if (budgets.length > 0) {
    out.push('## The launch budget: each run against the model optimum');
    out.push('');
    out.push(budgetTable(r));
    out.push('');
    out.push(...BUDGET_DEFINITIONS);
    out.push('');
  }
  if (r.phase1At) out.push(...phase1AtSection(r.phase1At, e.cores), '');
  if (r.floor) {
    const f = r.floor;
    out.push('## Floor for phase 1');
    out.push('');
    out.push(`A minimal client issued the controller's patches (planMigration's JSON Patch, resourceVersion test included) to ${f.deployments}`);
    out.push(
      `paused Deployments (so no rollout started), ${f.concurrency} at a time: **${f.seconds.toFixed(2)} s**, ${f.patchesPerSecond} patches/s, latency p50`,
    );
    out.push(
      `${f.latencyP50Ms} ms, p95 ${f.latencyP95Ms} ms${f.conflicts ? `, ${f.conflicts} resourceVersion conflicts redone` : ''}${f.errors ? `, ${f.errors} errors` : ''}. The count is the number of Deployments the controller patched in this run. Machine when the clock started: ${quietCell(f.quiet)}.`,
    );
    out.push('');
  }
  if (r.detection) {
    const d = r.detection;
    out.push('## Detection latency');
    out.push('');
    out.push(`${d.events} single warnings, one at a time, each put straight into the controller's queue (SendMessage), each for a`);
    out.push("node running one opted-in Deployment; measured from the SendMessage call to that Deployment's patch seen on the watch.");
    out.push('');
    out.push('| events | p50 | p95 | min | max | missed |');
    out.push('|---:|---:|---:|---:|---:|---:|');
    out.push(
      `| ${d.samples.length} | ${(d.p50 * 1000).toFixed(0)} ms | ${(d.p95 * 1000).toFixed(0)} ms | ${(d.min * 1000).toFixed(0)} ms | ${(d.max * 1000).toFixed(0)} ms | ${d.missed} |`,
    );
    out.push('');
  }
  if (r.scaling.length > 0) {
    out.push('## Scaling');
    out.push('');
    const replicas = r.scaling[0]!.replicas;
    const flagSets = new Set(r.scaling.map((p) => p.nodeFlags.join(' ')));
    out.push(
      `N Deployments of ${replicas === 1 ? '1 replica' : `${replicas} replicas`} each on max(${o.nodes}, ${replicas === 1 ? 'N' : `${replicas}N`}/200) spot nodes; half of the nodes warned at once; the controller`,
    );
    out.push('observed until the deadline plus the tail (the nodes were not killed).');
    out.push("Peak RSS is VmHWM from /proc/<pid>/status, read just before the warning (the start-up's high-water mark: the initial lists) and at the end.");
    if (flagSets.size > 1 || !r.scaling[0]!.nodeFlagsFromImage) {
      out.push(
        "Node flags: the controller's, per row (image: the Dockerfile's ENTRYPOINT). Memory from the controller's /metrics, every second: RSS, heap total (new space / old space) and heap used at the sample with the highest RSS, and before the warning.",
      );
    }
    out.push('');
    const flagsColumn = flagSets.size > 1 || !r.scaling[0]!.nodeFlagsFromImage;
    const namespacesColumn = r.scaling.some((p) => (p.namespaces ?? 1) > 1);
    if (namespacesColumn) {
      out.push(
        'Namespaces: the Deployments spread round-robin over that many; with more than one the controller manages every namespace (`NAMESPACES=*`: one cluster-wide watch per kind), with one it manages that one (`NAMESPACE`).',
      );
      out.push('');
    }
    out.push(
      `| N |${namespacesColumn ? ' namespaces |' : ''}${flagsColumn ? ' node flags |' : ''} nodes (warned) | affected | phase 1: warning → last patch | controller's own phase 1 (max per message) | controller CPU s (event) | controller peak RSS: by the warning / in all | at the highest sample: RSS / heap total (new / old) / heap used / external | before the warning: RSS / heap total / heap used | setup |`,
    );
    out.push(`|---:|${namespacesColumn ? '---:|' : ''}${flagsColumn ? '---|' : ''}---:|---:|---:|---:|---:|---:|---:|---:|---:|`);
    const mem = (m: MemorySample | null, full: boolean) =>
      m === null
        ? dash
        : full
          ? `${m.rss.toFixed(0)} / ${m.heapTotal.toFixed(0)} (${m.newSpace.toFixed(0)} / ${m.oldSpace.toFixed(0)}) / ${m.heapUsed.toFixed(0)} / ${m.external.toFixed(0)} MiB`
          : `${m.rss.toFixed(0)} / ${m.heapTotal.toFixed(0)} / ${m.heapUsed.toFixed(0)} MiB`;
    for (const p of r.scaling) {
      const flags = `${p.nodeFlags.map((f) => `\`${f}\``).join(' ') || 'none'}${p.nodeFlagsFromImage ? ' (image)' : ''}`;
      out.push(
        `| ${p.n} |${namespacesColumn ? ` ${p.namespaces ?? 1} |` : ''}${flagsColumn ? ` ${flags} |` : ''} ${p.nodes} (${p.doomedNodes}) | ${p.affected} | ${p.phase1Seconds === null ? `${dash} (${p.patched}/${p.affected} patched)` : s(p.phase1Seconds, 2)} | ${s(p.phase1LoggedMax, 2)} | ${p.cpuSeconds.toFixed(1)} | ${p.peakRssBeforeWarningMiB === undefined ? '' : `${p.peakRssBeforeWarningMiB.toFixed(0)} / `}${p.peakRssMiB.toFixed(0)} MiB | ${mem(p.memoryAtPeak ?? null, true)} | ${mem(p.memoryBefore ?? null, false)} | ${p.setupSeconds} s |`,
      );
    }
    const collected = r.scaling.filter((p) => p.collection !== undefined);
    if (collected.length > 0) {
      out.push('');
      for (const p of collected) {
        const c = p.collection!;
        const heap = (m: MemorySample | null) =>
          m === null ? dash : `heap used ${m.heapUsed.toFixed(1)}, heap total ${m.heapTotal.toFixed(1)}, external ${m.external.toFixed(1)}`;
        out.push(
          `Two full collections forced at t+${c.atSeconds} s (N=${p.n}): RSS ${c.rssBefore.toFixed(1)} → ${c.rssAfter.toFixed(1)} MiB; ${heap(c.before)} → ${heap(c.after)} MiB. What is left is the floor no collector policy goes below at that moment (\`BENCH_COLLECT_AT\`; the controller ran with the inspector open, and the rest of its run followed this collection).`,
        );
      }
    }
    const quiet = r.scaling.map((p) => p.quiet).filter((q): q is Quiet => q !== undefined);
    if (quiet.length > 0) {
      out.push('');
      out.push(`Machine at each warning, in row order: ${quiet.map(quietCell).join('; ')} (bench/lib/quiet.ts).`);
    }
    out.push('');
  }
  if (r.plots.length > 0) {
    out.push('## Plots');
    out.push('');
    for (const p of r.plots) out.push(`![${p}](${p})`);
    out.push('');
  }
  if (r.errors.length > 0) {
    out.push('## Errors');
    out.push('');
    for (const err of r.errors) out.push(`- ${err}`);
    out.push('');
  }
  return out.join('\n');
}

const BUDGET_DEFINITIONS = [
  'How the model optimum is computed (bench/lib/budget-model.ts, unit-tested in budget-model.test.ts):',
  "- **launches**: every replica of every affected Deployment is one Fargate launch when it is moved (the controller's",
  '  patch rolls the whole Deployment, `maxSurge: 100%`).',
  "- **slots**: the model asks for all those launches at the instant of the warning, from a full bucket (the ground's",
  "  burst and rate), so launch k leaves at max(0, (k + 1 − burst) / rate) s. The ground draws each launched pod's",
  "  start-up time from one seeded sequence in launch order, so slot k gets draw offset + k of the ground's seed, whoever",
  "  the pod belongs to. The offset is the lowest draw index recorded on this run's Fargate nodes (annotation",
  '  `testground.spot-fargate.io/start-draw`, which also holds the time drawn; "reproduced" counts the nodes whose recorded',
  '  draw the model regenerated exactly). A slot is **good** when launch time + start-up ≤ 120 s. SQS, the patch, the',
  '  deployment and ReplicaSet controllers, node creation and KWOK are all left out, so no real run gets earlier slots.',
  '- **at risk**: affected Deployments whose Ready replicas were all on warned nodes at the warning. One keeps a Ready',
  '  replica through the deadline only if one of its new pods is in a good slot. **fewest that must hit zero** = max(0,',
  '  at risk − good slots): each saved one needs a good slot of its own, and any assignment of pods to slots is allowed,',
  '  so this is a bound no strategy that moves Deployments to Fargate can beat.',
  '- **most whole before the deadline**: a Deployment with r replicas, s of them Ready on surviving nodes, needs r − s',
  '  new pods in good slots (its old pods on surviving nodes counted as kept). The most Deployments whose needs fit in',
  '  the good slots is found exactly by taking the smallest needs first (swapping a chosen need for a smaller unchosen one',
  '  never breaks the sum). Also a bound: it lets a Deployment put the pods it does not need early after the last good slot.',
  '- **triage order, zero latency**: the same slots, filled in triage order (at risk first, then fewest launches needed)',
  "  one whole Deployment after the other: what the controller's order achieves with no latency at all.",
  "- The model is computed per run, on that run's own placement (each strategy gets a fresh pool, so the scheduler's",
  '  placement, and so the at-risk set, differ a little between runs). It bounds moves to Fargate only: drain and none',
  '  reschedule onto the surviving spot nodes, which on this ground have room for every pod and make pods Ready at once.',
];

function budgetTable(r: BenchResults): string {
  const lines = [
    "| strategy | affected | at risk | launches if all moved | good slots (model) | draw offset / Fargate nodes seen / reproduced | model: fewest that must hit zero | measured: hit 0 ready (of them at risk) | same, from pods' Ready condition (of them at risk) | model: most whole before the deadline | measured: fully available on surviving capacity before the deadline | model, triage order with zero latency: hit zero / whole |",
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const x of r.strategies) {
    const g = x.budget;
    const fromPods = x.hitZeroFromPods === undefined ? 'not measured' : `${x.hitZeroFromPods} (${g?.atRiskHitZeroFromPods ?? dash})`;
    if (!g) continue;
    const m = g.model;
    lines.push(
      `| ${x.strategy} | ${x.affected} | ${m.atRisk} | ${m.launches} | ${m.goodSlots} | ${g.drawOffset}${g.offsetSource === 'own launches' ? '' : ' (after the previous runs)'} / ${g.fargateNodes} / ${g.drawsMatched} | ${m.fewestHitZero} | ${x.hitZero} (${g.atRiskHitZero}) | ${fromPods} | ${m.mostWhole} | ${x.availableBeforeDeadline} | ${m.schedule.hitZero} / ${m.schedule.whole} |`,
    );
  }
  const named = r.strategies.filter((x) => x.budget?.atRiskHitZeroNamed?.length);
  if (named.length) {
    lines.push('', "At-risk Deployments that hit zero ready (from pods' Ready condition), with their place in the patch order:");
    for (const x of named) lines.push(`- ${x.strategy}: ${hitZeroList(x.budget!.atRiskHitZeroNamed!, x.affected)}`);
  }
  return lines.join('\n');
}

const NAMED_AT_MOST = 12;

export function hitZeroList(apps: readonly HitZeroApp[], affected: number): string {
  const shown = apps.slice(0, NAMED_AT_MOST).map((a) => {
    const where = a.patchRank === null ? 'not patched in phase 1' : `patched ${a.patchedSeconds} s after the warning, ${a.patchRank} of ${affected}`;
    return `${a.app} (${a.replicas} replica${a.replicas === 1 ? '' : 's'}, ${where})`;
  });
  const more = apps.length - shown.length;
  return shown.join('; ') + (more > 0 ? `; and ${more} more (the .json has them all)` : '');
}

function phase1AtSection(p: NonNullable<BenchResults['phase1At']>, cores: number): string[] {
  const x = p.strategy;
  const f = p.floor;
  const r = p.rolloutFloor;
  const w = p.watchedFloor;
  const ctl = x.controller;
  const done = x.patched >= x.affected;
  const floors = [
    ['floor (paused)', f],
    ['floor with rollouts', r],
    ['floor with rollouts, the controller watching', w],
  ] as const;
  const shown = floors.filter(([, floor]) => floor);
  const ratios = (seconds: number | null | undefined) =>
    shown.map(([, floor]) => (seconds != null && done && floor!.seconds > 0 ? `${(seconds / floor!.seconds).toFixed(2)}×` : dash)).join(' | ');
  const ownPhase1 = ctl?.phase1Logged.length ? Math.max(...ctl.phase1Logged) : null;
  const lines = [
    `## Phase 1 at N=${p.n}, against its floors`,
    '',
    `The controller alone on the main scenario at N=${p.n} (${x.pods} pods, ${x.doomedNodes} of its nodes warned, ${x.affected} Deployments affected), observed until`,
    'its last patch was seen; then, right after it on the same ground, the floor for as many patches: a minimal client sending the same',
    'patches to paused Deployments (no rollout starts)' +
      (r
        ? ", and the floor with rollouts: the same client and patches to running Deployments of the main scenario, so that each patch starts the rollout the controller's starts"
        : '') +
      (w
        ? '; and that floor again while the controller, started on its namespace with an empty queue, watches every change of the rollouts and acts on none (the Deployments are not opted in).'
        : '.'),
    'A floor is timed by its own client, from before its first patch to its last response. The controller is timed three ways: from the',
    "warning to its last patch as the harness's watch saw it (that watch lags under load), as the controller logged it (same machine, same",
    'clock), and by its own phase 1 (from handling the message to its last patch, the longest over the messages).',
    '',
    `| | seconds | ${shown.map(([name]) => `÷ ${name}`).join(' | ')} | machine when the clock started |`,
    `|---|---:|${shown.map(() => '---:|').join('')}---|`,
    `| controller: warning → last patch seen | ${phase1Cell(x)} | ${ratios(x.phase1Seconds)} | ${quietCell(x.quiet)} |`,
    ...(ctl?.lastPatchLoggedSeconds !== undefined
      ? [`| controller: warning → last patch logged | ${s(ctl.lastPatchLoggedSeconds, 2)} | ${ratios(ctl.lastPatchLoggedSeconds)} | |`]
      : []),
    `| controller's own phase 1 (max per message) | ${ownPhase1 === null ? dash : s(ownPhase1, 2)} | ${ratios(ownPhase1)} | |`,
    ...shown.map(([name, floor]) => `| ${name} | ${s(floor!.seconds, 2)} | ${shown.map(() => '').join(' | ')} | ${quietCell(floor!.quiet)} |`),
    '',
    `Load average at the warning ${x.loadAverage.atWarning}, at the end ${x.loadAverage.atEnd} (${cores} cores).`,
    'Every clock starts only once the machine has been at least 85 % idle for 3 s in a row (bench/lib/quiet.ts), so none measures',
    'what the previous setup or teardown left running; the wait is in brackets.',
  ];
  const calls = ctl?.apiCalls;
  if (calls && calls.calls.length > 0) {
    const patch = calls.latency.find((l) => l.verb === 'patch' && l.resource === 'deployments');
    lines.push(
      '',
      `The controller's Kubernetes API calls from before the warning to its last patch seen (its /metrics): ${calls.calls.map((c) => `${c.count} ${c.verb} ${c.resource} ${c.code}`).join(', ')}.` +
        (patch
          ? ` Mean latency of its Deployment patches ${patch.meanMs} ms; the floors' ${shown
              .map(([name, x]) => `${name} ${x!.latencyMeanMs} ms`)
              .join(', ')} (${f?.concurrency ?? dash} in flight on each side).`
          : ''),
    );
  }
  if (w?.watchingController && ctl)
    lines.push(
      '',
      `The controller's CPU: ${ctl.cpuSeconds.toFixed(2)} cpu-s from the warning to its last patch seen (its phase 1, patches included); ` +
        `${w.watchingController.cpuSeconds.toFixed(2)} cpu-s while it only watched the floor's ${w.deployments} patches and their rollouts (${w.seconds.toFixed(2)} s), writing to ${w.watchingController.deploymentWrites ?? 'an unknown number of'} Deployments.`,
    );
  return lines;
}

/** The machine when a clock started: its idle share, and how long the bench waited for it to be quiet. */
function quietCell(q: Quiet | undefined): string {
  if (!q) return dash;
  return `${q.quiet ? '' : 'busy: '}${q.idlePct.toFixed(0)} % idle (${q.waitedSeconds.toFixed(0)} s)`;
}

export function renderReadmeFragment(r: BenchResults, resultsPath: string): string {
  const e = r.environment;
  const o = r.options;
  const out: string[] = [];
  out.push(
    `Measured ${e.date.slice(0, 10)} on the local test ground (${e.cores} cores, ${e.memoryGiB} GiB; Kubernetes ${e.kubernetesServer}; time scale ${e.timeScale}:`,
  );
  out.push(
    `Fargate start ${(e.fargateDelayMs / 1000).toFixed(2)} s, window ${(e.windowMs / 1000).toFixed(2)} s). ${o.n} Deployments of ${o.replicasMin}-${o.replicasMax} replicas on ${o.nodes} spot nodes,`,
  );
  out.push(`${o.k} nodes interrupted at once. Full results, definitions and plots: [${resultsPath}](${resultsPath}).`);
  out.push('');
  out.push('```sh');
  out.push(r.command);
  out.push('```');
  out.push('');
  out.push(
    '| strategy | affected Deployments fully available on surviving capacity before the deadline | replica-seconds below desired (readyReplicas / pods) | Deployments that hit 0 ready | phase 1 (warning → last patch) | controller CPU / peak RSS |',
  );
  out.push('|---|---:|---:|---:|---:|---:|');
  for (const x of r.strategies) {
    const ratio = phase1Ratio(x, r.floor);
    out.push(
      `| ${x.strategy} | ${x.availableBeforeDeadlinePct.toFixed(1)} % of ${x.affected} | ${n1(x.replicaSecondsBelowDesired, 0)} / ${n1(x.replicaSecondsBelowDesiredFromPods, 0)} | ${x.hitZero} | ${phase1Cell(x)}${ratio === null ? '' : ` (${ratio.toFixed(1)}× the floor)`} | ${x.controller ? `${x.controller.cpuSeconds.toFixed(1)} s / ${x.controller.peakRssMiB.toFixed(0)} MiB` : dash} |`,
    );
  }
  const model = r.strategies.find((x) => x.strategy === 'controller')?.budget?.model;
  if (model)
    out.push(
      `\nModel optimum for the controller's run (same bucket, same drawn start-up times; bench/lib/budget-model.ts): ${model.launches} launches for ${model.deployments} affected Deployments, ${model.goodSlots} of them can be Ready by the deadline; at least ${model.fewestHitZero} of the ${model.atRisk} at risk must hit zero ready; at most ${model.mostWhole} can be fully available before the deadline.`,
    );
  if (r.phase1At) {
    const p = r.phase1At;
    const ratio = p.floor && p.strategy.phase1Seconds !== null && p.floor.seconds > 0 ? p.strategy.phase1Seconds / p.floor.seconds : null;
    const rf = p.rolloutFloor;
    const rolloutRatio = rf && p.strategy.phase1Seconds !== null && rf.seconds > 0 ? p.strategy.phase1Seconds / rf.seconds : null;
    out.push(
      `\nPhase 1 at N=${p.n} (${p.strategy.affected} affected, the controller then the floor back to back): ${phase1Cell(p.strategy)}, floor ${p.floor ? s(p.floor.seconds, 2) : dash}${ratio === null ? '' : `, ${ratio.toFixed(2)}× the floor`}` +
        `${rf ? `; floor with rollouts ${s(rf.seconds, 2)}${rolloutRatio === null ? '' : `, ${rolloutRatio.toFixed(2)}× that floor`}` : ''}` +
        `${p.watchedFloor ? `; floor with rollouts and the controller watching ${s(p.watchedFloor.seconds, 2)}` : ''} (load average ${p.strategy.loadAverage.atWarning} on ${e.cores} cores at the warning).`,
    );
  }
  if (r.detection)
    out.push(
      `\nDetection (SQS → first patch, ${r.detection.samples.length} single events): p50 ${(r.detection.p50 * 1000).toFixed(0)} ms, p95 ${(r.detection.p95 * 1000).toFixed(0)} ms.`,
    );
  if (r.scaling.length > 0) {
    out.push(
      `\nScaling (${r.scaling[0]!.replicas === 1 ? '1 replica' : `${r.scaling[0]!.replicas} replicas`} each, half the nodes warned): ${r.scaling.map((p) => `N=${p.n}: phase 1 ${p.phase1Seconds === null ? dash : `${p.phase1Seconds.toFixed(2)} s`}, ${p.peakRssMiB.toFixed(0)} MiB`).join('; ')}.`,
    );
  }
  return `${out.join('\n')}\n`;
}
