// Fault 3, the Kubernetes API server. (a) It is restarted (crash, or graceful stop) while the
// rollouts of phase 2 are in flight: the controller's watches fail and relist, and every rollout is
// still seen through to the end. (b) Another writer changes the same Deployments from phase 1 to
// the end of phase 2 (PUTs with a resourceVersion, as kubectl edit does): both sides meet
// conflicts, retry, and at the end both changes are there; the generations it adds, not yet
// observed when the health check looks, do not fail the move. (c) The API server is restarted with
// --max-requests-inflight lowered (and API Priority and Fairness off, so the limit answers 429 at
// once): the controller, under a ServiceAccount (system:masters is never throttled), gets real 429s
// with Retry-After and retries its way through.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseProviderId } from '../../src/events/provider-id.js';
import { MERGE_PATCH } from '../../src/kube/api.js';
import { publishEc2Events, queueEmpty } from '../../testground/src/aws.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { type AuditOptions, auditNamespace } from '../support/faults-audit.js';
import { FaultController, M, metric, scanForSecrets } from '../support/faults-controller.js';
import { createFleet, progress, waitMoved } from '../support/faults-fleet.js';
import { freezeComponent, restartComponent, serviceAccountKubeconfig } from '../support/faults-ground.js';
import { ScenarioLedger } from '../support/faults-ledger.js';
import { full, Random } from '../support/faults-random.js';
import { eventually, testGround } from '../support/ground.js';
import { faultScenario } from '../support/scenario.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const ledger = new ScenarioLedger('API server restarted, 409 conflicts, 429 throttling', 3);
const rnd = new Random('api-server');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WRITER_LABEL = 'faults.example/writer';
const WRITER_ANNOTATION = 'faults.example/writer-round';
const THROTTLE_FLAGS = ['--enable-priority-and-fairness=false', '--max-requests-inflight=2', '--max-mutating-requests-inflight=1'];

describe('fault: the API server restarted, conflicting writers, throttling', () => {
  let throttled = false;
  const controllers: FaultController[] = [];
  const scenario = faultScenario(t, ledger, {
    prefix: 'fapi',
    visibilityTimeoutSeconds: 2,
    controllers: () => controllers,
    teardown: async () => {
      injector.cancel();
      // Whatever happened, the ground gets its API server back with the original flags.
      if (throttled) await restoreApiServer().catch((err) => console.error(`restoring the API server: ${err}`));
      const leaks = await scanForSecrets(t, ledger, scenario.secrets, controllers, [scenario.namespace]).catch(() => []);
      if (leaks.length > 0) console.error(`secrets leaked: ${leaks.join('\n')}`);
    },
  });

  // Generous: after an API server outage, kube-controller-manager may take a minute to resume.
  const env = () => ({ MODE: 'namespace', NAMESPACE: scenario.namespace, SQS_QUEUE_URL: scenario.queueUrl, ROLLOUT_TIMEOUT: '150s', CHECK_INTERVAL: '500ms' });
  /** The Deployment on Fargate with its rollout complete, as the deployment controller reports it. */
  const rolledOut = async (namespace: string, name: string) => {
    const d = await t.apps.readNamespacedDeployment({ name, namespace });
    const st = d.status ?? {};
    const want = d.spec?.replicas ?? 1;
    return (
      d.metadata?.annotations?.['spot-orchestrator/state'] === 'fargate' &&
      (st.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
      st.updatedReplicas === want &&
      st.availableReplicas === want &&
      st.replicas === want
    );
  };
  const allRolledOut = (namespace: string, names: string[]) => async () =>
    (await Promise.all(names.map((n) => rolledOut(namespace, n)))).every(Boolean) ? true : undefined;
  /**
   * The API server back with its original flags, and kube-controller-manager and kube-scheduler
   * started afresh after it. Their informers, refused with 429s for minutes and then cut off by the
   * restart, back off: in a measured run kube-controller-manager created no ReplicaSet for 90 s
   * after the restore, long enough to fail the next scenario's setup. The controller under test is
   * not restarted; it is the one whose retries the scenario checks.
   */
  async function restoreApiServer(): Promise<void> {
    await restartComponent(t, 'kube-apiserver');
    await restartComponent(t, 'kube-controller-manager');
    await restartComponent(t, 'kube-scheduler');
  }
  const queueEmptied = async () => ((await queueEmpty(t.ground, scenario.queueUrl)) ? true : undefined);

  it('restarted during phase 2: watches relist and every rollout is still observed to the end', () =>
    ledger.run(async () => {
      const { namespace, secrets } = scenario;
      // When: right after phase 1 (every rollout in flight), or while the first completed rollouts
      // are being verified, so that the end of their move (the strategy given back) meets the
      // outage, down for longer than the client's own retries last.
      type When = 'phase 1 done' | 'rollouts being verified';
      const restarts: { kill: boolean; downForSeconds: number; when: When }[] = full(
        [
          { kill: true, downForSeconds: 3, when: 'phase 1 done' },
          { kill: false, downForSeconds: 0, when: 'phase 1 done' },
          { kill: true, downForSeconds: 8, when: 'rollouts being verified' },
        ],
        [
          { kill: true, downForSeconds: 2, when: 'phase 1 done' },
          { kill: true, downForSeconds: 8, when: 'rollouts being verified' },
        ],
      );
      for (const [i, how] of restarts.entries()) {
        const fleet = await createFleet(t, injector, {
          namespace,
          nodes: 1,
          deployments: 12,
          replicas: () => rnd.int(1, 2),
          // New pods take 4 s to become Ready: the restart lands while the rollouts are in flight.
          podAnnotations: { 'testground.spot-fargate.io/ready-after': '4s' },
          prefix: `r${i}`,
        });
        // Verification waits 3 s after a rollout completes: the window the outage must hit.
        const c = await FaultController.spawn(
          t,
          secrets,
          { ...env(), VERIFICATION_DELAY: how.when === 'rollouts being verified' ? '3s' : '300ms' },
          `apirestart${i}`,
        );
        controllers.push(c);
        await c.waitFor('controller started');
        await injector.interrupt(fleet.nodes, { windowMs: 1_200_000, terminate: false });
        await eventually('phase 1 done', async () => ((await progress(t, fleet)).patched === fleet.names.length ? true : undefined), 30_000, 50);
        if (how.when === 'rollouts being verified') {
          const verifying = () => c.lines().filter((l) => l.message === 'rollout complete; verifying health').length;
          await eventually('rollouts being verified', async () => (verifying() >= 4 ? true : undefined), 60_000, 20);
        }
        const before = await progress(t, fleet);
        const relistsBefore = c.lines().filter((l) => String(l.message).startsWith('watch of ')).length;
        const report = await restartComponent(t, 'kube-apiserver', { kill: how.kill, downForSeconds: how.downForSeconds });
        ledger.add('faults');
        console.log(`# ${report.replaceAll('\n', '; ')} with ${before.inFlight}/${fleet.names.length} rollouts in flight`);

        const moved = await waitMoved(t, fleet, 180_000, { allowRollback: true });
        await eventually('the message deleted', queueEmptied, 30_000, 250);
        const { problems, audits } = await auditNamespace(t, ledger, namespace, fleet.before, fleet.sentinels, {
          compareResourceVersion: true,
          allowRollback: true,
        });
        assert.deepEqual(problems, [], `pending: ${moved.pending.join(', ')}`);
        assert.ok(c.alive, 'the controller survived the restart');
        const relists = c
          .lines()
          .filter((l) => String(l.message).startsWith('watch of '))
          .slice(relistsBefore);
        assert.ok(relists.length > 0, 'the watches noticed the restart and relisted');
        assert.equal((await c.readyz()).status, 200, 'ready again');
        const finishRetries = c.lines().filter((l) => String(l.message).startsWith('could not record the end of the move')).length;
        ledger.note(
          `restart ${i + 1}`,
          `${how.kill ? 'SIGKILL' : 'SIGTERM'} at ${how.when}, down ${how.downForSeconds} s, ${before.inFlight} rollouts in flight, ${relists.length} watch restarts, ${finishRetries} failed ends of a move retried, ${audits.filter((a) => a.rolledBack).length} rolled back`,
        );
        ledger.add('cases');
        await c.kill('SIGTERM');
        await injector.terminateNode(fleet.nodes[0]!);
      }
    }));

  it('started while the API server is down, with the warning already queued: it acts only once it knows the cluster', () =>
    ledger.run(async () => {
      const { namespace, secrets } = scenario;
      const fleet = await createFleet(t, injector, { namespace, nodes: 1, deployments: 6, prefix: 'd' });
      const node = await t.core.readNode({ name: fleet.nodes[0]! });
      const { instanceId, zone } = parseProviderId(node.spec?.providerID)!;
      await restartComponent(t, 'kube-apiserver', { only: 'stop', kill: true });
      let down = true;
      ledger.add('faults');
      try {
        const c = await FaultController.spawn(t, secrets, env(), 'started-blind');
        controllers.push(c);
        // Its ops server answers before it can list anything: not ready, and the caches are why.
        const ready = await eventually('the ops server', async () => c.readyz().catch(() => undefined), 20_000, 100);
        assert.equal(ready.status, 503, `ready with no cache: ${JSON.stringify(ready.body)}`);
        assert.ok(ready.body.waitingFor?.includes('cachesSynced'), JSON.stringify(ready.body));
        // EventBridge does not need the API server: the warning is queued while the controller waits.
        await publishEc2Events(t.ground, [
          {
            detailType: 'EC2 Spot Instance Interruption Warning',
            instanceId,
            zone: zone ?? 'us-east-1a',
            detail: { 'instance-action': 'terminate' },
            time: new Date(),
          },
        ]);
        await sleep(1500);
        assert.ok(c.alive, 'the controller survived a start without an API server');
        assert.ok(!c.output().includes('controller started'), 'it started acting with empty caches');
        await restartComponent(t, 'kube-apiserver', { only: 'start' });
        down = false;
        // kube-controller-manager itself can take up to a minute to resume its watches after an outage.
        const moved = await waitMoved(t, fleet, 150_000);
        await eventually('the message deleted', queueEmptied, 30_000, 250);
        const { problems } = await auditNamespace(t, ledger, namespace, fleet.before, fleet.sentinels, { compareResourceVersion: true });
        assert.deepEqual(problems, [], `pending: ${moved.pending.join(', ')}`);
        assert.ok(!c.output().includes('interruption for instances not in this cluster'), 'the warning was taken for a foreign one');
        ledger.add('cases');
        await c.kill('SIGTERM');
      } finally {
        if (down) await restartComponent(t, 'kube-apiserver', { only: 'start' });
      }
      await injector.terminateNode(fleet.nodes[0]!);
    }));

  it('another writer changes the same Deployments meanwhile: conflicts are retried, and both changes survive', () =>
    ledger.run(async () => {
      const { namespace, secrets } = scenario;
      const fleet = await createFleet(t, injector, { namespace, nodes: 1, deployments: full(12, 8), prefix: 'w' });
      const c = await FaultController.spawn(t, secrets, env(), 'conflicts');
      controllers.push(c);
      await c.waitFor('controller started');

      // The writer: read, change a label and an annotation, PUT with the resourceVersion read;
      // on 409, read again and redo. It remembers its last accepted change per Deployment.
      let stop = false;
      // Hammering while phase 1 patches; then the pace of an HPA or a GitOps tool through phase 2.
      let calm = false;
      let writes = 0;
      let writerConflicts = 0;
      const last = new Map<string, number>();
      // A Deployment's generation also counts annotation changes (they are copied to its
      // ReplicaSets), so each accepted write of the writer adds one.
      const accepted = new Map<string, number>();
      const writer = async (name: string) => {
        for (let round = 1; !stop; ) {
          try {
            const d = await t.apps.readNamespacedDeployment({ name, namespace });
            d.metadata!.labels = { ...d.metadata!.labels, [WRITER_LABEL]: `w${round}` };
            d.metadata!.annotations = { ...d.metadata!.annotations, [WRITER_ANNOTATION]: String(round) };
            await t.apps.replaceNamespacedDeployment({ name, namespace, body: d });
            last.set(name, round);
            accepted.set(name, (accepted.get(name) ?? 0) + 1);
            writes++;
            round++;
          } catch (err) {
            if ((err as { code?: number }).code !== 409) throw err;
            writerConflicts++;
          }
          await sleep(calm ? rnd.int(300, 1200) : rnd.int(0, 40));
        }
      };
      const writers = fleet.names.map((n) => writer(n));
      await sleep(300);
      await injector.interrupt(fleet.nodes, { windowMs: 1_200_000, terminate: false });
      // Through phase 1 and all of phase 2 (verification and the strategy restores): each change is
      // a generation the deployment controller may not have observed yet when the health check looks.
      // 60 s at most; what is not done by then must finish after.
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const p = await progress(t, fleet);
        calm ||= p.patched === fleet.names.length;
        if (p.patched === fleet.names.length && p.inFlight === 0) break;
        await sleep(100);
      }
      stop = true;
      await Promise.all(writers);

      const perDeployment = (name: string) => ({
        writerLabels: { [WRITER_LABEL]: `w${last.get(name)}` },
        writerAnnotations: { [WRITER_ANNOTATION]: String(last.get(name)) },
        expectedGenerationBump: accepted.get(name) ?? 0,
      });
      const moved = await waitMoved(t, fleet, 60_000, { perDeployment });
      await eventually('the message deleted', queueEmptied, 30_000, 250);
      const { problems } = await auditNamespace(t, ledger, namespace, fleet.before, fleet.sentinels, { perDeployment });
      assert.deepEqual(problems, [], `pending: ${moved.pending.join(', ')}`);
      const text = await c.metrics();
      // The controller's patches test the resourceVersion: a stale one is refused with 409 or with 422 (a failed test op).
      const controllerConflicts = metric(text, M.apiErrors, { verb: 'patch', code: '409' }) + metric(text, M.apiErrors, { verb: 'patch', code: '422' });
      console.log(`# writer: ${writes} accepted writes, ${writerConflicts} conflicts; controller: ${controllerConflicts} refused patches recomputed`);
      assert.ok(writes >= fleet.names.length, 'the other writer wrote to every Deployment');
      assert.ok(writerConflicts + controllerConflicts > 0, 'no conflict happened: the scenario tested nothing');
      ledger.add('faults', writerConflicts + controllerConflicts);
      ledger.add('cases');
      ledger.note('conflicts', `${writes} concurrent writes; ${writerConflicts} writer 409s; ${controllerConflicts} controller patches refused and recomputed`);
      await c.kill('SIGTERM');
      await injector.terminateNode(fleet.nodes[0]!);
    }));

  /**
   * A fleet of 3 moved with a long verification delay; once every rollout is complete, `component`
   * is frozen, `disturb` changes each Deployment, and the freeze lasts past the delay and both
   * checks. The moves must still end healthy on Fargate, with no failed health check; the audit
   * expects the disturbance (perDeployment).
   */
  async function disturbedDuringVerification(o: {
    prefix: string;
    label: string;
    replicas?: number;
    freeze: Parameters<typeof freezeComponent>[0];
    disturb: (name: string) => Promise<unknown>;
    perDeployment: () => AuditOptions;
  }): Promise<{ c: FaultController; names: string[] }> {
    const { namespace, secrets } = scenario;
    const fleet = await createFleet(t, injector, { namespace, nodes: 1, deployments: 3, prefix: o.prefix, replicas: () => o.replicas ?? 1 });
    // A verification delay long enough to freeze the component inside it, and checks that would
    // all be spent while it stays frozen.
    const c = await FaultController.spawn(
      t,
      secrets,
      { ...env(), VERIFICATION_DELAY: '8s', HEALTH_CHECK_RETRIES: '2', HEALTH_CHECK_INTERVAL: '500ms' },
      o.label,
    );
    controllers.push(c);
    await c.waitFor('controller started');
    await injector.interrupt(fleet.nodes, { windowMs: 1_200_000, terminate: false });
    await eventually('every rollout complete', allRolledOut(namespace, fleet.names), 60_000, 100);
    const thaw = freezeComponent(o.freeze);
    ledger.add('faults');
    try {
      for (const name of fleet.names) await o.disturb(name);
      // Frozen past the verification delay and both checks of every Deployment (each began its
      // delay before its rollout was seen complete here).
      await sleep(8000 + 2 * 500 + 1500);
    } finally {
      thaw();
    }
    const moved = await waitMoved(t, fleet, 60_000, { perDeployment: o.perDeployment });
    await eventually('the message deleted', queueEmptied, 30_000, 250);
    const { problems } = await auditNamespace(t, ledger, namespace, fleet.before, fleet.sentinels, { perDeployment: o.perDeployment });
    assert.deepEqual(problems, [], `pending: ${moved.pending.join(', ')}`);
    assert.deepEqual(
      c
        .lines()
        .filter((l) => l.message === 'health check failed')
        .map((l) => l.problem),
      [],
      'a disturbance during verification was counted as a failed health check',
    );
    assert.equal(c.lines().filter((l) => l.message === 'healthy on Fargate').length, fleet.names.length);
    ledger.add('cases');
    await c.kill('SIGTERM');
    await injector.terminateNode(fleet.nodes[0]!);
    return { c, names: fleet.names };
  }

  it('a change the deployment controller has not observed when health is verified is waited for, not taken for a failed check', () =>
    ledger.run(async () => {
      const { namespace } = scenario;
      const { c, names } = await disturbedDuringVerification({
        prefix: 'g',
        label: 'unobserved',
        // kube-controller-manager frozen: a label and an annotation, as a GitOps tool would write them,
        // make a generation that nobody observes.
        freeze: 'kube-controller-manager',
        disturb: (name) =>
          t.apps.patchNamespacedDeployment(
            { name, namespace, body: { metadata: { labels: { [WRITER_LABEL]: 'w1' }, annotations: { [WRITER_ANNOTATION]: '1' } } } },
            MERGE_PATCH,
          ),
        perDeployment: () => ({ writerLabels: { [WRITER_LABEL]: 'w1' }, writerAnnotations: { [WRITER_ANNOTATION]: '1' }, expectedGenerationBump: 1 }),
      });
      const met = new Set(
        c
          .lines()
          .filter((l) => l.message === 'health not known yet; verifying again')
          .map((l) => String(l.deployment)),
      );
      assert.deepEqual(
        names.filter((n) => !met.has(`${namespace}/${n}`)),
        [],
        'a verification that never met the unobserved generation: the scenario tested nothing for these',
      );
    }));

  it('an autoscaler scaling up during verification: the replicas it adds are still starting, and the move is not failed for them', () =>
    ledger.run(async () => {
      const { namespace } = scenario;
      await disturbedDuringVerification({
        prefix: 's',
        label: 'scaled',
        replicas: 2,
        // The Fargate simulator frozen: the replicas the scale-up adds stay Pending through every check.
        freeze: 'eks-simulator',
        disturb: (name) => t.apps.patchNamespacedDeploymentScale({ name, namespace, body: { spec: { replicas: 4 } } }, MERGE_PATCH),
        perDeployment: () => ({ expectedGenerationBump: 1 }),
      });
    }));

  it('throttled (real 429s from a lowered --max-requests-inflight): retried, every Deployment still moves', () =>
    ledger.run(async () => {
      const { namespace, secrets } = scenario;
      const fleet = await createFleet(t, injector, { namespace, nodes: 2, deployments: 24, prefix: 'q' });
      const kubeconfig = await serviceAccountKubeconfig(t);
      const report = await restartComponent(t, 'kube-apiserver', { extraFlags: THROTTLE_FLAGS });
      throttled = true;
      ledger.add('faults');
      console.log(`# ${report}`);
      const c = await FaultController.spawn(t, secrets, { ...env(), KUBECONFIG: kubeconfig }, 'throttled');
      controllers.push(c);
      await c.waitFor('controller started', 60_000);
      // At once: a controller that reports started must already know the cluster.
      await injector.interrupt(fleet.nodes, { windowMs: 1_200_000, terminate: false });
      const moved = await waitMoved(t, fleet, 180_000);
      await eventually('the message deleted', queueEmptied, 60_000, 500);
      const text = await c.metrics();
      const throttledCalls = metric(text, M.apiErrors, { code: '429' });
      const retriedLines = c.lines().filter((l) => l.message === 'Kubernetes API call failed; retrying' && /429|too many requests/i.test(String(l.err)));
      console.log(`# ${throttledCalls} API calls answered 429 and retried (${retriedLines.length} retry log lines)`);
      assert.ok(throttledCalls > 0, 'the API server never throttled the controller: the scenario tested nothing');
      assert.ok(
        retriedLines.some((l) => typeof l.delayMs === 'number' && (l.delayMs as number) >= 1000),
        'Retry-After (1 s) honoured',
      );
      ledger.add('faults', throttledCalls);
      await restoreApiServer();
      throttled = false;
      ledger.add('faults');
      // kube-controller-manager is throttled too, so a rollout may still be going when the wait
      // ends. What must not happen is a move the controller gave up on: once the throttle is
      // lifted, every pending one must finish without anybody's help.
      const after = moved.pending.length > 0 ? await waitMoved(t, fleet, 120_000) : moved;
      // Not the resourceVersion: restoreApiServer restarted kube-controller-manager, whose deployment
      // controller may write a Deployment's status on its resync (seen once in CI). What the
      // controller wrote still shows: spec, labels, annotations and generation, and a managedFields
      // entry under its name for any write of its own, status included.
      const { problems } = await auditNamespace(t, ledger, namespace, fleet.before, fleet.sentinels);
      assert.deepEqual(problems, [], `pending under the throttle: ${moved.pending.join(', ')}; after it: ${after.pending.join(', ')}`);
      ledger.add('cases');
      ledger.note('429s', throttledCalls);
      if (moved.pending.length > 0)
        ledger.note('finished after the throttle was lifted', `${moved.pending.length} of ${fleet.names.length} (rollouts still going after 180 s)`);
      await c.kill('SIGTERM');
      for (const n of fleet.nodes) await injector.terminateNode(n);
    }));
});
