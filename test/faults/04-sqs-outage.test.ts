// Fault 4, SQS unavailable for a while. The controller reaches moto through a TCP proxy that the test
// cuts (open connections destroyed, new ones refused) and restores. While it is cut, /readyz says
// not ready because of the queue, and receive errors are retried with a growing delay; once it is
// back, the controller reconnects and handles the warnings that queued meanwhile. A second cut lands
// in the middle of handling (a delete may fail): the redelivery is handled without a second patch.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { queueEmpty } from '../../testground/src/aws.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { auditNamespace } from '../support/faults-audit.js';
import { FaultController, M, metric, scanForSecrets } from '../support/faults-controller.js';
import { createFleet, progress, waitMoved } from '../support/faults-fleet.js';
import { ScenarioLedger } from '../support/faults-ledger.js';
import { TcpProxy } from '../support/faults-net.js';
import { full } from '../support/faults-random.js';
import { eventually, testGround } from '../support/ground.js';
import { faultScenario } from '../support/scenario.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const ledger = new ScenarioLedger('SQS unavailable, then back', 4);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fault: SQS unavailable for a while, then back', () => {
  let proxy: TcpProxy;
  let c: FaultController;
  const scenario = faultScenario(t, ledger, {
    prefix: 'fsqs',
    visibilityTimeoutSeconds: 2,
    controllers: () => [c],
    teardown: async () => {
      injector.cancel();
      await proxy?.close();
      if (c) {
        const leaks = await scanForSecrets(t, ledger, scenario.secrets, [c], [scenario.namespace]).catch(() => []);
        if (leaks.length > 0) console.error(`secrets leaked: ${leaks.join('\n')}`);
      }
    },
  });
  before(async () => {
    const target = new URL(t.ground.sqsEndpoint);
    proxy = new TcpProxy(target.hostname, Number(target.port));
    await proxy.start();
    c = await FaultController.spawn(
      t,
      scenario.secrets,
      // The queue URL names moto's own port; the SDK sends to the endpoint, which is the proxy.
      {
        MODE: 'namespace',
        NAMESPACE: scenario.namespace,
        SQS_QUEUE_URL: scenario.queueUrl,
        AWS_ENDPOINT_URL_SQS: proxy.url,
        CHECK_INTERVAL: '500ms',
        ROLLOUT_TIMEOUT: '60s',
      },
      'sqs-outage',
    );
    await c.waitFor('controller started');
  });
  const queueEmptied = async () => ((await queueEmpty(t.ground, scenario.queueUrl)) ? true : undefined);

  it('not ready while the queue is away, backs off, and handles what queued meanwhile once it is back', () =>
    ledger.run(async () => {
      const { namespace } = scenario;
      const fleet = await createFleet(t, injector, { namespace, nodes: 2, deployments: 8, replicas: (i) => 1 + (i % 2), prefix: 'o' });
      await eventually('ready', async () => ((await c.readyz()).status === 200 ? true : undefined), 30_000, 200);
      const linesBefore = c.lines().length;
      const outageMs = full(10_000, 6_000);
      await proxy.cut();
      ledger.add('faults');
      const cutAt = Date.now();
      const notReady = await eventually(
        'not ready',
        async () => {
          const r = await c.readyz();
          return r.status === 503 ? r : undefined;
        },
        30_000,
        100,
      );
      assert.deepEqual(notReady.body.waitingFor, ['queueReachable'], JSON.stringify(notReady.body));
      assert.ok((notReady.body.detail ?? '').length > 0, 'the queue error is shown');
      console.log(`# not ready ${Date.now() - cutAt} ms after the cut: ${JSON.stringify(notReady.body)}`);
      // Warnings arrive while the controller cannot receive them.
      await injector.interrupt(fleet.nodes, { windowMs: 1_200_000, terminate: false });
      while (Date.now() - cutAt < outageMs) {
        const r = await c.readyz();
        assert.equal(r.status, 503, `ready while the queue was unreachable: ${JSON.stringify(r.body)}`);
        await sleep(500);
      }
      assert.equal((await progress(t, fleet)).patched, 0, 'nothing can move while the queue is away');
      await proxy.restore();
      const restoredAt = Date.now();
      await eventually('ready again', async () => ((await c.readyz()).status === 200 ? true : undefined), 30_000, 100);
      const readyAfterMs = Date.now() - restoredAt;

      const failures = c
        .lines()
        .slice(linesBefore)
        .filter((l) => l.message === 'receiving from the queue failed')
        .map((l) => l.retryInMs as number);
      console.log(`# ${failures.length} failed receives, retryInMs ${failures.join(', ')}; ready ${readyAfterMs} ms after the restore`);
      assert.ok(failures.length >= 3, `backed off only ${failures.length} times`);
      assert.equal(failures[0], 500, 'the first retry waits check_interval');
      for (let i = 1; i < failures.length; i++) assert.ok(failures[i]! >= failures[i - 1]!, `retry delays shrank: ${failures.join(', ')}`);
      assert.ok(Math.max(...failures) > failures[0]!, `retry delays did not grow: ${failures.join(', ')}`);
      assert.ok(Math.max(...failures) <= 5000, 'capped at 10x check_interval');

      const moved = await waitMoved(t, fleet, 90_000);
      await eventually('the queue emptied', queueEmptied, 30_000, 250);
      const { problems } = await auditNamespace(t, ledger, namespace, fleet.before, fleet.sentinels, { compareResourceVersion: true });
      assert.deepEqual(problems, [], `pending: ${moved.pending.join(', ')}`);
      assert.ok(metric(await c.metrics(), M.received, { kind: 'spot_interrupted' }) >= fleet.nodes.length, 'both warnings received');
      ledger.add('cases');
      ledger.note(
        'outage 1',
        `${outageMs / 1000} s idle; ${failures.length} failed receives, retryInMs ${failures.join(',')}; ready ${readyAfterMs} ms after the restore`,
      );
      for (const n of fleet.nodes) await injector.terminateNode(n);
    }));

  it('cut again in the middle of handling: the redelivered warning changes nothing twice', () =>
    ledger.run(async () => {
      const { namespace } = scenario;
      const fleet = await createFleet(t, injector, {
        namespace,
        nodes: 1,
        deployments: 8,
        prefix: 'm',
        podAnnotations: { 'testground.spot-fargate.io/ready-after': '1s' },
      });
      await eventually('ready', async () => ((await c.readyz()).status === 200 ? true : undefined), 30_000, 200);
      const severedBefore = proxy.severed;
      await injector.interrupt(fleet.nodes, { windowMs: 1_200_000, terminate: false });
      await eventually('the first patch', async () => ((await progress(t, fleet)).patched >= 1 ? true : undefined), 30_000, 10);
      await proxy.cut();
      ledger.add('faults');
      await sleep(3000);
      await proxy.restore();
      const moved = await waitMoved(t, fleet, 90_000);
      await eventually('the queue emptied', queueEmptied, 30_000, 250);
      const { problems } = await auditNamespace(t, ledger, namespace, fleet.before, fleet.sentinels, { compareResourceVersion: true });
      assert.deepEqual(problems, [], `pending: ${moved.pending.join(', ')}`);
      const text = await c.metrics();
      const deleteFailures = metric(text, M.failed, { stage: 'delete' });
      ledger.add('cases');
      ledger.note('outage 2', `3 s during phase 1; ${proxy.severed - severedBefore} connections severed; ${deleteFailures} deletes failed in all`);
      ledger.note('connections severed', proxy.severed);
      await injector.terminateNode(fleet.nodes[0]!);
    }));
});
