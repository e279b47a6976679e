// Fault 5, load: 5000 opted-in Deployments (one replica each) spread over 50 KWOK spot nodes (about
// 100 pods on each; a node holds 250), and all 50 nodes interrupted within a second (50 warnings, as
// AWS sends one per instance). Every Deployment must end healthy on Fargate, patched once, and the
// controller's memory must stay bounded: its peak RSS (VmHWM) is reported. The short run (make
// test) runs the same scenario at 300 Deployments on 10 nodes.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { before, describe, it } from 'node:test';
import pLimit from 'p-limit';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { queueEmpty } from '../../testground/src/aws.js';
import { awsClientConfig } from '../../testground/src/ground.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { auditNamespace, listDeployments, sentinelSnapshot } from '../support/faults-audit.js';
import { FaultController, scanForSecrets } from '../support/faults-controller.js';
import { groundFile, restartComponent } from '../support/faults-ground.js';
import { fleetDeployment, OPT_IN, OPT_IN_KEY, progress, waitReady } from '../support/faults-fleet.js';
import { ScenarioLedger } from '../support/faults-ledger.js';
import { FAULTS_SHORT } from '../support/faults-random.js';
import { eventually, testGround, uniqueName } from '../support/ground.js';
import { faultScenario } from '../support/scenario.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const DEPLOYMENTS = Number(process.env.FAULTS_LOAD_DEPLOYMENTS ?? (FAULTS_SHORT ? 300 : 5000));
const NODES = Number(process.env.FAULTS_LOAD_NODES ?? (FAULTS_SHORT ? 10 : 50));
const ledger = new ScenarioLedger(`load: ${DEPLOYMENTS} Deployments, ${NODES} nodes interrupted within a second`, 6);
/**
 * How long every Deployment gets to be healthy on Fargate. Phase 2 is paced by the ground, not the
 * controller: every Fargate pod is a KWOK node of its own. On 2 cores a measured run at 5000 had
 * every move healthy 943 s after the warnings (about 6 a second after phase 1, with KWOK using a
 * whole core); before KWOK got its lease-only node stages, 2 a second. The bound is kept generous:
 * it only decides how long a failing run takes to say so.
 */
const SETTLE_MS = Number(process.env.FAULTS_LOAD_SETTLE_MINUTES ?? Math.max(15, Math.ceil(DEPLOYMENTS / 100))) * 60_000;
/** The controller's memory bound: peak RSS above this fails the scenario. */
const MAX_PEAK_RSS_MIB = Number(process.env.FAULTS_LOAD_MAX_RSS_MIB ?? 1024);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => console.log(`# [load ${new Date().toISOString().slice(11, 19)}] ${line}`);

describe('fault: load', () => {
  let c: FaultController | undefined;
  let tuned = false;
  const scenario = faultScenario(t, ledger, {
    prefix: 'fload',
    visibilityTimeoutSeconds: 30,
    controllers: () => [c],
    // Not waited for: thousands of objects go in the background (and the ground goes down after the suite).
    awaitNamespaceDeletion: false,
    teardown: async () => {
      injector.cancel();
      if (!tuned) return;
      for (const component of ['kwok', 'kube-controller-manager', 'kube-scheduler']) {
        await restartComponent(t, component).catch((err) => console.error(`restoring ${component}: ${err}`));
      }
    },
  });
  before(async () => {
    // Settings of the ground for this scenario only (restored after). They make the simulated
    // control plane keep up with 5000 more Fargate nodes on 2 cores; none of them touches the
    // controller under test:
    // - KWOK plays the kubelet of every Fargate node (one per pod) and renews its lease with 4
    //   workers: every 10 s at the ground's 40 s lease, 500 writes a second for 5000 nodes, which
    //   it cannot keep up with. A 10 min lease renews every 150 s. And KWOK gets its node stages
    //   for use with leases (status refreshed every 10-20 min, not every 20-45 s; see
    //   testground/scripts/kwok-stages.sh), which the ground writes beside its state.
    // - When a lease lapses anyway, the node lifecycle controller marks the node's pods NotReady
    //   and KWOK never makes them Ready again (a real kubelet would): its grace period is raised.
    // - kube-controller-manager syncs more Deployments and ReplicaSets at once, at a higher client
    //   rate, and kube-scheduler binds the 5000 spot pods of the setup faster than at 50 qps.
    tuned = true;
    const leaseNodeStages = join(dirname(groundFile()), 'kwok-lease-node-stages.yaml');
    await restartComponent(t, 'kwok', { extraFlags: ['--node-lease-duration-seconds=600', `--config=${leaseNodeStages}`] });
    await restartComponent(t, 'kube-controller-manager', {
      extraFlags: [
        '--node-monitor-grace-period=15m',
        '--kube-api-qps=1000',
        '--kube-api-burst=2000',
        '--concurrent-deployment-syncs=50',
        '--concurrent-replicaset-syncs=50',
      ],
    });
    await restartComponent(t, 'kube-scheduler', { extraFlags: ['--kube-api-qps=500', '--kube-api-burst=1000'] });
  });

  it(`${DEPLOYMENTS} Deployments on ${NODES} nodes interrupted within a second: every one on Fargate, memory bounded`, () =>
    ledger.run(async () => {
      const { namespace, queueUrl, secrets } = scenario;
      const started = Date.now();
      const pool = uniqueName('lpool');
      const nodes = await injector.addSpotNodes(NODES, { name: pool, suffix: '' });
      const names = Array.from({ length: DEPLOYMENTS }, (_, i) => `l${i}`);
      const sentinelAnnotations: Record<string, string>[] = [{}, { [OPT_IN_KEY]: 'false' }, { [OPT_IN_KEY]: 'yes' }, {}, {}];
      const sentinelNames = sentinelAnnotations.map((_, i) => `other-${i}`);
      const limit = pLimit(32);
      let created = 0;
      await Promise.all([
        ...names.map((name, i) =>
          limit(async () => {
            await t.apps.createNamespacedDeployment({ namespace, body: fleetDeployment(namespace, name, pool, 1, OPT_IN, undefined, i) });
            if (++created % 1000 === 0) log(`${created} Deployments created`);
          }),
        ),
        ...sentinelAnnotations.map((a, i) =>
          limit(() => t.apps.createNamespacedDeployment({ namespace, body: fleetDeployment(namespace, sentinelNames[i]!, pool, 1, a, undefined, i) })),
        ),
      ]);
      log(`all created in ${((Date.now() - started) / 1000).toFixed(0)} s; waiting for them to be Ready on spot`);
      await waitReady(t, namespace, [...names, ...sentinelNames], 600_000);
      const setupSeconds = (Date.now() - started) / 1000;
      log(`all Ready on spot after ${setupSeconds.toFixed(0)} s`);
      const all = await listDeployments(t, namespace);
      const before = new Map(names.map((n) => [n, all.get(n)!]));
      const sentinels = sentinelNames.map((n) => sentinelSnapshot(all.get(n)!));

      c = await FaultController.spawn(
        t,
        secrets,
        {
          MODE: 'namespace',
          NAMESPACE: namespace,
          SQS_QUEUE_URL: queueUrl,
          LOG_LEVEL: 'info',
          ROLLOUT_TIMEOUT: '15m',
          HEALTH_CHECK_RETRIES: '10',
          HEALTH_CHECK_INTERVAL: '2s',
        },
        'load',
      );
      await c.waitFor('controller started', 120_000);
      const rssAtStart = c.samplePeakRss();
      log(`controller started, VmHWM ${(rssAtStart / 1024).toFixed(0)} MiB`);
      const sampler = setInterval(() => c!.samplePeakRss(), 1000);
      try {
        // 50 warnings, one per instance, published within a second.
        const instances = await Promise.all(
          nodes.map(async (name) => {
            const n = await t.core.readNode({ name });
            return { name, instanceId: n.spec!.providerID!.split('/').pop()!, zone: n.metadata?.labels?.['topology.kubernetes.io/zone'] ?? 'us-east-1a' };
          }),
        );
        // One warm EventBridge client, five PutEvents of ten in parallel: all 50 within a second.
        const events = new EventBridgeClient(awsClientConfig(t.ground));
        await events.send(new PutEventsCommand({ Entries: [{ Source: 'faults.warmup', DetailType: 'warm-up', Detail: '{}' }] }));
        const publishStart = Date.now();
        const time = new Date(publishStart);
        const batches = Array.from({ length: Math.ceil(instances.length / 10) }, (_, b) => instances.slice(b * 10, b * 10 + 10));
        const issuedAt: number[] = [];
        const results = await Promise.all(
          batches.map((batch) => {
            issuedAt.push(Date.now());
            return events.send(
              new PutEventsCommand({
                Entries: batch.map((i) => ({
                  Source: 'aws.ec2',
                  DetailType: 'EC2 Spot Instance Interruption Warning',
                  Detail: JSON.stringify({ 'instance-id': i.instanceId, 'instance-action': 'terminate' }),
                  Resources: [`arn:aws:ec2:${i.zone}:instance/${i.instanceId}`],
                  Time: time,
                })),
              }),
            );
          }),
        );
        const publishMs = Date.now() - publishStart;
        assert.equal(
          results.reduce((n, r) => n + (r.FailedEntryCount ?? 0), 0),
          0,
          'EventBridge refused some warnings',
        );
        // All 50 carry the same time and were sent at once; moto may take a moment to accept them.
        assert.ok(Math.max(...issuedAt) - publishStart < 1000, 'the warnings were not sent within a second');
        ledger.add('faults', NODES);
        log(`${NODES} warnings sent at once (time ${time.toISOString()}), accepted by EventBridge after ${publishMs} ms`);
        ledger.note('warnings', `${NODES} sent at once, all with the same time; EventBridge (moto) accepted them in ${publishMs} ms`);

        const fleet = { namespace, names };
        let allPatchedAt = 0;
        let settledAt = 0;
        const deadline = Date.now() + SETTLE_MS;
        let lastProgress = '';
        for (let last = ''; Date.now() < deadline; ) {
          const p = await progress(t, fleet);
          if (!allPatchedAt && p.patched === names.length) allPatchedAt = Date.now();
          const line = `${p.patched}/${names.length} patched, ${p.inFlight} in flight, VmHWM ${(c.samplePeakRss() / 1024).toFixed(0)} MiB`;
          if (line !== last) log(line);
          last = line;
          lastProgress = line;
          if (p.patched === names.length && p.inFlight === 0) {
            settledAt = Date.now();
            break;
          }
          assert.ok(c.alive, `the controller died: ${c.output().slice(-3000)}`);
          await sleep(5000);
        }
        if (allPatchedAt) ledger.note('all patched after', `${((allPatchedAt - publishStart) / 1000).toFixed(1)} s`);
        if (!settledAt) ledger.note('at the end of the wait', lastProgress);
        assert.ok(settledAt > 0, `not every Deployment settled on Fargate in ${SETTLE_MS / 60_000} minutes: ${lastProgress}`);
        await eventually('the queue emptied', async () => ((await queueEmpty(t.ground, queueUrl)) ? true : undefined), 60_000, 1000);
        // Every pod on Fargate and Ready (the old ones may still be going).
        let problems: string[] = [];
        const auditStart = Date.now();
        for (;;) {
          const dry = await auditNamespace(t, new ScenarioLedger('dry', 0), namespace, before, sentinels, { compareResourceVersion: true });
          problems = dry.problems;
          if (problems.length === 0 || Date.now() - auditStart > 120_000) break;
          await sleep(5000);
        }
        const audit = await auditNamespace(t, ledger, namespace, before, sentinels, { compareResourceVersion: true });
        assert.deepEqual(audit.problems.slice(0, 20), [], `${audit.problems.length} problems`);

        const phase1 = c.lines().filter((l) => l.message === 'phase 1 done: every affected Deployment patched');
        const phase1Max = Math.max(...phase1.map((l) => Number(l.phase1Seconds)));
        const peakMiB = c.samplePeakRss() / 1024;
        const patchedS = (allPatchedAt - publishStart) / 1000;
        const settledS = (settledAt - publishStart) / 1000;
        log(
          `all patched ${patchedS.toFixed(1)} s after the warnings, all healthy on Fargate after ${settledS.toFixed(0)} s; slowest phase 1 ${phase1Max.toFixed(1)} s; peak RSS ${peakMiB.toFixed(0)} MiB`,
        );
        ledger.add('cases');
        ledger.note('setup (create + Ready on spot)', `${setupSeconds.toFixed(0)} s`);
        ledger.note('all patched after', `${patchedS.toFixed(1)} s`);
        ledger.note('all healthy on Fargate after', `${settledS.toFixed(0)} s`);
        ledger.note('slowest phase 1', `${phase1Max.toFixed(1)} s`);
        ledger.note('controller peak RSS (VmHWM)', `${peakMiB.toFixed(0)} MiB (${(rssAtStart / 1024).toFixed(0)} MiB after the initial list)`);
        ledger.note('peakRssMiB', Math.round(peakMiB));
        assert.ok(peakMiB < MAX_PEAK_RSS_MIB, `peak RSS ${peakMiB.toFixed(0)} MiB over the ${MAX_PEAK_RSS_MIB} MiB bound`);
        const leaks = await scanForSecrets(t, ledger, secrets, [c], [namespace]);
        assert.deepEqual(leaks, []);
      } finally {
        clearInterval(sampler);
      }
      await c.kill('SIGTERM');
      await Promise.all(nodes.map((n) => injector.terminateNode(n).catch(() => undefined)));
    }));
});
