// The model optimum of the budget scenario: what the best possible answer to one interruption could
// achieve when every replica moved to Fargate is one launch through AWS's token bucket, and each
// launch takes the start-up time the ground's seeded generator draws for it.
//
// Slots. The ground's simulator (testground/src/fargate/scheduler.ts) takes a token per launch and
// draws each launched pod's start-up time from one seeded sequence, in launch order. So the k-th pod
// launched after the warning gets draw offset + k, whoever it belongs to (offset: the launches the
// simulator made before). The model asks for every launch at the instant of the warning, on a full
// bucket, so the k-th launch (0-based) leaves at max(0, (k + 1 - burst) / rate) s and its pod is Ready
// at that time plus its draw. Slot k is "good" when that is no later than the deadline. Everything the
// real chain adds (SQS, the patch, the deployment and ReplicaSet controllers, node creation, KWOK) is
// left out, so the slots are as early as any strategy could get them.
//
// Deployments. Moving a Deployment launches all its replicas (r launches). An affected Deployment is
// "at risk" when all its Ready replicas are on warned nodes: it keeps a Ready replica through the
// deadline only if at least one of its new pods is Ready by then. It is "whole" (fully available on
// surviving capacity, the report's definition) once its replicas Ready on surviving capacity reach r;
// counting its old pods on surviving nodes as kept, that needs at least r - s of its new pods Ready
// by the deadline (s: Ready replicas on surviving nodes at the warning).
//
// The bound (relaxed model). Let any pod take any slot (no order within or across Deployments is
// imposed), and let the pods a Deployment does not need early take slots after the last good one.
// Then a strategy is an assignment of the G good slots among the first L (L: launches, the sum of r
// over the Deployments moved):
// - fewest that hit zero = max(0, A - G) for A at-risk Deployments: each one saved needs a good slot
//   of its own, and A - G saved is reached by giving one good slot to each of min(A, G) of them;
// - most whole = the largest number of Deployments whose needs (r - s good slots each) fit in G:
//   maximising a count under a sum constraint is solved exactly by taking the smallest needs first
//   (exchange argument: swapping any chosen need for a smaller unchosen one never breaks the sum).
// Both are bounds: no real strategy can do better than this relaxation, since every real launch order
// is one of the assignments it considers, and real launches are later than the model's.
//
// The schedule (achievable in the model). A serial, zero-latency controller that patches in triage
// order (at risk first, then by fewer launches needed) gets each Deployment's r pods in consecutive
// slots. `scheduleOutcome` replays that order over the same slots: it is what triage would achieve
// with no latency at all, and never better than the bound.

import { seededRandom } from '../../testground/src/fargate/random.js';
import { drawStartMs, type StartDistribution } from '../../testground/src/fargate/timing.js';

export interface BudgetDeployment {
  name: string;
  /** Desired replicas: launches needed to move it. */
  replicas: number;
  /** Ready replicas on nodes that are not warned, at the warning. */
  survivors: number;
}

export interface Throttle {
  burst: number;
  perSecond: number;
}

export interface BudgetModel {
  /** Deployments moved (the affected ones) and the launches they need. */
  deployments: number;
  launches: number;
  atRisk: number;
  /** Slots among the first `launches` whose pod would be Ready by the deadline. */
  goodSlots: number;
  /** The bound: no strategy moving whole Deployments through this bucket does better. */
  fewestHitZero: number;
  mostWhole: number;
  /** Triage order, serial, zero latency, over the same slots. */
  schedule: { hitZero: number; whole: number };
}

/** Seconds after the request at which the k-th (0-based) of launches all requested at once leaves a full bucket. */
export function launchTimes(count: number, t: Throttle): number[] {
  return Array.from({ length: count }, (_, k) => Math.max(0, (k + 1 - t.burst) / t.perSecond));
}

/** The start-up times (real seconds) the simulator draws for launches offset .. offset + count - 1 of a seed. */
export function drawnStarts(seed: number, offset: number, count: number, start: StartDistribution): number[] {
  const random = seededRandom(seed);
  for (let i = 0; i < offset; i++) drawStartMs(start, random);
  return Array.from({ length: count }, () => drawStartMs(start, random) / 1000);
}

/** Ready time of each slot: launch time plus its drawn start-up. */
export function slotReadyTimes(starts: readonly number[], t: Throttle): number[] {
  const leave = launchTimes(starts.length, t);
  return starts.map((s, k) => leave[k]! + s);
}

const need = (d: BudgetDeployment) => Math.max(0, d.replicas - d.survivors);
const atRisk = (d: BudgetDeployment) => d.survivors === 0 && d.replicas > 0;

/** Triage's order as the model knows it: at risk first, then fewer launches needed, then fewer replicas, then name. */
export function triageOrder(deployments: readonly BudgetDeployment[]): BudgetDeployment[] {
  return [...deployments].sort(
    (a, b) => Number(atRisk(b)) - Number(atRisk(a)) || need(a) - need(b) || a.replicas - b.replicas || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

/** Replays an order of Deployments over consecutive slots: which hit zero, which are whole. */
export function scheduleOutcome(order: readonly BudgetDeployment[], readyAt: readonly number[], deadline: number): { hitZero: number; whole: number } {
  let slot = 0;
  let hitZero = 0;
  let whole = 0;
  for (const d of order) {
    let good = 0;
    for (let i = 0; i < d.replicas; i++, slot++) if ((readyAt[slot] ?? Infinity) <= deadline) good++;
    if (atRisk(d) && good === 0) hitZero++;
    if (good >= need(d)) whole++;
  }
  return { hitZero, whole };
}

/** The bound and the schedule for these Deployments over these slots (readyAt: one per launch, at least `launches` long). */
export function budgetOptimum(deployments: readonly BudgetDeployment[], readyAt: readonly number[], deadline: number): BudgetModel {
  const launches = deployments.reduce((sum, d) => sum + d.replicas, 0);
  if (readyAt.length < launches) throw new Error(`${readyAt.length} slots for ${launches} launches`);
  let goodSlots = 0;
  for (let k = 0; k < launches; k++) if (readyAt[k]! <= deadline) goodSlots++;
  const risky = deployments.filter(atRisk).length;
  const needs = deployments.map(need).sort((a, b) => a - b);
  let mostWhole = 0;
  let used = 0;
  for (const n of needs) {
    if (used + n > goodSlots) break;
    used += n;
    mostWhole++;
  }
  return {
    deployments: deployments.length,
    launches,
    atRisk: risky,
    goodSlots,
    fewestHitZero: Math.max(0, risky - goodSlots),
    mostWhole,
    schedule: scheduleOutcome(triageOrder(deployments), readyAt, deadline),
  };
}
