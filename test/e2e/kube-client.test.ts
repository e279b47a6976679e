// The controller's Kubernetes client reuses its connections to the API server instead of paying a
// TCP and TLS handshake per call (client-node 2.0 alone builds a new undici Agent for every request).
// The calls go over HTTP/1.1 on a bounded number of connections, the watches over one HTTP/2
// connection of their own (src/kube/api.ts says why). The watch caches list page by page
// (src/kube/informer.ts says why), resuming each page from the API server's continue token.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppsV1Api, CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { type ApiCall, type CallTransport, loadKubeConfig, PooledKubeConfig } from '../../src/kube/api.js';
import { resilientInformer } from '../../src/kube/informer.js';
import { createNamespace, deleteNamespace, eventually, testGround } from '../support/ground.js';

const t = testGround();

describe('Kubernetes client connections', () => {
  it('serves a burst of API calls over a few kept-alive connections', async () => {
    const kc = loadKubeConfig(t.ground.kubeconfig);
    assert.equal(kc.transport, 'request', "the controller's calls go over undici's request (src/kube/api.ts says why)");
    const core = kc.makeApiClient(CoreV1Api);
    for (let i = 0; i < 20; i++) await core.readNamespace({ name: 'default' });
    // undici may open a second before it sees the first one free again; never one per call.
    assert.ok(kc.connectionsOpened <= 2, `20 calls one after the other opened ${kc.connectionsOpened} connections`);

    const limit = pLimit(10);
    await Promise.all(Array.from({ length: 200 }, () => limit(() => core.readNamespace({ name: 'kube-system' }))));
    // As above, up to two per call in flight (the bound, next test, caps it); reused, not one per call.
    assert.ok(kc.connectionsOpened <= 22, `200 calls, 10 at a time, opened ${kc.connectionsOpened} connections (at most 2 per call in flight expected)`);
    kc.closeConnections();
  });

  it('opens no more connections for calls than its bound, and one call per connection at a time', async () => {
    const kc = loadKubeConfig(t.ground.kubeconfig, 4);
    const core = kc.makeApiClient(CoreV1Api);
    const limit = pLimit(20);
    const names = await Promise.all(Array.from({ length: 100 }, () => limit(async () => (await core.readNamespace({ name: 'default' })).metadata?.name)));
    assert.deepEqual(new Set(names), new Set(['default']), 'every call answered');
    assert.equal(kc.connectionsOpened, 4, '100 calls, 20 at a time, on the 4 connections allowed');
    kc.closeConnections();
  });

  for (const transport of ['request', 'fetch'] satisfies CallTransport[]) {
    it(`carries calls over ${transport}: answers, API errors with their code and message, bodies both ways`, async () => {
      const kc = new PooledKubeConfig(8, transport);
      kc.loadFromFile(t.ground.kubeconfig);
      const core = kc.makeApiClient(CoreV1Api);
      assert.equal((await core.readNamespace({ name: 'default' })).metadata?.name, 'default');
      const listed = await core.listNamespace();
      assert.ok(
        listed.items.some((n) => n.metadata?.name === 'kube-system'),
        'a list comes back whole',
      );
      await assert.rejects(core.readNamespace({ name: 'no-such-namespace' }), (err: { code?: number; body?: unknown }) => {
        assert.equal(err.code, 404);
        assert.equal(JSON.parse(String(err.body)).message, 'namespaces "no-such-namespace" not found');
        return true;
      });
      const name = `transport-${transport}-${Date.now()}`;
      const created = await core.createNamespace({ body: { metadata: { name, labels: { via: transport } } } });
      assert.equal(created.metadata?.labels?.via, transport, 'a request body reaches the server');
      await core.deleteNamespace({ name });
      kc.closeConnections();
    });
  }

  it('tells every call, as it ends, to the observer (the metrics): verb, resource, status and time, also for an error and a refused connection', async () => {
    const kc = loadKubeConfig(t.ground.kubeconfig);
    const calls: ApiCall[] = [];
    kc.observeCalls((c) => calls.push(c));
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    await core.readNamespace({ name: 'default' });
    await core.listNamespacedPod({ namespace: 'kube-system' });
    await assert.rejects(apps.readNamespacedDeploymentScale({ name: 'no-such-deployment', namespace: 'default' }));
    const seen = calls.map(({ verb, resource, code }) => `${verb} ${resource} ${code}`);
    assert.deepEqual(seen, ['get namespaces 200', 'list pods 200', 'get deployments/scale 404']);
    for (const c of calls) assert.ok(c.seconds > 0 && c.seconds < 30, `${c.seconds} s`);
    kc.closeConnections();

    // Nothing listens on the port: no answer at all.
    const refused = new PooledKubeConfig(2);
    refused.loadFromOptions({
      clusters: [{ name: 'none', server: 'http://127.0.0.1:9', skipTLSVerify: true }],
      users: [{ name: 'none' }],
      contexts: [{ name: 'none', cluster: 'none', user: 'none' }],
      currentContext: 'none',
    });
    const lost: ApiCall[] = [];
    refused.observeCalls((c) => lost.push(c));
    await assert.rejects(refused.makeApiClient(CoreV1Api).listNode());
    assert.deepEqual(
      lost.map(({ verb, resource, code }) => `${verb} ${resource} ${code}`),
      ['list nodes network'],
    );
    refused.closeConnections();
  });

  it('keeps a separate pool for a different identity', async () => {
    const kc = loadKubeConfig(t.ground.kubeconfig);
    const cluster = kc.getCurrentCluster()!;
    const admin = kc.getCurrentContext();
    kc.loadFromOptions({
      clusters: kc.clusters,
      users: [...kc.users, { name: 'stranger', token: 'not-a-valid-token' }],
      contexts: [...kc.contexts, { name: 'stranger', cluster: cluster.name, user: 'stranger' }],
      currentContext: admin,
    });
    const core = kc.makeApiClient(CoreV1Api);
    await core.readNamespace({ name: 'default' });
    kc.setCurrentContext('stranger');
    // No client certificate: the stranger must not ride the admin's authenticated connection.
    await assert.rejects(core.readNamespace({ name: 'default' }), (err: { code?: number }) => err.code === 401);
    kc.setCurrentContext(admin);
    await core.readNamespace({ name: 'default' });
    assert.equal(kc.connectionsOpened, 2, 'one connection per identity, each reused');
    kc.closeConnections();
  });

  it('carries watches on a connection apart from the calls', async () => {
    const kc = loadKubeConfig(t.ground.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    await core.readNamespace({ name: 'default' });
    const beforeWatches = kc.connectionsOpened;
    const seen: string[] = [];
    const watches = await Promise.all(
      ['namespaces', 'nodes'].map((kind) =>
        new Watch(kc).watch(
          `/api/v1/${kind}`,
          {},
          (type, obj: { metadata?: { name?: string } }) => seen.push(`${kind} ${type} ${obj.metadata?.name}`),
          () => undefined,
        ),
      ),
    );
    try {
      // Both watches are open (their initial ADDED events arrived) while the calls go on.
      const deadline = Date.now() + 10_000;
      while (!(seen.some((e) => e.startsWith('namespaces ADDED')) && seen.some((e) => e.startsWith('nodes ADDED')))) {
        if (Date.now() > deadline) assert.fail(`the watches delivered no ADDED event in 10 s: ${seen.slice(0, 5).join(', ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(kc.connectionsOpened - beforeWatches, 1, 'both watches share one connection, none of the calls');
      for (let i = 0; i < 10; i++) await core.readNamespace({ name: 'kube-system' });
      assert.ok(kc.connectionsOpened - beforeWatches <= 2, `10 calls beside the watches opened ${kc.connectionsOpened - beforeWatches - 1} connections`);
    } finally {
      for (const w of watches) w.abort();
      kc.closeConnections();
    }
  });

  it('opens a connection per call without the pool (the client-node default it replaces)', async () => {
    // The baseline the first test improves on, measured the same way: count TLS sessions on a plain KubeConfig.
    const plain = new KubeConfig();
    plain.loadFromFile(t.ground.kubeconfig);
    const agents = new Set<unknown>();
    const original = plain.applySecurityAuthentication.bind(plain);
    plain.applySecurityAuthentication = async (context) => {
      await original(context);
      agents.add(context.getDispatcher());
    };
    const core = plain.makeApiClient(CoreV1Api);
    for (let i = 0; i < 5; i++) await core.readNamespace({ name: 'default' });
    assert.equal(agents.size, 5, 'client-node builds a new dispatcher (so a new connection) for every call');
  });

  it('fills a watch cache from a list read page by page, then watches from the list resourceVersion', async () => {
    const ns = await createNamespace(t, 'paged-list');
    try {
      const names = Array.from({ length: 7 }, (_, i) => `cm-${i}`);
      for (const name of names) await t.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name }, data: { k: 'v' } } });
      // The API server adds its root CA ConfigMap to every namespace: 8 in all, 3 pages of 3.
      await eventually('the root CA ConfigMap', async () => ((await t.core.listNamespacedConfigMap({ namespace: ns })).items.length === 8 ? true : undefined));
      const kc = loadKubeConfig(t.ground.kubeconfig);
      const calls: ApiCall[] = [];
      kc.observeCalls((c) => calls.push(c));
      const core = kc.makeApiClient(CoreV1Api);
      const informer = resilientInformer(kc, `/api/v1/namespaces/${ns}/configmaps`, (page) => core.listNamespacedConfigMap({ namespace: ns, ...page }), {
        pageSize: 3,
        transform: (cm) => ({ metadata: { name: cm.metadata?.name, namespace: cm.metadata?.namespace, resourceVersion: cm.metadata?.resourceVersion } }),
      });
      try {
        await informer.start();
        assert.deepEqual(
          calls.map(({ verb, resource, code }) => `${verb} ${resource} ${code}`),
          ['list configmaps 200', 'list configmaps 200', 'list configmaps 200'],
          'three pages of three',
        );
        assert.deepEqual(
          informer.cache
            .list(ns)
            .map((c) => c.metadata?.name)
            .sort(),
          [...names, 'kube-root-ca.crt'].sort(),
        );
        assert.equal(informer.cache.get('cm-4', ns)?.data, undefined, 'the cache holds the trimmed copies');
        // Nothing created after the list's resourceVersion is missed: the watch resumes from it.
        await t.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'after-list' } } });
        await eventually('the watched ConfigMap', async () => informer.cache.get('after-list', ns));
      } finally {
        await informer.stop();
        kc.closeConnections();
      }
    } finally {
      await deleteNamespace(t, ns);
    }
  });
});
