// The ground itself: KWOK must let go of a node that was deleted while it was not looking. KWOK 0.7.0
// lost such deletes (it learns of them only on a relist, as a tombstone its filter could not read),
// then recreated the node's lease every ten seconds forever, listed its pods and retried its stages.
// Benchmark runs delete hundreds of Fargate nodes at a teardown; after a few of them 333 ghosts kept
// the API server 0.5-0.9 of a core busy with nothing running, and every later measurement paid for
// it. testground/go/kwok/patches has the fix. Here KWOK is frozen, its nodes are deleted, and the API
// server is restarted so that KWOK's watch cannot resume and has to relist; then no lease of a
// deleted node may come back.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AdmissionregistrationV1Api, CoordinationV1Api } from '@kubernetes/client-node';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { freePort } from '../../testground/src/net.js';
import { KWOK_ANNOTATION } from '../../testground/src/nodes.js';
import { freezeComponent, restartComponent } from '../support/faults-ground.js';
import { eventually, testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const leases = t.kc.makeApiClient(CoordinationV1Api);
const admission = t.kc.makeApiClient(AdmissionregistrationV1Api);
const LEASE_NAMESPACE = 'kube-node-lease';
const WEBHOOK_NAME = 'spot-faults-hold-node-lease';
/** KWOK renews every quarter of --node-lease-duration-seconds (40 s, cluster-up.sh), with jitter: three rounds. */
const WATCH_MS = 35_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const leaseOf = (name: string) => leases.readNamespacedLease({ name, namespace: LEASE_NAMESPACE }).catch(() => undefined);

/** KWOK's JSON log lines holding `message` about any of the nodes. */
function kwokLog(message: string, nodes: string[]): string[] {
  return readFileSync(join(t.ground.logDir, 'kwok.log'), 'utf8')
    .split('\n')
    .filter((l) => l.includes(message) && nodes.some((n) => l.includes(`"${n}"`)));
}
const logTime = (line: string) => new Date((JSON.parse(line) as { time: string }).time);

describe('the ground: KWOK forgets nodes deleted while its watch was down', () => {
  let thaw: (() => void) | undefined;
  after(() => thaw?.());

  it('recreates no lease for them after it relists', async () => {
    const nodes = await new InterruptionInjector(t.ground, t).addSpotNodes(4, { name: 'fkwok' });
    for (const name of nodes) await eventually(`KWOK holds the lease of ${name}`, async () => ((await leaseOf(name))?.spec?.holderIdentity ? true : undefined));

    thaw = freezeComponent('kwok');
    for (const name of nodes) await t.core.deleteNode({ name });
    // The garbage collector would delete them too (their owner is the node); not waiting on it.
    for (const name of nodes) await leases.deleteNamespacedLease({ name, namespace: LEASE_NAMESPACE }).catch(() => undefined);
    // A new API server's watch cache starts after KWOK's last resourceVersion: KWOK must relist.
    await restartComponent(t, 'kube-apiserver');
    const thawedAt = new Date();
    thaw();

    const back: string[] = [];
    for (const started = Date.now(); Date.now() - started < WATCH_MS && back.length === 0; await sleep(1000)) {
      for (const name of nodes) if (await leaseOf(name)) back.push(name);
    }
    assert.deepEqual(back, [], `KWOK recreated the lease of nodes that no longer exist: ${back.join(', ')}`);
    // Its log says the same: no lease created for them once it was running again.
    assert.deepEqual(
      kwokLog('"Creating lease"', nodes).filter((l) => logTime(l) >= thawedAt),
      [],
    );
  });
});

// A second way to the same ghost: the node is deleted while KWOK is still writing its first lease.
// KWOK 0.7.0 released the hold when the delete came, then, the write done, stored the hold again;
// from then on it recreated the lease forever (without an owner once the node had left its cache,
// so the garbage collector never took it). Mass teardowns in the benchmark hit this window by the
// hundred. Here an admission webhook keeps the first lease write waiting until the node is gone.
describe('the ground: KWOK forgets a node deleted while its first lease was being written', () => {
  let server: Server | undefined;
  after(async () => {
    await admission.deleteValidatingWebhookConfiguration({ name: WEBHOOK_NAME }).catch(() => undefined);
    server?.closeAllConnections();
    server?.close();
  });

  it('writes no lease for it once the write has returned', async () => {
    const name = uniqueName('fkwok-late');
    const seen = new Set<string>();
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    server = createServer({ cert: readFileSync(t.ground.webhookCert), key: readFileSync(t.ground.webhookKey) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { uid: string; name?: string } };
        const leaseName = review.request.name ?? '';
        seen.add(leaseName);
        if (leaseName === name) await held;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } }));
      });
    });
    const port = await freePort();
    await new Promise<void>((resolve) => server?.listen(port, '127.0.0.1', resolve));
    await admission.createValidatingWebhookConfiguration({
      body: {
        metadata: { name: WEBHOOK_NAME },
        webhooks: [
          {
            name: 'hold-node-lease.faults.spot-orchestrator.test',
            clientConfig: { url: `https://127.0.0.1:${port}/`, caBundle: readFileSync(t.ground.webhookCA).toString('base64') },
            rules: [{ operations: ['CREATE'], apiGroups: ['coordination.k8s.io'], apiVersions: ['v1'], resources: ['leases'], scope: 'Namespaced' }],
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': LEASE_NAMESPACE } },
            failurePolicy: 'Ignore',
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
            timeoutSeconds: 15,
          },
        ],
      },
    });
    // The API server calls a new webhook once its own watch has it: wait for a probe lease to pass through.
    const probe = `${name}-probe`;
    await eventually('the webhook sees lease writes', async () => {
      await leases.createNamespacedLease({ namespace: LEASE_NAMESPACE, body: { metadata: { name: probe } } }).catch(() => undefined);
      await leases.deleteNamespacedLease({ name: probe, namespace: LEASE_NAMESPACE }).catch(() => undefined);
      return seen.has(probe) ? true : undefined;
    });

    await t.core.createNode({ body: { metadata: { name, annotations: KWOK_ANNOTATION } } });
    await eventually(`KWOK writes the first lease of ${name}`, async () => (seen.has(name) ? true : undefined));
    await t.core.deleteNode({ name });
    await sleep(3000); // KWOK sees the delete and releases its hold while the write still waits
    const releasedAt = new Date();
    letGo();

    // The held write lands now; the lease names the node as its owner, so the garbage collector
    // takes it. Looking for it gone before it has landed would watch too early.
    for (const started = Date.now(); Date.now() - started < 10_000 && !(await leaseOf(name)); ) await sleep(200);
    await eventually(`the lease of the deleted ${name} is gone`, async () => ((await leaseOf(name)) ? undefined : true));
    const back: string[] = [];
    for (const started = Date.now(); Date.now() - started < WATCH_MS && back.length === 0; await sleep(1000)) {
      if (await leaseOf(name)) back.push(name);
    }
    assert.deepEqual(back, [], 'KWOK recreated the lease of a node deleted during its first lease write');
    const creations = kwokLog('"Creating lease"', [name]).filter((l) => logTime(l) >= releasedAt);
    assert.deepEqual(creations, [], 'KWOK tried to create the lease again after the node was deleted');
  });
});
