// The Go original's approach, the counterexample: cordon, then patch one Deployment (with exactly
// the patch this controller makes: planMigration), wait for its rollout, then the next. It starts
// the moment the warning is sent (no queue in between), which only flatters it.
import { JSON_PATCH, MERGE_PATCH } from '../../src/kube/api.js';
import { benchMigrationPlan } from '../lib/plan.js';
import { retrying } from '../lib/context.js';
import { rolloutComplete } from '../lib/trackers.js';
import type { Strategy, StrategyRun } from '../lib/strategy.js';

export function sequentialStrategy(): Strategy {
  let patched = 0;
  let timedOut = 0;
  let skipped = 0;
  let errors = 0;
  let left = 0;
  return {
    name: 'sequential',
    describe: 'cordon, then for each affected Deployment in turn: the same patch (planMigration), wait for its rollout, next',
    patches: true,
    async act(run: StrategyRun) {
      const b = run.bench;
      const ns = run.scenario.namespace;
      await Promise.all(
        run.doomed.map((name) => retrying(() => b.core.patchNode({ name, body: { spec: { unschedulable: true } } }, MERGE_PATCH)).catch(() => undefined)),
      );
      const rolloutTimeoutMs = b.scaled(120_000);
      const eventId = `bench-sequential-${run.warnedAt}`;
      for (const [i, name] of run.affected.entries()) {
        if (run.signal.aborted) {
          left = run.affected.length - i;
          break;
        }
        try {
          const current = await retrying(() => b.apps.readNamespacedDeployment({ name, namespace: ns }));
          const plan = benchMigrationPlan(current, eventId, run.doomed);
          if (plan.action === 'skip') {
            skipped++;
            continue;
          }
          await retrying(() => b.apps.patchNamespacedDeployment({ name, namespace: ns, body: plan.ops }, JSON_PATCH));
          patched++;
        } catch (err) {
          errors++;
          b.say(run.section, `patching ${name}: ${String(err)}`);
          continue;
        }
        const done = await run.scenario.tracker.waitFor(name, rolloutComplete, rolloutTimeoutMs, run.signal);
        if (!done && !run.signal.aborted) timedOut++;
      }
    },
    async finish(run) {
      const notes: string[] = [];
      if (left > 0) notes.push(`${left} of ${run.affected.length} affected Deployments not yet patched when the observation ended`);
      if (timedOut > 0) notes.push(`${timedOut} rollouts hit the (scaled) 120 s rollout timeout`);
      if (skipped > 0) notes.push(`${skipped} skipped by planMigration`);
      if (errors > 0) notes.push(`${errors} patch errors`);
      return { patchesIssued: patched, notes };
    },
  };
}
