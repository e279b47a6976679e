// This controller, two-phase: the real `spot-orchestrator run` in its own process, namespace mode,
// reading the warning from its own SQS queue fed by the EventBridge rule.
import { startController, type ProcSample, type RunningController } from '../lib/controller-process.js';
import type { StrategyName } from '../lib/options.js';
import type { Strategy, StrategyOutcome, StrategyRun } from '../lib/strategy.js';
import { apiCallsBetween, sampleApiCalls } from '../lib/api-calls.js';

/** The controller as shipped, or with triage off (MIGRATION_TRIAGE=false: phase 1 in arrival order). */
export function controllerStrategy(entry: string | undefined, variant: 'controller' | 'controller-no-triage' = 'controller'): Strategy {
  const noTriage = variant === 'controller-no-triage';
  const name: StrategyName = variant;
  const env: Record<string, string> = noTriage ? { MIGRATION_TRIAGE: 'false' } : {};
  let running: RunningController | undefined;
  let stopped = false;
  let end: ProcSample | undefined;
  let callsBefore: Awaited<ReturnType<typeof sampleApiCalls>> = null;
  let callsAfter: Awaited<ReturnType<typeof sampleApiCalls>> = null;
  return {
    name,
    describe: noTriage
      ? 'this controller with MIGRATION_TRIAGE=false: the same, phase 1 in arrival order'
      : 'this controller: SQS -> patch every affected Deployment at once (bounded concurrency, triage order) -> cordon -> watch all rollouts',
    patches: true,
    async prepare(run) {
      running = await startController(run.bench, run.scenario.namespace, run.section, entry, env);
      callsBefore = await sampleApiCalls(running.metricsPort);
    },
    async act() {
      if (running) running.cpuAtWarning = running.sample().cpuSeconds;
    },
    followPhase1: true,
    async snapshot() {
      if (!running) return;
      end = running.sample();
      callsAfter = await sampleApiCalls(running.metricsPort);
    },
    async finish(run: StrategyRun): Promise<StrategyOutcome> {
      if (!running) return { notes: ['the controller did not start'] };
      end ??= running.sample();
      const { exitCode } = await running.stop();
      stopped = true;
      const notes =
        exitCode === 0
          ? []
          : [
              exitCode === null
                ? `the controller did not finish its SIGTERM drain within 20 s and was killed (log ${running.logFile})`
                : `the controller exited with ${exitCode} on SIGTERM (log ${running.logFile})`,
            ];
      return {
        notes,
        controller: {
          runtime: entry ? 'build' : 'tsx',
          cpuSeconds: end.cpuSeconds - (running.cpuAtWarning ?? 0),
          cpuSecondsTotal: end.cpuSeconds,
          peakRssMiB: end.peakRssMiB,
          phase1Logged: running.phase1Logged,
          ...(running.lastPatchLoggedAt !== undefined && { lastPatchLoggedSeconds: Math.round(running.lastPatchLoggedAt - run.warnedAt) / 1000 }),
          ...(callsBefore && callsAfter && { apiCalls: apiCallsBetween(callsBefore, callsAfter) }),
        },
      };
    },
    async dispose() {
      if (running && !stopped) {
        stopped = true;
        await running.stop();
      }
    },
  };
}
