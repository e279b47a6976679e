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
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { freezeComponent, restartComponent } from '../support/faults-ground.js';
import { eventually, testGround } from '../support/ground.js';

const t = testGround();
const leases = t.kc.makeApiClient(CoordinationV1Api);
const LEASE_NAMESPACE = 'kube-node-lease';
/** KWOK renews every quarter of --node-lease-duration-seconds (40 s, cluster-up.sh), with jitter: three rounds. */
const WATCH_MS = 35_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const leaseOf = (name: string) => leases.readNamespacedLease({ name, namespace: LEASE_NAMESPACE }).catch(() => undefined);

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
    const log = readFileSync(join(t.ground.logDir, 'kwok.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"Creating lease"') && nodes.some((n) => l.includes(`"${n}"`)))
      .filter((l) => new Date((JSON.parse(l) as { time: string }).time) >= thawedAt);
    assert.deepEqual(log, []);
  });
});
