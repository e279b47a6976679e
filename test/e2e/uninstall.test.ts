// The uninstall path, `spot-orchestrator recover --all --now`, run as the command it is: Deployments a
// real interruption moved to Fargate come back to spot (cooldown waived, the rollout verified), a
// Deployment whose spot rollout fails goes back to Fargate, one that no spot node fits is reported and
// left on Fargate, every node loses the controller's marks, and the command exits non-zero for what
// it could not bring back. It refuses while a controller holds the Lease.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CoordinationV1Api, type V1Deployment } from '@kubernetes/client-node';
import { EXCLUDE_FROM_LB_LABEL, INTERRUPTED_TAINT_KEY, MANAGED_ANNOTATIONS as A, NODE_ANNOTATIONS } from '../../src/state/annotations.js';
import { ensureQueueAndRule, removeQueueAndRule } from '../../testground/src/aws.js';
import { kubeConfigFrom } from '../../testground/src/ground.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { FAST_ENV, startController, type TestController } from '../support/controller.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, podsOf, testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const OPT_IN = { 'spot-orchestrator/enabled': 'true' };
const exec = promisify(execFile);
const pinnedTo = (pool: string) => ({ 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool });

describe('recover --all --now (uninstall)', () => {
  let namespace: string;
  let queueName: string;
  let queueUrl: string;
  let controller: TestController | undefined;
  const nodes: string[] = [];
  /**
   * The command, as an operator runs it with a kubeconfig; never throws, so the exit code is asserted.
   * No queue is named: an uninstall may delete the AWS side first, and this path never receives.
   */
  const cli = async (extra: NodeJS.ProcessEnv, ...args: string[]) => {
    const env = {
      ...process.env,
      ...FAST_ENV,
      KUBECONFIG: t.ground.kubeconfig,
      MODE: 'namespace',
      NAMESPACE: namespace,
      SQS_QUEUE_URL: '',
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      CONFIG_FILE: '',
      RECOVERY_TIMEOUT: '10s',
      MAX_CONCURRENT_RECOVERIES: '2',
      ...extra,
    };
    return exec(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env, cwd: new URL('../..', import.meta.url).pathname }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  };
  const read = (name: string) => t.apps.readNamespacedDeployment({ name, namespace });
  const settledOnFargate = (name: string) =>
    eventually(
      `${name} at rest on Fargate`,
      async () => {
        const d = await read(name);
        const a = d.metadata?.annotations ?? {};
        return a[A.state] === 'fargate' && a[A.phase] === undefined && (d.status?.readyReplicas ?? 0) === d.spec?.replicas ? d : undefined;
      },
      90_000,
    );

  before(async () => {
    namespace = await createNamespace(t, 'uninst');
    queueName = uniqueName('uq');
    ({ queueUrl } = await ensureQueueAndRule(t.ground, queueName));
  });
  after(async () => {
    injector.cancel();
    await controller?.stop().catch(() => undefined);
    await removeQueueAndRule(t.ground, queueName, queueUrl).catch(() => undefined);
    await Promise.all(nodes.map((n) => injector.terminateNode(n).catch(() => undefined)));
    await deleteNamespace(t, namespace);
  });

  it('refuses while a controller holds the Lease', async () => {
    const lease = uniqueName('lease');
    await kubeConfigFrom(t.ground.kubeconfig)
      .makeApiClient(CoordinationV1Api)
      .createNamespacedLease({
        namespace,
        body: {
          metadata: { name: lease },
          spec: { holderIdentity: 'controller-pod-0', leaseDurationSeconds: 600, renewTime: new Date().toISOString().replace(/Z$/, '000Z') as never },
        },
      });
    const out = await cli({ LEADER_ELECT: 'true', LEASE_NAME: lease }, 'recover', '--all', '--now');
    assert.equal(out.code, 1, out.stdout + out.stderr);
    assert.match(out.stderr, new RegExp(`controller-pod-0 holds the Lease ${namespace}/${lease}\\. Scale it to 0 first`));
    assert.doesNotMatch(out.stdout, /back on spot|nodes:/, 'nothing was done');
  });

  it('brings back what spot fits, rolls back a failed rollout, leaves what does not fit, and clears every node', async () => {
    const p = uniqueName('pool');
    const q = uniqueName('pool');
    const [p1, p2] = await injector.addSpotNodes(2, { name: p, suffix: '' });
    const [q1] = await injector.addSpotNodes(1, { name: q, suffix: '' });
    nodes.push(p1!, p2!, q1!);
    const make = async (name: string, replicas: number, pool: string, podAnnotations?: Record<string, string>) => {
      await t.apps.createNamespacedDeployment({
        namespace,
        body: appDeployment({ namespace, name, replicas, annotations: OPT_IN, nodeSelector: pinnedTo(pool), podAnnotations }),
      });
      return name;
    };
    const web = await make('web', 2, p);
    const api = await make('api', 1, p);
    // Runs on Fargate, never Ready on spot: its move back cannot pass the health check.
    const flaky = await make('flaky', 1, p, { 'testground.spot-fargate.io/never-ready-on': 'spot' });
    // Its only node group goes away with the interruption: no spot node will fit it.
    const pinned = await make('pinned', 1, q);
    await eventually(
      'ready on spot (flaky only scheduled: it is never Ready there)',
      async () => {
        for (const name of [web, api, pinned]) if ((await read(name)).status?.readyReplicas !== (await read(name)).spec?.replicas) return undefined;
        return (await podsOf(t, namespace, flaky)).some((pod) => pod.spec?.nodeName) ? true : undefined;
      },
      60_000,
    );

    // A real interruption moves them to Fargate; the controller (cooldown 1h) does not bring them back.
    controller = await startController(t, namespace, { RECOVERY_COOLDOWN: '1h' });
    // p1 survives its warning: it stays sealed off (cordon, taint, label, marks) for the uninstall to clear.
    await injector.interrupt([p1!], { windowMs: 600_000, terminate: false });
    await injector.interrupt([p2!, q1!]);
    for (const name of [web, api, flaky, pinned]) await settledOnFargate(name);
    const sealedNode = await eventually('p1 sealed off', async () => {
      const n = await t.core.readNode({ name: p1! });
      return n.metadata?.annotations?.[NODE_ANNOTATIONS.sealed] ? n : undefined;
    });
    assert.equal(sealedNode.spec?.unschedulable, true);
    // Scaled to 0, as the uninstall section says, and fresh spot capacity for pool p.
    await controller.stop();
    controller = undefined;
    const [p3] = await injector.addSpotNodes(1, { name: p });
    nodes.push(p3!);

    const out = await cli({}, 'recover', '--all', '--now');
    const text = out.stdout;
    assert.equal(out.code, 1, `exit code\n${text}\n${out.stderr}`);
    assert.match(text, /4 managed Deployment\(s\), 4 on Fargate; moving 3 back, at most 2 at once/);
    assert.match(
      text,
      new RegExp(`${namespace}/web: back on spot, healthy on spot after \\d+ ms \\(--now: waived cooldown.*\\); the controller's annotations removed`),
    );
    assert.match(text, new RegExp(`${namespace}/api: back on spot`));
    assert.match(
      text,
      new RegExp(
        `${namespace}/flaky: LEFT ON FARGATE: rollout failed \\((rollout-timeout|health-check-failed)[^)]*\\); the Fargate template is back and healthy`,
      ),
    );
    assert.match(
      text,
      new RegExp(`${namespace}/pinned: LEFT ON FARGATE: no spot capacity fits: none of the \\d+ healthy spot node\\(s\\) satisfies the restored constraints`),
    );
    assert.match(
      text,
      new RegExp(`${p1}: removed annotations .*interrupted-at.*sealed.*; taint ${INTERRUPTED_TAINT_KEY}; label ${EXCLUDE_FROM_LB_LABEL}; cordon`),
    );
    assert.match(text, /NOT DONE: 2 Deployment\(s\) left on Fargate, 0 node\(s\) still marked/);

    // Back on spot, as they were, with nothing of the controller left on them.
    for (const name of [web, api]) {
      const d = await read(name);
      assert.equal(d.spec?.template.metadata?.labels?.['compute-type'], undefined, `${name}: the Fargate label is gone`);
      assert.deepEqual(d.spec?.template.spec?.nodeSelector, pinnedTo(p));
      const left = Object.keys(d.metadata?.annotations ?? {}).filter((k) => (Object.values(A) as string[]).includes(k));
      assert.deepEqual(left, [], `${name}: controller annotations left: ${left.join(', ')}`);
      const pods = (await podsOf(t, namespace, name)).filter((pod) => !pod.metadata?.deletionTimestamp);
      assert.ok(
        pods.length > 0 && pods.every((pod) => pod.spec?.nodeName === p3),
        `${name} runs on the fresh spot node: ${pods.map((x) => x.spec?.nodeName).join(', ')}`,
      );
    }
    // Left on Fargate, with what brings them back later.
    for (const name of [flaky, pinned]) {
      const d: V1Deployment = await read(name);
      assert.equal(d.metadata?.annotations?.[A.state], 'fargate', name);
      assert.equal(d.spec?.template.metadata?.labels?.['compute-type'], 'fargate', name);
      assert.ok(d.metadata?.annotations?.[A.savedSpec], `${name} keeps its restore record`);
    }
    // No node carries anything of the controller.
    for (const n of (await t.core.listNode()).items) {
      const marks = Object.keys(n.metadata?.annotations ?? {}).filter((k) => (Object.values(NODE_ANNOTATIONS) as string[]).includes(k));
      assert.deepEqual(marks, [], `${n.metadata?.name}: ${marks.join(', ')}`);
      assert.ok(!(n.spec?.taints ?? []).some((x) => x.key === INTERRUPTED_TAINT_KEY), `${n.metadata?.name} still tainted`);
    }
    const cleared = await t.core.readNode({ name: p1! });
    assert.equal(cleared.spec?.unschedulable, undefined, 'the cordon it added is gone');
    assert.equal(cleared.metadata?.labels?.[EXCLUDE_FROM_LB_LABEL], undefined);

    // A second run has no node to clear and still says what it left behind.
    const again = await cli({}, 'recover', '--all', '--now');
    assert.equal(again.code, 1);
    assert.match(again.stdout, new RegExp(`${namespace}/web: on spot already\\n`));
    assert.match(again.stdout, /nodes:\n {2}\d+ other node\(s\) carried nothing of the controller's/);
  });
});
