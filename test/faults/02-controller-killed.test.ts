// Fault 2, the controller killed. Iterations of: an interruption, a SIGKILL at a random point of
// phase 1 or phase 2 (sometimes a second one during the restart), a random time dead, a restart.
// Every affected Deployment must end healthy on Fargate with exactly one move patch and one strategy
// restore (generation and template checks), the warning must be handled at least once, and its
// message deleted only after the work: whenever the queue is found empty at a kill, every Deployment
// already carries the move.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { queueDepth, queueEmpty } from '../../testground/src/aws.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { auditNamespace } from '../support/faults-audit.js';
import { FaultController, scanForSecrets } from '../support/faults-controller.js';
import { createFleet, progress, waitMoved, type Fleet } from '../support/faults-fleet.js';
import { ScenarioLedger } from '../support/faults-ledger.js';
import { full, Random } from '../support/faults-random.js';
import { eventually, testGround } from '../support/ground.js';
import { faultScenario } from '../support/scenario.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const ledger = new ScenarioLedger('controller killed (SIGKILL)', 2);
const rnd = new Random('controller-killed');
const POINTS = ['phase 1, before or at the receive', 'phase 1, among the patches', 'phase 2, rollouts in flight'] as const;
type KillPoint = (typeof POINTS)[number];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fault: controller killed at random points of phase 1 and phase 2', () => {
  const controllers: FaultController[] = [];
  // The message a dead controller held comes back after 2 s.
  const scenario = faultScenario(t, ledger, {
    prefix: 'fkill',
    visibilityTimeoutSeconds: 2,
    controllers: () => controllers,
    teardown: async () => injector.cancel(),
  });

  /** Waits for the kill point, then kills; returns what the cluster and the queue said at that moment. */
  async function killAt(c: FaultController, point: KillPoint, fleet: Fleet): Promise<string> {
    const all = fleet.names.length;
    if (point === POINTS[0]) {
      await sleep(rnd.int(0, 400));
    } else if (point === POINTS[1]) {
      await eventually('the first patch', async () => ((await progress(t, fleet)).patched >= 1 ? true : undefined), 30_000, 10);
      await sleep(rnd.int(0, 80));
    } else {
      await eventually('every patch', async () => ((await progress(t, fleet)).patched === all ? true : undefined), 30_000, 50);
      await sleep(rnd.int(0, 5000));
    }
    await c.kill('SIGKILL');
    ledger.add('faults');
    const { visible, hidden } = await queueDepth(t.ground, scenario.queueUrl);
    const depth = visible + hidden;
    const { patched, inFlight } = await progress(t, fleet);
    // Deleted only after the work: an empty queue means phase 1 was done for every Deployment.
    assert.ok(depth > 0 || patched === all, `the message was deleted with only ${patched}/${all} Deployments patched`);
    return `${point}: ${patched}/${all} patched, ${inFlight} in flight, message ${depth > 0 ? 'still queued' : 'deleted'}`;
  }

  it('every affected Deployment ends on Fargate, patched once, and the message is handled at least once', () =>
    ledger.run(async () => {
      const { namespace, queueUrl, secrets } = scenario;
      const iterations = full(6, 2);
      const journal: string[] = [];
      const points: string[] = [];
      for (let i = 0; i < iterations; i++) {
        const point = POINTS[i % POINTS.length]!;
        const maxPatches = rnd.pick([1, 2, 5, 50]);
        const fleet = await createFleet(t, injector, {
          namespace,
          nodes: 1,
          deployments: 10,
          replicas: () => rnd.int(1, 2),
          // New pods take a moment to become Ready, so phase 2 lasts long enough to be hit.
          podAnnotations: { 'testground.spot-fargate.io/ready-after': '1500ms' },
          prefix: `k${i}`,
        });
        const env = { MODE: 'namespace', NAMESPACE: namespace, SQS_QUEUE_URL: queueUrl, ROLLOUT_TIMEOUT: '60s', MAX_CONCURRENT_PATCHES: String(maxPatches) };
        const spawned: FaultController[] = [];
        const start = async (label: string) => {
          const c = await FaultController.spawn(t, secrets, env, label);
          controllers.push(c);
          spawned.push(c);
          await c.waitFor('controller started');
          return c;
        };
        const first = await start(`kill${i}-a`);
        const interruption = await injector.interrupt(fleet.nodes, { windowMs: 600_000, terminate: false });
        const instanceId = interruption.instances[0]!.instanceId;
        const atKill = await killAt(first, point, fleet);
        points.push(atKill.replace(/, message .*$/, ''));
        const steps = [`iteration ${i + 1} (max ${maxPatches} patches at once): killed in ${atKill}`];
        await sleep(rnd.int(0, 3000));
        const second = await start(`kill${i}-b`);
        let last = second;
        if (rnd.chance(0.5)) {
          // Killed again while it resumes.
          await sleep(rnd.int(100, 2500));
          await second.kill('SIGKILL');
          ledger.add('faults');
          steps.push('killed again while resuming');
          await sleep(rnd.int(0, 2000));
          last = await start(`kill${i}-c`);
        }
        const moved = await waitMoved(t, fleet, 90_000);
        await eventually('the message deleted', async () => ((await queueEmpty(t.ground, queueUrl)) ? true : undefined), 30_000, 250);
        const { problems } = await auditNamespace(t, ledger, namespace, fleet.before, fleet.sentinels, { compareResourceVersion: true });
        assert.deepEqual(problems, [], `${steps.join('; ')}; pending ${moved.pending.join(', ')}`);

        // Handled at least once: some process saw the warning and finished phase 1 for it.
        const lines = spawned.flatMap((c) => c.lines());
        const eventIds = new Set(
          lines.filter((l) => l.message === 'spot interruption warning' && JSON.stringify(l.instances).includes(instanceId)).map((l) => l.eventId as string),
        );
        assert.ok(eventIds.size >= 1, 'the warning was never handled');
        // Phase 1 finished by some process; or a process killed after its last patch left every move
        // in flight, the next one resumed and finished them all from the annotations, and the
        // redelivered warning then found nothing left to do.
        const ofWarning = lines.filter((l) => eventIds.has(l.eventId as string));
        const phase1Done = ofWarning.some((l) => l.message === 'phase 1 done: every affected Deployment patched');
        const foundDone = ofWarning.some((l) => l.message === 'message handled' && l.outcome === 'nothing_to_do' && l.ack === true);
        assert.ok(phase1Done || foundDone, 'no process finished phase 1 for the warning, nor found its work done on redelivery');
        if (!phase1Done) steps.push('phase 1 finished by resuming, the redelivery found nothing to do');
        const handled = lines.filter((l) => l.message === 'spot interruption warning' && eventIds.has(l.eventId as string)).length;
        steps.push(`warning handled ${handled}x, resumed from annotations ${lines.filter((l) => l.message === 'resuming a move left in flight').length}x`);
        journal.push(steps.join('; '));

        assert.equal(await last.kill('SIGTERM'), 0, 'SIGTERM after the faults: drains and exits 0');
        ledger.add('cases');
        await injector.terminateNode(fleet.nodes[0]!);
      }
      for (const line of journal) console.log(`# ${line}`);
      for (const [i, p] of points.entries()) ledger.note(`kill ${i + 1}`, p);
      const leaks = await scanForSecrets(t, ledger, secrets, controllers, [namespace]);
      assert.deepEqual(leaks, []);
    }));
});
