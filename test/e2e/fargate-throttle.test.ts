// AWS's Fargate launch throttle on the real ground: a pod that finds the token bucket empty stays
// Pending with a FargateLaunchThrottled Event and launches when a token frees, in creation order.
//
// The ground's own fargate-scheduler runs with the account's bucket (burst 20), too large to see a
// handful of pods wait. So this file starts a second FargateScheduler, the same code, in this process
// and against the same API server and KWOK, with a bucket of 2 and its own scheduler name (pods name
// it in spec.schedulerName, as the webhook names the ground's) and its own node subnet. The ground's
// scheduler and settings are left as they are for the files that run after this one.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import { FARGATE_NODE_LABEL, FargateScheduler, NODE_POD_ANNOTATION, THROTTLED_REASON } from '../../testground/src/fargate/scheduler.js';
import { groundFargateSettings, kubeConfigFrom } from '../../testground/src/ground.js';
import { createNamespace, deleteNamespace, eventually, isPodReady, testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const BURST = 2;
/** Real milliseconds between tokens: long enough that a poll every 50 ms sees each launch apart. */
const TOKEN_EVERY_MS = 1500;
const START_MS = 300;
const PODS = 5;

describe('Fargate launch throttle', () => {
  let namespace: string;
  let scheduler: FargateScheduler;
  const schedulerName = uniqueName('fargate-throttle-test');

  before(async () => {
    namespace = await createNamespace(t, 'throttle');
    // Settings are simulated time, like the ground's: divided by its time scale they give the real
    // pace above on any ground.
    scheduler = new FargateScheduler(kubeConfigFrom(t.ground.fargateKubeconfig), {
      settings: {
        throttle: { burst: BURST, perSecond: (1000 / TOKEN_EVERY_MS) * t.ground.timeScale },
        start: { kind: 'fixed', ms: START_MS / t.ground.timeScale },
        seed: 1,
      },
      timeScale: t.ground.timeScale,
      schedulerName,
      subnet: '10.201',
    });
    await scheduler.start();
  });

  after(async () => {
    await t.core.deleteCollectionNamespacedPod({ namespace }).catch(() => undefined);
    // Its nodes go with its pods; the scheduler must still be running to delete them.
    await eventually('the test scheduler to delete its nodes', async () => {
      const left = (await t.core.listNode({ labelSelector: `${FARGATE_NODE_LABEL}=fargate` })).items.filter((n) =>
        n.metadata?.annotations?.[NODE_POD_ANNOTATION]?.startsWith(`${namespace}/`),
      );
      return left.length === 0 ? true : undefined;
    }).finally(() => scheduler.stop());
    await deleteNamespace(t, namespace);
  });

  it("the ground's simulator logs its bucket, start-up distribution and seed", () => {
    const settings = groundFargateSettings(t.ground);
    const log = readFileSync(join(t.ground.logDir, 'eks-simulator.log'), 'utf8');
    const { burst, perSecond } = settings.throttle;
    assert.match(log, new RegExp(`launch throttle burst ${burst}, ${perSecond} launches/s simulated`));
    assert.match(log, new RegExp(`seed ${settings.seed} \\(replay with TESTGROUND_FARGATE_SEED=${settings.seed}\\)`));
  });

  it('keeps pods past the burst Pending with a throttle Event, then launches them in creation order', async () => {
    const names: string[] = [];
    for (let i = 0; i < PODS; i++) {
      const name = `pod-${i}`;
      const body: V1Pod = {
        metadata: { name, namespace, labels: { app: 'throttle' } },
        spec: { schedulerName, containers: [{ name: 'app', image: 'registry.example/app:1.0' }] },
      };
      await t.core.createNamespacedPod({ namespace, body });
      names.push(name);
    }

    // Watch the pods closely: when each is bound, and what the last one looks like while it waits.
    const boundAt = new Map<string, number>();
    let lastWhileWaiting: V1Pod | undefined;
    await eventually(
      'every pod bound',
      async () => {
        for (const pod of (await t.core.listNamespacedPod({ namespace })).items) {
          const name = pod.metadata!.name!;
          if (pod.spec?.nodeName && !boundAt.has(name)) boundAt.set(name, Date.now());
          if (name === names.at(-1) && !pod.spec?.nodeName) lastWhileWaiting = pod;
        }
        return boundAt.size === PODS ? true : undefined;
      },
      60_000,
      50,
    );

    // The burst launches at once (those pods may bind in either order); after it, one pod per token,
    // in creation order.
    const burstDone = Math.max(...names.slice(0, BURST).map((n) => boundAt.get(n)!));
    const throttled = names.slice(BURST);
    assert.ok(
      throttled.every((n) => boundAt.get(n)! > burstDone),
      'the burst launches before any throttled pod',
    );
    const order = throttled.toSorted((a, b) => boundAt.get(a)! - boundAt.get(b)!);
    assert.deepEqual(order, throttled, 'throttled pods launch in the order they were created');
    const spread = boundAt.get(names.at(-1)!)! - burstDone;
    assert.ok(
      spread >= throttled.length * TOKEN_EVERY_MS * 0.8,
      `${throttled.length} throttled pods bound within ${spread} ms of the burst, with a token every ${TOKEN_EVERY_MS} ms`,
    );
    assert.equal(lastWhileWaiting?.status?.phase, 'Pending', 'the last pod waited Pending, unbound');

    // The Events: one per throttled pod, none for the burst.
    const events = await eventually('throttle Events', async () => {
      const list = (await t.core.listNamespacedEvent({ namespace })).items.filter((e) => e.reason === THROTTLED_REASON);
      return list.length >= PODS - BURST ? list : undefined;
    });
    const byPod = new Map<string, CoreV1Event[]>();
    for (const e of events) byPod.set(e.involvedObject.name!, [...(byPod.get(e.involvedObject.name!) ?? []), e]);
    assert.deepEqual([...byPod.keys()].sort(), names.slice(BURST), 'only pods past the burst were throttled');
    for (const [pod, list] of byPod) {
      assert.equal(list.length, 1, `${pod}: one Event, not one per retry`);
      const [event] = list;
      assert.equal(event!.type, 'Warning');
      assert.equal(event!.source?.component, schedulerName);
      assert.match(event!.message ?? '', new RegExp(`Fargate launch throttled: .*burst ${BURST}`));
    }

    // They run, each on a Fargate node of its own, numbered in launch order.
    const pods = await eventually(
      'every pod Ready',
      async () => {
        const list = (await t.core.listNamespacedPod({ namespace })).items;
        return list.length === PODS && list.every(isPodReady) ? list : undefined;
      },
      30_000,
    );
    const nodeOf = new Map(pods.map((p) => [p.metadata!.name!, p.spec!.nodeName!]));
    assert.equal(new Set(nodeOf.values()).size, PODS, 'a node per pod');
    const ipIndex = (node: string) => {
      const m = /^fargate-ip-10-201-(\d+)-(\d+)\.ec2\.internal$/.exec(node);
      assert.ok(m, `${node} is a node of the test scheduler's subnet`);
      return Number(m[1]) * 256 + Number(m[2]);
    };
    const indexes = names.map((n) => ipIndex(nodeOf.get(n)!));
    assert.deepEqual(
      indexes,
      [...indexes].sort((a, b) => a - b),
      'node addresses, handed out at launch, follow creation order',
    );
    for (const node of new Set(nodeOf.values())) {
      const n = await t.core.readNode({ name: node });
      assert.equal(n.metadata?.labels?.[FARGATE_NODE_LABEL], 'fargate');
    }
  });
});
