import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { createMetrics, MESSAGE_KINDS, type FargateStay } from './metrics.js';
import { startOpsServer, type OpsServer } from './server.js';
import { parseExposition, seriesOf, sampleValue, type Sample } from './test-support.js';

const P = 'spot_orchestrator_';
const silent = pino({ level: 'silent' });
const ready = { loops: {}, ready: { cachesSynced: true, queueReachable: true } };

/** Starts an ops server on a free port for `registry`; `scrape()` fetches /metrics over HTTP. */
function opsFixture(registry: Registry): { scrape: () => Promise<Sample[]>; response: () => Promise<Response> } {
  let server: OpsServer;
  before(async () => {
    server = await startOpsServer({ port: 0, host: '127.0.0.1', registry, health: () => ready, logger: silent });
  });
  after(() => server.close());
  const response = () => fetch(`http://127.0.0.1:${server.port}/metrics`);
  return {
    response,
    scrape: async () => {
      const res = await response();
      assert.equal(res.status, 200);
      return parseExposition(await res.text());
    },
  };
}

describe('createMetrics, scraped over HTTP', () => {
  const metrics = createMetrics();
  const ops = opsFixture(metrics.registry);
  before(() => {
    metrics.messagesReceived.inc({ kind: 'spot_interrupted' });
    metrics.messagesReceived.inc({ kind: 'spot_interrupted' });
    metrics.messagesReceived.inc({ kind: 'malformed' });
    metrics.messagesDeleted.inc({ kind: 'spot_interrupted' });
    metrics.messagesFailed.inc({ kind: 'malformed', stage: 'parse' });
    metrics.queueReceiveSeconds.observe(0.02);
    metrics.queueReceiveSeconds.observe(20.1);
    metrics.interruptionsHandled.inc({ outcome: 'migrated' });
    metrics.deploymentsMigrated.inc(3);
    metrics.deploymentsFailed.inc({ reason: 'patch_rejected' });
    metrics.deploymentsSkipped.inc({ reason: 'not_opted_in' }, 2);
    metrics.rollbacks.inc({ to: 'spot' });
    metrics.phase1Seconds.observe(1.2);
    metrics.phase2Seconds.observe(50);
    metrics.recoveries.inc({ outcome: 'recovered' });
    metrics.recoverySeconds.observe(42);
    metrics.setStateSource(() => ({ spot: 7, fargate: 2 }));
    metrics.addFargateTime('prod', 'api', 90);
    metrics.addFargateTime('prod', 'api', 30);
    metrics.apiErrors.inc({ verb: 'patch', code: 409 });
    metrics.apiErrors.inc({ verb: 'list', code: 'network' });
    metrics.leader.set(1);
  });

  it('serves the Prometheus text format', async () => {
    const res = await ops.response();
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  });

  it('exposes queue counters by kind and stage, with known kinds starting at zero', async () => {
    const s = await ops.scrape();
    assert.equal(sampleValue(s, `${P}queue_messages_received_total`, { kind: 'spot_interrupted' }), 2);
    assert.equal(sampleValue(s, `${P}queue_messages_received_total`, { kind: 'malformed' }), 1);
    assert.equal(sampleValue(s, `${P}queue_messages_received_total`, { kind: 'state_change' }), 0);
    assert.deepEqual(
      seriesOf(s, `${P}queue_messages_received_total`)
        .map((x) => x.labels.kind)
        .sort(),
      [...MESSAGE_KINDS].sort(),
    );
    assert.equal(sampleValue(s, `${P}queue_messages_deleted_total`, { kind: 'spot_interrupted' }), 1);
    assert.equal(sampleValue(s, `${P}queue_messages_failed_total`, { kind: 'malformed', stage: 'parse' }), 1);
    assert.equal(sampleValue(s, `${P}queue_messages_failed_total`, { kind: 'unknown', stage: 'delete' }), 0);
  });

  it('exposes the receive latency histogram with buckets up to 25 s', async () => {
    const s = await ops.scrape();
    const name = `${P}queue_receive_duration_seconds`;
    assert.equal(sampleValue(s, `${name}_count`), 2);
    assert.ok(Math.abs((sampleValue(s, `${name}_sum`) ?? 0) - 20.12) < 1e-9);
    assert.equal(sampleValue(s, `${name}_bucket`, { le: '0.01' }), 0);
    assert.equal(sampleValue(s, `${name}_bucket`, { le: '0.025' }), 1);
    assert.equal(sampleValue(s, `${name}_bucket`, { le: '20' }), 1);
    assert.equal(sampleValue(s, `${name}_bucket`, { le: '22.5' }), 2);
    assert.equal(sampleValue(s, `${name}_bucket`, { le: '25' }), 2);
  });

  it('exposes interruption, migration and recovery outcomes', async () => {
    const s = await ops.scrape();
    assert.equal(sampleValue(s, `${P}interruptions_handled_total`, { outcome: 'migrated' }), 1);
    assert.equal(sampleValue(s, `${P}interruptions_handled_total`, { outcome: 'foreign' }), 0);
    assert.equal(sampleValue(s, `${P}migration_deployments_migrated_total`), 3);
    assert.equal(sampleValue(s, `${P}migration_deployments_failed_total`, { reason: 'patch_rejected' }), 1);
    assert.equal(sampleValue(s, `${P}migration_deployments_skipped_total`, { reason: 'not_opted_in' }), 2);
    assert.equal(sampleValue(s, `${P}migration_rollbacks_total`, { to: 'spot' }), 1);
    assert.equal(sampleValue(s, `${P}migration_rollbacks_total`, { to: 'none' }), 0);
    assert.equal(sampleValue(s, `${P}migration_phase1_duration_seconds_bucket`, { le: '0.05' }), 0);
    assert.equal(sampleValue(s, `${P}migration_phase1_duration_seconds_bucket`, { le: '2.5' }), 1);
    assert.equal(sampleValue(s, `${P}migration_phase2_duration_seconds_bucket`, { le: '45' }), 0);
    assert.equal(sampleValue(s, `${P}migration_phase2_duration_seconds_bucket`, { le: '60' }), 1);
    assert.equal(sampleValue(s, `${P}migration_phase2_duration_seconds_bucket`, { le: '300' }), 1);
    assert.equal(sampleValue(s, `${P}recovery_outcomes_total`, { outcome: 'recovered' }), 1);
    assert.equal(sampleValue(s, `${P}recovery_outcomes_total`, { outcome: 'ineligible' }), 0);
    assert.equal(sampleValue(s, `${P}recovery_duration_seconds_count`), 1);
  });

  it('exposes state, Fargate time, API errors and leadership', async () => {
    const s = await ops.scrape();
    assert.equal(sampleValue(s, `${P}state_deployments`, { state: 'spot' }), 7);
    assert.equal(sampleValue(s, `${P}state_deployments`, { state: 'fargate' }), 2);
    assert.equal(sampleValue(s, `${P}fargate_stay_seconds_total`, { namespace: 'prod', deployment: 'api' }), 120);
    assert.equal(sampleValue(s, `${P}kube_api_errors_total`, { verb: 'patch', code: '409' }), 1);
    assert.equal(sampleValue(s, `${P}kube_api_errors_total`, { verb: 'list', code: 'network' }), 1);
    assert.equal(sampleValue(s, `${P}leader_election_is_leader`), 1);
  });

  it('exposes default process metrics under the same prefix', async () => {
    const s = await ops.scrape();
    assert.ok(sampleValue(s, `${P}process_resident_memory_bytes`)! > 0);
    assert.ok(seriesOf(s, `${P}nodejs_eventloop_lag_p99_seconds`).length === 1);
  });
});

describe('metric names', () => {
  it('follow spot_orchestrator_<subsystem>_<name>, counters in _total, histograms in _seconds', async () => {
    const metrics = createMetrics();
    const ours = (await metrics.registry.getMetricsAsJSON()).filter((m) => !/^spot_orchestrator_(process|nodejs)_/.test(m.name));
    // One per metric field of Metrics, and nothing else.
    const fields = Object.values(metrics).filter((v): v is { name: string } => typeof v === 'object' && v !== null && 'name' in v);
    assert.equal(fields.length, 24);
    assert.deepEqual(ours.map((m) => m.name).sort(), fields.map((f) => f.name).sort());
    for (const m of ours) {
      assert.match(m.name, /^spot_orchestrator_[a-z0-9]+(_[a-z0-9]+)+$/, m.name);
      // prom-client types `type` as a numeric enum, but at run time it is the string.
      const type = String(m.type);
      if (type === 'counter') assert.match(m.name, /_total$/, m.name);
      if (type === 'histogram') assert.match(m.name, /_seconds$/, m.name);
      assert.ok(m.help.length > 10, `${m.name} has help text`);
    }
  });

  it('cannot be created twice on one registry', () => {
    const registry = new Registry();
    createMetrics(registry);
    assert.throws(() => createMetrics(registry), /already been registered/);
  });
});

describe('fargateSeconds', () => {
  let clock = new Date('2025-01-01T12:00:00Z');
  let stays: FargateStay[] = [];
  const metrics = createMetrics(new Registry(), { clock: { now: () => clock } });
  const ops = opsFixture(metrics.registry);
  const name = `${P}fargate_current_stay_seconds`;

  it('shows nothing until a source is set', async () => {
    assert.deepEqual(seriesOf(await ops.scrape(), name), []);
    assert.deepEqual(seriesOf(await ops.scrape(), `${P}state_deployments`), []);
  });

  it('reflects the source at scrape time', async () => {
    metrics.setFargateSource(() => stays);
    stays = [
      { namespace: 'prod', deployment: 'api', since: new Date('2025-01-01T11:58:00Z') },
      { namespace: 'prod', deployment: 'web', since: new Date('2025-01-01T11:59:30Z') },
    ];
    let s = await ops.scrape();
    assert.equal(sampleValue(s, name, { namespace: 'prod', deployment: 'api' }), 120);
    assert.equal(sampleValue(s, name, { namespace: 'prod', deployment: 'web' }), 30);

    clock = new Date('2025-01-01T12:01:00Z');
    s = await ops.scrape();
    assert.equal(sampleValue(s, name, { namespace: 'prod', deployment: 'api' }), 180);
    assert.equal(sampleValue(s, name, { namespace: 'prod', deployment: 'web' }), 90);
  });

  it('drops a Deployment the source no longer returns', async () => {
    stays = stays.filter((x) => x.deployment !== 'api');
    const s = await ops.scrape();
    assert.deepEqual(
      seriesOf(s, name).map((x) => x.labels),
      [{ namespace: 'prod', deployment: 'web' }],
    );
    stays = [];
    assert.deepEqual(seriesOf(await ops.scrape(), name), []);
  });

  it('counts a migrated-at in the future (clock skew) as zero', async () => {
    stays = [{ namespace: 'prod', deployment: 'api', since: new Date(clock.getTime() + 5_000) }];
    assert.equal(sampleValue(await ops.scrape(), name, { namespace: 'prod', deployment: 'api' }), 0);
  });
});

describe('addFargateTime', () => {
  it('ignores negative and non-finite stays instead of throwing', async () => {
    const metrics = createMetrics();
    metrics.addFargateTime('prod', 'api', 10);
    metrics.addFargateTime('prod', 'api', -5);
    metrics.addFargateTime('prod', 'api', Number.NaN);
    const s = parseExposition(await metrics.registry.metrics());
    assert.equal(sampleValue(s, `${P}fargate_stay_seconds_total`, { namespace: 'prod', deployment: 'api' }), 10);
  });
});

describe('a scrape-time source that throws', () => {
  it('fails the scrape, naming the metric, when no onSourceError is given', async () => {
    const metrics = createMetrics();
    metrics.setStateSource(() => {
      throw new Error('cache gone');
    });
    await assert.rejects(metrics.registry.metrics(), (err: Error) => {
      assert.equal(err.message, `reading the source of ${P}state_deployments`);
      assert.equal((err.cause as Error).message, 'cache gone');
      return true;
    });
  });

  it('drops only that metric and reports it when onSourceError is given', async () => {
    const reported: string[] = [];
    const metrics = createMetrics(new Registry(), { onSourceError: (metric) => reported.push(metric) });
    metrics.setFargateSource(() => {
      throw new Error('cache gone');
    });
    metrics.setStateSource(() => ({ spot: 1, fargate: 0 }));
    const s = parseExposition(await metrics.registry.metrics());
    assert.deepEqual(seriesOf(s, `${P}fargate_current_stay_seconds`), []);
    assert.equal(sampleValue(s, `${P}state_deployments`, { state: 'spot' }), 1);
    assert.deepEqual(reported, [`${P}fargate_current_stay_seconds`]);
  });
});
