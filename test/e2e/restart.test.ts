// Level-triggered: the controller killed (SIGKILL) in the middle of a migration and started again
// finishes the job from what the cluster says, and from the message the dead one never deleted.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { eventually, isPodReady, podsOf, testGround } from '../support/ground.js';
import { ReadinessSampler } from '../support/controller.js';
import { spawnController, type ControllerProcess } from '../support/process.js';
import { scenarioResources } from '../support/scenario.js';
import { firstPatchSeen, spotAppsOnFreshPool } from '../support/spot-apps.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);

describe('controller killed mid-migration', () => {
  const processes: ControllerProcess[] = [];
  // A short visibility timeout so the message the dead controller held comes back quickly.
  const scenario = scenarioResources(t, {
    prefix: 'restart',
    visibilityTimeoutSeconds: 2,
    teardown: async () => {
      injector.cancel();
      for (const p of processes) p.child.kill('SIGKILL');
    },
  });

  it('finishes every migration after a restart, patching each Deployment once, never below desired', async () => {
    const { namespace, queueUrl } = scenario;
    const { names, nodes } = await spotAppsOnFreshPool(t, injector, namespace, { apps: 6 });
    const sampler = new ReadinessSampler();
    await sampler.start(t, namespace);
    const env = { MODE: 'namespace', NAMESPACE: namespace, SQS_QUEUE_URL: queueUrl, ROLLOUT_TIMEOUT: '60s' };
    const first = await spawnController(t, env);
    processes.push(first);
    await eventually('the first controller to start', async () => (first.output().includes('controller started') ? true : undefined), 30_000);

    const interruption = await injector.interrupt(nodes, { windowMs: 400_000 });
    // Kill it as soon as phase 1 has begun: some Deployments patched, their rollouts in flight.
    await firstPatchSeen(t, namespace);
    first.child.kill('SIGKILL');
    await first.exited;
    const patchedBeforeKill = (await t.apps.listNamespacedDeployment({ namespace })).items.filter(
      (d) => d.metadata?.annotations?.['spot-orchestrator/state'] === 'fargate',
    ).length;

    const second = await spawnController(t, env);
    processes.push(second);
    for (const name of names) {
      await eventually(
        `${name} healthy on Fargate`,
        async () => {
          const d = await t.apps.readNamespacedDeployment({ name, namespace });
          const a = d.metadata?.annotations ?? {};
          return a['spot-orchestrator/state'] === 'fargate' && !a['spot-orchestrator/phase'] ? d : undefined;
        },
        90_000,
      );
    }
    sampler.stop();
    for (const name of names) {
      const d = await t.apps.readNamespacedDeployment({ name, namespace });
      // Generation 1 at creation, 2 for the move, 3 for the strategy given back: nothing twice.
      assert.equal(d.metadata?.generation, 3, `${name} patched ${Number(d.metadata?.generation) - 1} times`);
      const pods = (await podsOf(t, namespace, name)).filter((p) => !p.metadata?.deletionTimestamp);
      assert.equal(pods.length, 2);
      assert.ok(pods.every((p) => isPodReady(p) && p.spec?.nodeName?.startsWith('fargate-ip-')));
      assert.ok((sampler.lowestReady.get(name) ?? 0) >= 2, `${name} dipped to ${sampler.lowestReady.get(name)} ready`);
    }
    assert.ok(patchedBeforeKill > 0, 'killed after the first patch');
    assert.ok(second.output().includes('resuming a move left in flight'), 'the second controller resumed from the annotations');
    second.child.kill('SIGTERM');
    assert.equal(await second.exited, 0, 'SIGTERM drains and exits cleanly');
    void interruption;
    for (const n of nodes) await injector.terminateNode(n);
  });
});
