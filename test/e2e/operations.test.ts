// Running it unattended: two replicas with leader election (the leader killed mid-migration, the
// standby finishing), metrics and health over HTTP, Events on Nodes, and dry-run touching nothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment } from '@kubernetes/client-node';
import { ensureQueueAndRule, queueDepth, removeQueueAndRule } from '../../testground/src/aws.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, testGround, uniqueName } from '../support/ground.js';
import { spawnController, type ControllerProcess } from '../support/process.js';
import { scenarioResources } from '../support/scenario.js';
import { firstPatchSeen, spotAppsOnFreshPool } from '../support/spot-apps.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const OPT_IN = { 'spot-orchestrator/enabled': 'true' };

const settled = (d: V1Deployment) =>
  d.metadata?.annotations?.['spot-orchestrator/state'] === 'fargate' && !d.metadata?.annotations?.['spot-orchestrator/phase'];

describe('operations', () => {
  const processes: ControllerProcess[] = [];
  const scenario = scenarioResources(t, {
    prefix: 'ops',
    visibilityTimeoutSeconds: 2,
    teardown: async () => {
      injector.cancel();
      for (const p of processes) p.child.kill('SIGKILL');
    },
  });

  it('runs two replicas: only the leader acts, and the standby finishes when the leader dies', async () => {
    const { namespace, queueUrl } = scenario;
    const { names, nodes } = await spotAppsOnFreshPool(t, injector, namespace, { apps: 6, prefix: 'svc' });
    const env = {
      MODE: 'namespace',
      NAMESPACE: namespace,
      SQS_QUEUE_URL: queueUrl,
      LEADER_ELECT: 'true',
      LEASE_DURATION: '3s',
      RENEW_DEADLINE: '2s',
      RETRY_PERIOD: '300ms',
      ROLLOUT_TIMEOUT: '60s',
    };
    const a = await spawnController(t, { ...env, POD_NAME: 'replica-a' });
    processes.push(a);
    await eventually('replica a leads', async () => (a.output().includes('became the leader') ? true : undefined), 30_000);
    const b = await spawnController(t, { ...env, POD_NAME: 'replica-b' });
    processes.push(b);
    await eventually('replica b stands by', async () => (b.output().includes('standing by for the lease') ? true : undefined), 30_000);

    const interruption = await injector.interrupt(nodes, { windowMs: 400_000 });
    await firstPatchSeen(t, namespace);
    a.child.kill('SIGKILL');
    const killedAt = Date.now();
    // Six patches can all land, and the warning be deleted, between the first patch seen and the
    // kill; the standby then finishes the moves from their annotations, with no message to receive.
    // (Read once the killed process has exited, so every line it wrote has been read from the pipe.)
    const leaderFinishedPhase1 = a.exited.then(() => a.output().includes('phase 1 done'));
    assert.ok(!b.output().includes('patched onto Fargate'), 'the standby did nothing while the leader lived');
    await eventually('replica b takes over', async () => (b.output().includes('became the leader') ? true : undefined), 10_000, 50);
    assert.ok(Date.now() - killedAt < 3000 + 2000, `took over ${Date.now() - killedAt} ms after the kill (lease 3 s)`);
    for (const name of names) {
      await eventually(
        `${name} on Fargate`,
        async () => {
          const d = await t.apps.readNamespacedDeployment({ name, namespace });
          return settled(d) ? d : undefined;
        },
        90_000,
      );
    }
    for (const name of names) {
      const d = await t.apps.readNamespacedDeployment({ name, namespace });
      assert.equal(d.metadata?.generation, 3, `${name} patched ${Number(d.metadata?.generation) - 1} times`);
    }

    // The new leader's metrics and health, scraped over HTTP.
    const port = b.metricsPort;
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const value = (name: string) => Number(metrics.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1] ?? NaN);
    assert.equal(value('spot_orchestrator_leader_election_is_leader'), 1);
    assert.equal(value('spot_orchestrator_migration_deployments_migrated_total'), names.length);
    assert.equal(value('spot_orchestrator_state_deployments{state="fargate"}'), names.length);
    // Its API calls, counted: the lease it renews, and at least a patch per Deployment it moved or finished.
    assert.ok(value('spot_orchestrator_kube_api_requests_total{verb="patch",resource="leases",code="200"}') >= 1, 'lease renewals counted');
    assert.ok(value('spot_orchestrator_kube_api_request_duration_seconds_count{verb="patch",resource="leases"}') >= 1, 'and timed');
    const patches = value('spot_orchestrator_kube_api_requests_total{verb="patch",resource="deployments",code="200"}');
    assert.ok(patches >= 1, `deployment patches counted: ${patches}`);
    if (!(await leaderFinishedPhase1)) {
      assert.ok(
        value('spot_orchestrator_queue_messages_received_total{kind="spot_interrupted"}') >= 1,
        'the standby handled the warning the leader had not finished',
      );
    }
    // Events on the interrupted Nodes (cluster-scoped: recorded in default).
    const nodeEvents = (await t.core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${nodes[0]}` })).items;
    assert.ok(
      nodeEvents.some((e) => e.reason === 'SpotInterruption'),
      'SpotInterruption Event on the Node',
    );
    b.child.kill('SIGTERM');
    assert.equal(await b.exited, 0);
    assert.match(b.output(), /released the lease/);
    void interruption;
    for (const n of nodes) await injector.terminateNode(n);
  });

  it('dry run computes and logs everything and writes nothing', async () => {
    const dryNamespace = await createNamespace(t, 'dry');
    try {
      const q = uniqueName('dryq');
      const { queueUrl: dryQueue } = await ensureQueueAndRule(t.ground, q, { visibilityTimeoutSeconds: 30 });
      const pool = uniqueName('pool');
      const [node] = await injector.addSpotNodes(1, { name: pool, suffix: '' });
      const name = uniqueName('app');
      await t.apps.createNamespacedDeployment({
        namespace: dryNamespace,
        body: appDeployment({
          namespace: dryNamespace,
          name,
          replicas: 1,
          annotations: OPT_IN,
          nodeSelector: { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool },
        }),
      });
      await eventually(
        'ready',
        async () => ((await t.apps.readNamespacedDeployment({ name, namespace: dryNamespace })).status?.readyReplicas === 1 ? true : undefined),
        60_000,
      );
      const before = await t.apps.readNamespacedDeployment({ name, namespace: dryNamespace });
      const p = await spawnController(t, { MODE: 'namespace', NAMESPACE: dryNamespace, SQS_QUEUE_URL: dryQueue, DRY_RUN: 'true' });
      processes.push(p);
      await eventually('started', async () => (p.output().includes('controller started') ? true : undefined), 30_000);
      await injector.interrupt([node!], { terminate: false });
      await eventually(
        'would patch',
        async () => (p.output().includes('dry run: would patch') && p.output().includes('would delete the message') ? true : undefined),
        30_000,
      );
      const after = await t.apps.readNamespacedDeployment({ name, namespace: dryNamespace });
      assert.equal(after.metadata?.resourceVersion, before.metadata?.resourceVersion, 'the Deployment was not written');
      assert.equal((await t.core.readNode({ name: node! })).spec?.unschedulable, undefined, 'the node was not cordoned');
      const left = await queueDepth(t.ground, dryQueue);
      assert.ok(left.visible + left.hidden >= 1, 'the message was not deleted');
      const events = (await t.core.listNamespacedEvent({ namespace: dryNamespace })).items.filter((e) => e.source?.component === 'spot-fargate-orchestrator');
      assert.equal(events.length, 0, 'no Events written');
      p.child.kill('SIGTERM');
      await p.exited;
      await removeQueueAndRule(t.ground, q, dryQueue);
      await injector.terminateNode(node!);
    } finally {
      await deleteNamespace(t, dryNamespace);
    }
  });
});
