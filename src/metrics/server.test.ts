import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Gauge, Registry } from 'prom-client';
import { LoopHeartbeat, startOpsServer, type HealthReport, type OpsServer, type Readiness } from './server.js';

const silent = pino({ level: 'silent' });
const start = new Date('2025-01-01T12:00:00Z');

describe('ops server', () => {
  let clock = start;
  const now = (): Date => clock;
  const advance = (ms: number): void => {
    clock = new Date(clock.getTime() + ms);
  };
  const heartbeat = new LoopHeartbeat({ clock: { now } });
  let ready: Readiness = { cachesSynced: false, queueReachable: false };
  let healthThrows = false;
  const health = (): HealthReport => {
    if (healthThrows) throw new Error('boom');
    return { loops: heartbeat.report(), ready };
  };
  let server: OpsServer;
  // `any`: JSON bodies are checked field by field.
  const get = async (path: string, init?: RequestInit): Promise<{ status: number; body: any; type: string | null }> => {
    const res = await fetch(`http://127.0.0.1:${server.port}${path}`, init);
    const text = await res.text();
    const type = res.headers.get('content-type');
    return { status: res.status, type, body: type?.startsWith('application/json') ? JSON.parse(text) : text };
  };

  before(async () => {
    server = await startOpsServer({ port: 0, host: '127.0.0.1', registry: new Registry(), health, logger: silent, clock: { now } });
  });
  after(() => server.close());

  it('listens on the port the OS chose', () => {
    assert.ok(server.port > 0);
  });

  describe('/healthz', () => {
    it('is 200 while every loop ticks within its allowance', async () => {
      heartbeat.register('queue', 60_000);
      heartbeat.register('recovery', 300_000);
      advance(50_000);
      heartbeat.beat('queue');
      advance(50_000);
      const res = await get('/healthz');
      assert.equal(res.status, 200);
      assert.equal(res.body.status, 'ok');
      assert.deepEqual(res.body.loops, [
        { loop: 'queue', silentForMs: 50_000, maxSilenceMs: 60_000 },
        { loop: 'recovery', silentForMs: 100_000, maxSilenceMs: 300_000 },
      ]);
    });

    it('is 503 naming the loop once it has been silent longer than its allowance', async () => {
      advance(10_001);
      const res = await get('/healthz');
      assert.equal(res.status, 503);
      assert.deepEqual(res.body, { status: 'stuck', stuck: [{ loop: 'queue', silentForMs: 60_001, maxSilenceMs: 60_000 }] });
    });

    it('is 200 again after the loop beats', async () => {
      heartbeat.beat('queue');
      assert.equal((await get('/healthz')).status, 200);
    });

    it('forgets a loop that stopped on purpose', async () => {
      advance(120_000);
      assert.equal((await get('/healthz')).status, 503);
      heartbeat.unregister('queue');
      assert.equal((await get('/healthz')).status, 200);
    });

    it('is 503 when the health report cannot be read', async () => {
      healthThrows = true;
      try {
        const res = await get('/healthz');
        assert.equal(res.status, 503);
        assert.equal(res.body.status, 'error');
      } finally {
        healthThrows = false;
      }
    });
  });

  describe('/readyz', () => {
    it('is 503 naming everything not ready', async () => {
      ready = { cachesSynced: false, queueReachable: false, detail: 'listing deployments' };
      const res = await get('/readyz');
      assert.equal(res.status, 503);
      assert.deepEqual(res.body, {
        status: 'not_ready',
        waitingFor: ['cachesSynced', 'queueReachable'],
        detail: 'listing deployments',
      });
    });

    it('is 503 while only the queue is unreachable', async () => {
      ready = { cachesSynced: true, queueReachable: false, detail: 'ReceiveMessage: AccessDenied' };
      const res = await get('/readyz');
      assert.equal(res.status, 503);
      assert.deepEqual(res.body.waitingFor, ['queueReachable']);
      assert.equal(res.body.detail, 'ReceiveMessage: AccessDenied');
    });

    it('is 200 once caches are synced and the queue reachable', async () => {
      ready = { cachesSynced: true, queueReachable: true };
      const res = await get('/readyz');
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { status: 'ready' });
    });
  });

  describe('routing', () => {
    it('answers 404 on any other path', async () => {
      const res = await get('/');
      assert.equal(res.status, 404);
      assert.equal((await get('/metricsx')).status, 404);
    });

    it('ignores query strings', async () => {
      assert.equal((await get('/readyz?verbose=1')).status, 200);
    });

    it('answers 405 to methods other than GET and HEAD', async () => {
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: 'POST' });
      await res.text();
      assert.equal(res.status, 405);
      assert.equal(res.headers.get('allow'), 'GET, HEAD');
    });

    it('answers HEAD with headers only', async () => {
      const res = await fetch(`http://127.0.0.1:${server.port}/readyz`, { method: 'HEAD' });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), '');
    });
  });
});

describe('/metrics when collection fails', () => {
  it('answers 500 and keeps serving', async () => {
    const registry = new Registry();
    let fail = true;
    new Gauge({
      name: 'test_flaky',
      help: 'fails on demand',
      registers: [registry],
      collect() {
        if (fail) throw new Error('source broken');
        this.set(1);
      },
    });
    const errors: unknown[] = [];
    const logger = { debug() {}, warn() {}, error: (obj: unknown) => void errors.push(obj) };
    const server = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      registry,
      health: () => ({ loops: {}, ready: { cachesSynced: true, queueReachable: true } }),
      logger,
    });
    try {
      const url = `http://127.0.0.1:${server.port}/metrics`;
      const bad = await fetch(url);
      await bad.text();
      assert.equal(bad.status, 500);
      assert.equal(errors.length, 1);
      fail = false;
      const good = await fetch(url);
      assert.equal(good.status, 200);
      assert.match(await good.text(), /^test_flaky 1$/m);
    } finally {
      await server.close();
    }
  });
});

describe('startOpsServer', () => {
  it('rejects, naming the address, when the port is taken', async () => {
    const first = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      registry: new Registry(),
      health: () => ({ loops: {}, ready: { cachesSynced: true, queueReachable: true } }),
      logger: silent,
    });
    try {
      await assert.rejects(
        startOpsServer({
          port: first.port,
          host: '127.0.0.1',
          registry: new Registry(),
          health: () => ({ loops: {}, ready: { cachesSynced: true, queueReachable: true } }),
          logger: silent,
        }),
        { message: `starting ops server on 127.0.0.1:${first.port}` },
      );
    } finally {
      await first.close();
    }
  });

  it('closes even while a client holds a keep-alive connection', async () => {
    const server = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      registry: new Registry(),
      health: () => ({ loops: {}, ready: { cachesSynced: true, queueReachable: true } }),
      logger: silent,
    });
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    await res.text();
    await server.close();
  });
});

describe('LoopHeartbeat', () => {
  it('refuses a beat for a loop never registered', () => {
    assert.throws(() => new LoopHeartbeat().beat('queue'), { message: 'heartbeat for loop queue, which was never registered' });
  });

  it('refuses a non-positive allowance', () => {
    assert.throws(() => new LoopHeartbeat().register('queue', 0), /maxSilenceMs must be a positive number/);
  });

  it('reports a copy that later beats do not change', () => {
    let clock = start;
    const heartbeat = new LoopHeartbeat({ clock: { now: () => clock } });
    heartbeat.register('queue', 1_000);
    const report = heartbeat.report();
    clock = new Date(start.getTime() + 500);
    heartbeat.beat('queue');
    assert.deepEqual(report, { queue: { lastTickAt: start, maxSilenceMs: 1_000 } });
    assert.deepEqual(heartbeat.report(), { queue: { lastTickAt: clock, maxSilenceMs: 1_000 } });
  });
});
