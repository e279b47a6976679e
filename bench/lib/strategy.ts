// A way of answering a spot interruption warning. The harness builds the scenario, calls prepare
// (before the warning), sends the warning, calls act, and at the end of the observation aborts the
// signal, calls finish, and tears the scenario down.
import type { ApiCalls } from './api-calls.js';
import type { Bench } from './context.js';
import type { StrategyName } from './options.js';
import type { Scenario } from './scenario.js';
import type { PodTracker } from './trackers.js';

export interface StrategyRun {
  bench: Bench;
  scenario: Scenario;
  pods: PodTracker;
  section: string;
  /** The doomed nodes (the first K of the pool). */
  doomed: string[];
  /** Affected Deployments (a pod on a doomed node at the warning), sorted by name. */
  affected: string[];
  /** When the warning was sent (ms since epoch). */
  warnedAt: number;
  /** When the instances die. */
  deadline: number;
  /** Aborted at the end of the observation: every loop of a strategy stops on it. */
  signal: AbortSignal;
}

export interface ControllerStats {
  runtime: 'build' | 'tsx';
  /** CPU seconds from the warning to the end of the observation. */
  cpuSeconds: number;
  /** CPU seconds over the process's whole life up to the end of the observation (start, cache sync included). */
  cpuSecondsTotal: number;
  /** VmHWM: the process's peak resident set. */
  peakRssMiB: number;
  /** The controller's own phase1Seconds, one per interruption message it handled. */
  phase1Logged: number[];
  /**
   * From the warning to the last Deployment patch the controller logged (its log's clock, this
   * machine's): phase 1 without the harness's watch delivery, which lags under load.
   */
  lastPatchLoggedSeconds?: number;
  /** Its Kubernetes API calls from just before the warning to the end of the observation (its /metrics). */
  apiCalls?: ApiCalls;
}

export interface StrategyOutcome {
  /** Deployments the strategy patched (controller, sequential). */
  patchesIssued?: number;
  controller?: ControllerStats;
  notes: string[];
}

export interface Strategy {
  name: StrategyName;
  /** One line for the report: what it does. */
  describe: string;
  /** Whether it patches Deployments onto Fargate (phase 1 and rollouts apply). */
  patches: boolean;
  prepare?(run: Omit<StrategyRun, 'warnedAt' | 'deadline' | 'signal' | 'affected' | 'doomed'>): Promise<void>;
  act(run: StrategyRun): Promise<void>;
  /** Phase 1 is followed past the end of the observation (bounded) until every affected Deployment is patched. */
  followPhase1?: boolean;
  /** At the end of the observation: read the figures that belong to it (the controller's CPU and memory). */
  snapshot?(run: StrategyRun): Promise<void>;
  /** After the observation (and phase 1, if followed): stop, and report. */
  finish(run: StrategyRun): Promise<StrategyOutcome>;
  /** Always called last, also after a failure: stops whatever the strategy started (idempotent). */
  dispose?(): Promise<void>;
}
