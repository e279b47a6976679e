// This controller, two-phase: the real `spot-orchestrator run` in its own process, namespace mode,
// reading the warning from its own SQS queue fed by the EventBridge rule.
import { startController, type ProcSample, type RunningController } from '../lib/controller-process.js';
import type { Strategy, StrategyOutcome, StrategyRun } from '../lib/strategy.js';

export function controllerStrategy(entry: string | undefined): Strategy {
  let running: RunningController | undefined;
  let stopped = false;
  let end: ProcSample | undefined;
  return {
    name: 'controller',
    describe: 'this controller: SQS -> cordon -> patch every affected Deployment at once (bounded concurrency) -> watch all rollouts',
    patches: true,
    async prepare(run) {
      running = await startController(run.bench, run.scenario.namespace, run.section, entry);
    },
    async act() {
      if (running) running.cpuAtWarning = running.sample().cpuSeconds;
    },
    followPhase1: true,
    async snapshot() {
      if (running) end = running.sample();
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
      void run;
      return {
        notes,
        controller: {
          runtime: entry ? 'build' : 'tsx',
          cpuSeconds: end.cpuSeconds - (running.cpuAtWarning ?? 0),
          cpuSecondsTotal: end.cpuSeconds,
          peakRssMiB: end.peakRssMiB,
          phase1Logged: running.phase1Logged,
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
