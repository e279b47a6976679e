// Fault 6, security. Warnings, rebalance recommendations and state changes naming instances that are
// not in this cluster change nothing (no patch, no cordon, no Event). A restore record a tenant
// forged (unsigned, or with a made-up signature) is never applied, and is reported. In namespace mode only the
// Deployments of the namespace that opted in with a true boolean ("true", as the original documents it) are touched: not those without
// the annotation, with another value or a misspelt key, nor an opted-in one in another namespace,
// all on the interrupted node. The Slack webhook URL (a local receiver under a secret path that
// fails now and then, and at the end goes away) and the AWS secret key never show up in the logs,
// errors, /metrics, Events or `config check`. (Every other scenario runs the same scan and the same
// untouched-check on its own controllers and Deployments.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { V1Deployment, V1Node } from '@kubernetes/client-node';
import { buildSpotInterruption, wrapInSns } from '../../src/events/build.js';
import { publishEc2Events, queueEmpty, type Ec2DetailType } from '../../testground/src/aws.js';
import { awsClientConfig } from '../../testground/src/ground.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { auditNamespace, listDeployments, plain, sentinelSnapshot } from '../support/faults-audit.js';
import { countLeaks, FaultController, M, metric, scanForSecrets } from '../support/faults-controller.js';
import { createFleet, fleetDeployment, OPT_IN, OPT_IN_KEY, waitMoved, waitReady } from '../support/faults-fleet.js';
import { ScenarioLedger } from '../support/faults-ledger.js';
import { full } from '../support/faults-random.js';
import { createNamespace, deleteNamespace, eventually, testGround } from '../support/ground.js';
import { faultScenario } from '../support/scenario.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const ledger = new ScenarioLedger('security: secrets, foreign instances, opt-in scope', 5);
const ROOT = new URL('../..', import.meta.url).pathname;

const foreignInstance = () => `i-${randomBytes(9).toString('hex').slice(0, 17)}`;
/** What only a writer changes on a Node (KWOK rewrites its status all the time). */
const nodeShape = (n: V1Node) =>
  JSON.stringify(plain({ unschedulable: n.spec?.unschedulable, taints: n.spec?.taints, labels: n.metadata?.labels, annotations: n.metadata?.annotations }));

describe('fault: security', () => {
  let otherNamespace: string;
  let c: FaultController;
  const sqs = new SQSClient(awsClientConfig(t.ground));
  const scenario = faultScenario(t, ledger, {
    prefix: 'fsec',
    visibilityTimeoutSeconds: 2,
    controllers: () => [c],
    teardown: async () => {
      injector.cancel();
      if (otherNamespace) await deleteNamespace(t, otherNamespace);
    },
  });
  before(async () => {
    otherNamespace = await createNamespace(t, 'fsecother');
    // Recovery passes every 2 s, for the forged restore records below; the default cooldown (45m)
    // keeps what the other scenarios move where it is.
    c = await FaultController.spawn(
      t,
      scenario.secrets,
      { MODE: 'namespace', NAMESPACE: scenario.namespace, SQS_QUEUE_URL: scenario.queueUrl, RECOVERY_INTERVAL: '2s' },
      'security',
    );
    await c.waitFor('controller started');
  });
  const queueEmptied = async () => ((await queueEmpty(t.ground, scenario.queueUrl)) ? true : undefined);

  it('events naming instances unknown to this cluster change nothing', () =>
    ledger.run(async () => {
      const { namespace, queueUrl } = scenario;
      const fleet = await createFleet(t, injector, { namespace, nodes: 1, deployments: 4, prefix: 'f' });
      const nodesBefore = new Map((await t.core.listNode()).items.map((n) => [n.metadata!.name!, nodeShape(n)]));
      const deploymentsBefore = await listDeployments(t, namespace);
      const since = new Date();
      const count = full(12, 6);
      const kinds: { detailType: Ec2DetailType; detail: Record<string, string> }[] = [
        { detailType: 'EC2 Spot Instance Interruption Warning', detail: { 'instance-action': 'terminate' } },
        { detailType: 'EC2 Instance Rebalance Recommendation', detail: {} },
        { detailType: 'EC2 Instance State-change Notification', detail: { state: 'shutting-down' } },
      ];
      const entries = Array.from({ length: count }, (_, i) => ({ ...kinds[i % 3]!, instanceId: foreignInstance(), zone: 'us-east-1a', time: new Date() }));
      await publishEc2Events(t.ground, entries);
      // And one through SNS, straight onto the queue.
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: wrapInSns(
            buildSpotInterruption({ instanceId: foreignInstance(), time: new Date(), region: t.ground.region, account: t.ground.account }),
          ),
        }),
      );
      const warnings = entries.filter((e) => e.detailType === 'EC2 Spot Instance Interruption Warning').length + 1;
      ledger.add('cases', count + 1);
      ledger.add('faults', count + 1);

      await eventually('every foreign event received', async () => (metric(await c.metrics(), M.received) >= count + 1 ? true : undefined), 30_000, 250);
      await eventually('the queue emptied', queueEmptied, 30_000, 250);
      await new Promise((r) => setTimeout(r, 1000));
      const text = await c.metrics();
      assert.equal(metric(text, M.interruptions, { outcome: 'foreign' }), warnings, 'every warning judged foreign');
      assert.equal(c.lines().filter((l) => l.message === 'interruption for instances not in this cluster; ignoring').length, warnings);
      for (const n of (await t.core.listNode()).items) {
        const name = n.metadata!.name!;
        if (nodesBefore.has(name)) assert.equal(nodeShape(n), nodesBefore.get(name), `node ${name} was changed`);
      }
      const after = await listDeployments(t, namespace);
      for (const [name, d] of deploymentsBefore) assert.equal(after.get(name)?.metadata?.resourceVersion, d.metadata?.resourceVersion, `${name} was written`);
      const events = [...(await t.core.listNamespacedEvent({ namespace })).items, ...(await t.core.listNamespacedEvent({ namespace: 'default' })).items].filter(
        (e) => e.source?.component === 'spot-fargate-orchestrator' && new Date(e.lastTimestamp ?? e.eventTime ?? 0) >= since,
      );
      assert.deepEqual(
        events.map((e) => `${e.involvedObject.name}: ${e.reason}`),
        [],
        'Events recorded for foreign instances',
      );
      const { problems } = await auditNamespace(t, ledger, namespace, new Map(), fleet.sentinels, { compareResourceVersion: true });
      assert.deepEqual(problems, []);
      ledger.note('foreign events', `${count + 1} (${warnings} warnings), nothing patched, cordoned or recorded`);
      await injector.terminateNode(fleet.nodes[0]!);
    }));

  it('namespace mode: on the interrupted node, only what opted in (a true boolean) in this namespace is moved', () =>
    ledger.run(async () => {
      const { namespace } = scenario;
      const fleet = await createFleet(t, injector, {
        namespace,
        nodes: 1,
        deployments: 4,
        prefix: 's',
        sentinels: [
          {},
          { [OPT_IN_KEY]: 'false' },
          { [OPT_IN_KEY]: 'yes' },
          { [OPT_IN_KEY]: '0' },
          { [OPT_IN_KEY]: 'tRuE' },
          { [OPT_IN_KEY]: 'on' },
          { 'spot-orchestrator/enable': 'true' },
          { 'spot-orchestrator.io/enabled': 'true' },
        ],
      });
      // Opted in, on the same node, but in a namespace this controller does not manage.
      const foreignName = `optedin-elsewhere-${fleet.pool.slice(-6)}`;
      await t.apps.createNamespacedDeployment({
        namespace: otherNamespace,
        body: fleetDeployment(otherNamespace, foreignName, fleet.pool, 1, OPT_IN, undefined, 0),
      });
      await waitReady(t, otherNamespace, [foreignName], 60_000);
      const elsewhere = sentinelSnapshot(await t.apps.readNamespacedDeployment({ name: foreignName, namespace: otherNamespace }));

      await injector.interrupt(fleet.nodes, { windowMs: 1_200_000, terminate: false });
      const moved = await waitMoved(t, fleet, 60_000);
      await eventually('the queue emptied', queueEmptied, 30_000, 250);
      const { problems } = await auditNamespace(t, ledger, namespace, fleet.before, [...fleet.sentinels, elsewhere], { compareResourceVersion: true });
      assert.deepEqual(problems, [], `pending: ${moved.pending.join(', ')}`);
      assert.ok(!c.output().includes(foreignName), 'the Deployment of another namespace was not even considered');
      ledger.add('cases', fleet.sentinels.length + 1);
      ledger.note('scope', `${fleet.names.length} opted in moved; ${fleet.sentinels.length} not opted in and 1 opted in elsewhere left untouched`);
      await injector.terminateNode(fleet.nodes[0]!);
    }));

  it('a restore record a tenant forged changes nothing and is reported', () =>
    ledger.run(async () => {
      const { namespace } = scenario;
      // Healthy spot capacity, so that recovery would go as far as reading the record.
      const fleet = await createFleet(t, injector, { namespace, nodes: 1, deployments: 0, prefix: 'forge', sentinels: [] });
      // What a tenant with edit on their own opted-in Deployment can write: "it is on Fargate, and
      // this is how it was" — with a toleration for the control plane, which the controller would
      // write under its own name. Once with no signature, once with one made up.
      const forgedSpec = JSON.stringify({
        version: 1,
        label: { key: 'compute-type', value: 'spot' },
        nodeSelector: { 'compute-type': 'spot' },
        tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
      });
      const longAgo = new Date(Date.now() - 24 * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
      const forged = [
        { name: `forged-unsigned-${fleet.pool.slice(-6)}`, signature: undefined },
        { name: `forged-signed-${fleet.pool.slice(-6)}`, signature: `v1.${randomBytes(32).toString('base64url')}` },
      ];
      // What only a writer of the Deployment changes: its spec (generation) and the controller's annotations.
      const shape = (d: V1Deployment) =>
        JSON.stringify({
          generation: d.metadata?.generation,
          annotations: Object.entries(d.metadata?.annotations ?? {})
            .filter(([k]) => k.startsWith('spot-orchestrator'))
            .sort(),
        });
      const before = new Map<string, string>();
      for (const [i, f] of forged.entries()) {
        const d = fleetDeployment(namespace, f.name, fleet.pool, 1, OPT_IN, undefined, i);
        d.spec!.template.metadata!.labels!['compute-type'] = 'fargate';
        d.spec!.template.spec!.nodeSelector = { 'compute-type': 'fargate' };
        delete d.spec!.template.spec!.tolerations;
        d.metadata!.annotations = {
          ...d.metadata!.annotations,
          'spot-orchestrator/state': 'fargate',
          'spot-orchestrator/migrated-at': longAgo,
          'spot-orchestrator/saved-spec': forgedSpec,
          ...(f.signature ? { 'spot-orchestrator/saved-spec-signature': f.signature } : {}),
        };
        const created = await t.apps.createNamespacedDeployment({ namespace, body: d });
        before.set(f.name, shape(created));
      }
      ledger.add('cases', forged.length);
      ledger.add('faults', forged.length);
      for (const f of forged) {
        await eventually(
          `a RestoreRecordRejected Event for ${f.name}`,
          async () => {
            const events = await t.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${f.name}` });
            return events.items.some((e) => e.reason === 'RestoreRecordRejected') ? true : undefined;
          },
          30_000,
          250,
        );
        assert.ok(
          c.lines().some((l) => l.message === 'restore record rejected: not recovering this Deployment' && JSON.stringify(l).includes(f.name)),
          `the rejection of ${f.name} is logged`,
        );
      }
      // A few more passes: still nothing written.
      await new Promise((r) => setTimeout(r, 5000));
      for (const f of forged) {
        const d = await t.apps.readNamespacedDeployment({ name: f.name, namespace });
        assert.equal(shape(d), before.get(f.name), `${f.name}: spec and the controller's annotations were written`);
        assert.equal(d.spec?.template.spec?.tolerations, undefined, `${f.name}: the forged toleration was never applied`);
        const events = await t.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${f.name}` });
        assert.ok(!events.items.some((e) => e.reason === 'RecoveringToSpot'), `${f.name}: no recovery started`);
      }
      ledger.note('forged restore records', `${forged.length} (unsigned, made-up signature): not applied, not written, reported by Event and log`);
      for (const f of forged) await t.apps.deleteNamespacedDeployment({ name: f.name, namespace });
      await injector.terminateNode(fleet.nodes[0]!);
    }));

  it('the Slack webhook URL and the AWS secret key appear nowhere, Slack failing or gone', () =>
    ledger.run(async () => {
      const { namespace, queueUrl, secrets } = scenario;
      assert.ok(secrets.slack.received > 0, 'alerts reached the receiver, so the URL was in use');
      assert.ok(secrets.slack.refused > 0 || c.output().includes('sending alert to slack webhook failed'), 'the receiver refused some (500/429)');
      // Slack goes away: the next alerts meet a refused connection.
      await secrets.slack.stop();
      ledger.add('faults');
      const fleet = await createFleet(t, injector, { namespace, nodes: 1, deployments: 3, prefix: 'g' });
      await injector.interrupt(fleet.nodes, { windowMs: 1_200_000, terminate: false });
      await waitMoved(t, fleet, 60_000);
      await eventually('a failed post logged', async () => (c.output().includes('sending alert to slack webhook failed') ? true : undefined), 30_000, 250);
      const { problems } = await auditNamespace(t, ledger, namespace, fleet.before, fleet.sentinels, { compareResourceVersion: true });
      assert.deepEqual(problems, []);

      // `config check` with both secrets set: shown redacted.
      const check = await runCli(['config', 'check'], {
        ...process.env,
        KUBECONFIG: t.ground.kubeconfig,
        MODE: 'namespace',
        NAMESPACE: namespace,
        SQS_QUEUE_URL: queueUrl,
        ALERTS_ENABLED: 'true',
        SLACK_WEBHOOK_URL: secrets.slack.url,
        AWS_SECRET_ACCESS_KEY: secrets.awsSecretKey,
        AWS_ACCESS_KEY_ID: 'testground',
      });
      assert.match(check, /slack_webhook_url = <redacted>/);
      assert.equal(countLeaks([check], secrets.forms()).count, 0, `config check leaked:\n${check}`);
      const leaks = await scanForSecrets(t, ledger, secrets, [c], [namespace, otherNamespace]);
      assert.deepEqual(leaks, []);
      ledger.add('cases', 2);
      await injector.terminateNode(fleet.nodes[0]!);
    }));
});

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(output);
    });
  });
}
