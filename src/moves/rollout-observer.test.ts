// Phase 2's observer against an in-memory cache and a hand-driven clock: each way a rollout settles,
// with its typed reason. (The real thing runs end to end in test/e2e/migration.test.ts.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1EndpointSlice, V1Pod, V1ReplicaSet, V1Service } from '@kubernetes/client-node';
import { pino } from 'pino';
import { ManualClock } from '../clock-test-support.js';
import { loadConfig } from '../config/load.js';
import type { ChangeType, ClusterView } from '../kube/cluster-view.js';
import { RolloutObserver, type Settlement, type TrackRequest } from './rollout-observer.js';

const config = loadConfig({
  env: { SQS_QUEUE_URL: 'http://localhost:9324/000000000000/q', MODE: 'namespace', NAMESPACE: 'prod', HEALTH_CHECK_RETRIES: '3', HEALTH_CHECK_INTERVAL: '2s' },
});

/** A Deployment at `generation`, whose status says how far its rollout got. */
function deployment(o: { generation?: number; ready?: number; replicas?: number; deadlineExceeded?: boolean }): V1Deployment {
  const replicas = o.replicas ?? 2;
  const ready = o.ready ?? 0;
  const generation = o.generation ?? 2;
  return {
    metadata: { namespace: 'prod', name: 'api', generation, uid: 'uid-api' },
    spec: { replicas, selector: { matchLabels: { app: 'api' } }, template: { metadata: { labels: { app: 'api' } } } },
    status: {
      observedGeneration: generation,
      replicas,
      updatedReplicas: ready,
      availableReplicas: ready,
      readyReplicas: ready,
      unavailableReplicas: replicas - ready,
      conditions: o.deadlineExceeded ? [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'too slow' }] : [],
    },
  };
}

const pod = (name: string, ready: boolean): V1Pod => ({
  metadata: { name, namespace: 'prod', labels: { app: 'api' } },
  status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});

class FakeView {
  current?: V1Deployment;
  pods: V1Pod[] = [];
  services: V1Service[] = [];
  slices: V1EndpointSlice[] = [];
  private listeners: ((d: V1Deployment, c: ChangeType) => void)[] = [];

  onDeployment(l: (d: V1Deployment, c: ChangeType) => void) {
    this.listeners.push(l);
  }
  deployment() {
    return this.current;
  }
  currentReplicaSet(): V1ReplicaSet {
    return { metadata: { name: 'api-new', namespace: 'prod' } };
  }
  podsOfReplicaSet() {
    return this.pods;
  }
  servicesFor() {
    return this.services;
  }
  endpointSlicesOf() {
    return this.slices;
  }
  /** What the watch delivers. */
  deliver(d: V1Deployment, change: ChangeType = 'update') {
    this.current = change === 'delete' ? undefined : d;
    for (const l of this.listeners) l(d, change);
  }
}

function setUp() {
  const clock = new ManualClock();
  const view = new FakeView();
  const healthFailures: string[] = [];
  const observer = new RolloutObserver({
    view: view as unknown as ClusterView,
    config,
    clock,
    onHealthCheckFailed: (key, attempt, of, detail) => healthFailures.push(`${key} ${attempt}/${of}: ${detail}`),
  });
  const request = (o: Partial<TrackRequest> = {}): TrackRequest => ({
    namespace: 'prod',
    name: 'api',
    purpose: 'migration',
    minGeneration: 2,
    startedAt: clock.now(),
    timeoutMs: 60_000,
    verificationDelayMs: 1000,
    log: pino({ level: 'silent' }),
    ...o,
  });
  return { clock, view, observer, request, healthFailures };
}

/** The settlement, or undefined while it is still open. */
function peek(p: Promise<Settlement>): { value?: Settlement } {
  const box: { value?: Settlement } = {};
  void p.then((v) => {
    box.value = v;
  });
  return box;
}

describe('RolloutObserver', () => {
  it('settles complete once the rollout is done and the new pods stay Ready through verification', async () => {
    const { clock, view, observer, request } = setUp();
    view.current = deployment({ ready: 0 });
    const result = peek(observer.track(request()));
    await clock.advance(5000);
    assert.equal(result.value, undefined, 'still progressing');
    view.pods = [pod('api-1', true), pod('api-2', true)];
    view.deliver(deployment({ ready: 2 }));
    await clock.advance(999);
    assert.equal(result.value, undefined, 'verification waits its delay');
    await clock.advance(1);
    assert.deepEqual(result.value, { result: 'complete', durationMs: 6000 });
    assert.equal(observer.inFlight, 0);
  });

  it('ignores what the watch says of an older generation than the patch made', async () => {
    const { clock, view, observer, request } = setUp();
    view.current = deployment({ generation: 1, ready: 2 });
    view.pods = [pod('api-1', true), pod('api-2', true)];
    const result = peek(observer.track(request({ minGeneration: 2 })));
    await clock.advance(5000);
    assert.equal(result.value, undefined, 'generation 1 complete says nothing about our rollout');
  });

  it('fails with reason timeout when not healthy within the rollout timeout', async () => {
    const { clock, view, observer, request } = setUp();
    view.current = deployment({ ready: 1 });
    const result = peek(observer.track(request({ timeoutMs: 30_000 })));
    await clock.advance(30_000);
    assert.equal(result.value?.result, 'failed');
    assert.ok(result.value?.result === 'failed' && result.value.reason === 'timeout');
    assert.match(result.value.detail, /^rollout not healthy within 30000 ms: .*1\/2 available/);
  });

  it('fails with reason progress-deadline-exceeded when Kubernetes gives up on the rollout', async () => {
    const { clock, view, observer, request } = setUp();
    view.current = deployment({ ready: 0 });
    const result = peek(observer.track(request()));
    view.deliver(deployment({ ready: 0, deadlineExceeded: true }));
    await clock.advance(0);
    assert.ok(result.value?.result === 'failed' && result.value.reason === 'progress-deadline-exceeded', JSON.stringify(result.value));
    assert.equal(clock.timers, 0, 'its timeout timer is cancelled');
  });

  it('fails with reason health-check-failed after every retry, telling each failed attempt', async () => {
    const { clock, view, observer, request, healthFailures } = setUp();
    view.pods = [pod('api-1', true), pod('api-2', false)];
    view.current = deployment({ ready: 2 });
    const result = peek(observer.track(request()));
    await clock.advance(1000 + 2000 + 2000);
    assert.ok(result.value?.result === 'failed' && result.value.reason === 'health-check-failed', JSON.stringify(result.value));
    assert.match(result.value.detail, /^health check failed 3 times: 1\/2 new pods Ready/);
    assert.deepEqual(
      healthFailures.map((f) => f.split(':')[0]),
      ['prod/api 1/3', 'prod/api 2/3', 'prod/api 3/3'],
    );
  });

  it("waits out another writer's generation that the deployment controller has not observed yet, without counting it as a failed check", async () => {
    const { clock, view, observer, request, healthFailures } = setUp();
    view.pods = [pod('api-1', true), pod('api-2', true)];
    view.current = deployment({ ready: 2 });
    const result = peek(observer.track(request({ timeoutMs: 30_000 })));
    // During the verification delay someone changes an annotation: generation 3, still observed 2.
    const ahead = deployment({ generation: 3, ready: 2 });
    ahead.status!.observedGeneration = 2;
    view.deliver(ahead);
    await clock.advance(1000 + 5 * 2000);
    assert.equal(result.value, undefined, 'not settled while the status speaks for an older generation');
    assert.deepEqual(healthFailures, [], 'an unknown health is not a failed check');
    view.deliver(deployment({ generation: 3, ready: 2 }));
    await clock.advance(0);
    assert.deepEqual(result.value, { result: 'complete', durationMs: 11_000 }, 'the copy that shows it observed ends the wait at once');
  });

  it('a Deployment written to all the time is judged on the copy whose generation is observed, between two writes', async () => {
    const { clock, view, observer, request, healthFailures } = setUp();
    view.pods = [pod('api-1', true), pod('api-2', true)];
    view.current = deployment({ ready: 2 });
    const result = peek(observer.track(request({ timeoutMs: 30_000 })));
    // A write every 300 ms; from 1.5 s on, the deployment controller catches up 100 ms after each,
    // and the next write comes 200 ms later. The verification's first look (at 1 s) finds the
    // generation unobserved; the first observed copy (at 1.6 s) is the one judged, not the next tick.
    let generation = 2;
    for (let elapsed = 0; elapsed < 6000 && result.value === undefined; elapsed += 300) {
      generation++;
      const written = deployment({ generation, ready: 2 });
      written.status!.observedGeneration = generation - 1;
      view.deliver(written);
      await clock.advance(100);
      if (elapsed >= 1500) view.deliver(deployment({ generation, ready: 2 }));
      await clock.advance(200);
    }
    assert.ok(result.value?.result === 'complete', JSON.stringify(result.value));
    assert.equal(result.value.durationMs, 1600, 'judged on the first observed copy, not on the 2 s interval');
    assert.deepEqual(healthFailures, []);
  });

  it('a generation never observed ends in the rollout timeout, not in failed health checks', async () => {
    const { clock, view, observer, request, healthFailures } = setUp();
    view.pods = [pod('api-1', true), pod('api-2', true)];
    const ahead = deployment({ generation: 3, ready: 2 });
    ahead.status!.observedGeneration = 2;
    view.current = deployment({ ready: 2 });
    const result = peek(observer.track(request({ timeoutMs: 30_000 })));
    view.deliver(ahead);
    await clock.advance(30_000);
    assert.ok(result.value?.result === 'failed' && result.value.reason === 'timeout', JSON.stringify(result.value));
    assert.match(result.value.detail, /generation 3 not yet observed \(observed 2\)/);
    assert.deepEqual(healthFailures, []);
  });

  it('replicas an autoscaler adds during verification, still starting, do not fail the move; the replicas it rolled out must stay Ready', async () => {
    for (const keepsBoth of [true, false]) {
      const { clock, view, observer, request, healthFailures } = setUp();
      view.pods = [pod('api-1', true), pod('api-2', true)];
      view.current = deployment({ ready: 2 });
      const result = peek(observer.track(request()));
      // Scaled from 2 to 4 (generation 3, observed): two new pods starting, every pod of the new template.
      const scaled = deployment({ generation: 3, replicas: 4, ready: 2 });
      scaled.status!.updatedReplicas = 4;
      view.deliver(scaled);
      view.pods = [pod('api-1', keepsBoth), pod('api-2', true), pod('api-3', false), pod('api-4', false)];
      await clock.advance(1000 + 2 * 2000);
      if (keepsBoth) {
        assert.deepEqual(result.value, { result: 'complete', durationMs: 1000 });
        assert.deepEqual(healthFailures, []);
      } else {
        assert.ok(result.value?.result === 'failed' && result.value.reason === 'health-check-failed', JSON.stringify(result.value));
        assert.match(result.value.detail, /1\/2 new pods Ready$/);
      }
    }
  });

  it('a rollout that is short for another reason than a scale-up still fails the check', async () => {
    const { clock, view, observer, request } = setUp();
    view.pods = [pod('api-1', true), pod('api-2', true)];
    view.current = deployment({ ready: 2 });
    const result = peek(observer.track(request()));
    // Scaled up, but an old ReplicaSet's pod is back in the count (a new template rolling out).
    const rolling = deployment({ generation: 3, replicas: 4, ready: 2 });
    rolling.status!.updatedReplicas = 3;
    view.deliver(rolling);
    await clock.advance(1000 + 2 * 2000);
    assert.ok(result.value?.result === 'failed' && result.value.reason === 'health-check-failed', JSON.stringify(result.value));
    assert.match(result.value.detail, /rollout no longer complete: 3\/4 updated/);
  });

  it('a Deployment behind a Service is healthy only when its new pods are ready endpoints', async () => {
    const { clock, view, observer, request } = setUp();
    view.pods = [pod('api-1', true), pod('api-2', true)];
    view.services = [{ metadata: { name: 'api', namespace: 'prod' }, spec: { selector: { app: 'api' } } }];
    view.slices = [{ addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.1'], targetRef: { kind: 'Pod', name: 'api-1' }, conditions: { ready: true } }] }];
    view.current = deployment({ ready: 2 });
    const result = peek(observer.track(request()));
    await clock.advance(1000);
    assert.equal(result.value, undefined);
    assert.match(observer.healthProblem('default', 'api', 2) ?? '', /service api has no ready endpoint for 1 new pod\(s\), e\.g\. api-2/);
    view.slices[0]!.endpoints!.push({ addresses: ['10.0.0.2'], targetRef: { kind: 'Pod', name: 'api-2' }, conditions: { ready: true } });
    await clock.advance(2000);
    assert.equal((result.value as Settlement | undefined)?.result, 'complete');
  });

  it('settles stood-down when the move’s signal aborts, or when a new observation replaces it', async () => {
    const { clock, view, observer, request } = setUp();
    view.current = deployment({ ready: 0 });
    const abort = new AbortController();
    const first = peek(observer.track(request({ purpose: 'recovery' }), abort.signal));
    abort.abort('superseded');
    await clock.advance(0);
    assert.deepEqual(first.value, { result: 'failed', reason: 'stood-down', detail: 'superseded' });
    const second = peek(observer.track(request({ purpose: 'recovery' })));
    const third = peek(observer.track(request({ purpose: 'migration' })));
    await clock.advance(0);
    assert.ok(second.value?.result === 'failed' && second.value.reason === 'stood-down');
    assert.equal(third.value, undefined);
    assert.equal(observer.inFlight, 1);
  });

  it('fails with reason deleted when the Deployment goes away', async () => {
    const { clock, view, observer, request } = setUp();
    const d = deployment({ ready: 0 });
    view.current = d;
    const result = peek(observer.track(request()));
    view.deliver(d, 'delete');
    await clock.advance(0);
    assert.ok(result.value?.result === 'failed' && result.value.reason === 'deleted');
  });

  it('settles template-reverted from the watch, also while verifying, and never from a copy older than the patch', async () => {
    const { clock, view, observer, request } = setUp();
    const spot = (d: V1Deployment): V1Deployment => ({ ...d, spec: { ...d.spec!, template: { metadata: { labels: { app: 'api', tier: 'spot' } } } } });
    const reverted = (d: V1Deployment) => (d.spec?.template.metadata?.labels?.tier === 'spot' ? 'tier=spot' : undefined);

    // An older copy with the old template is not a revert: the watch has not caught up with the patch.
    view.current = spot(deployment({ generation: 1, ready: 0 }));
    const first = peek(observer.track(request({ reverted })));
    await clock.advance(100);
    assert.equal(first.value, undefined);
    view.deliver(deployment({ generation: 2, ready: 0 }));
    await clock.advance(100);
    assert.equal(first.value, undefined, 'our own template, rolling out');
    view.deliver(spot(deployment({ generation: 3, ready: 0 })));
    await clock.advance(0);
    assert.deepEqual(first.value, { result: 'failed', reason: 'template-reverted', detail: 'tier=spot' });
    assert.equal(clock.timers, 0, 'its timeout timer is cancelled');

    // Complete and verifying: the reverted template's rollout must not pass for ours.
    view.pods = [pod('api-1', true), pod('api-2', true)];
    view.current = deployment({ generation: 3, ready: 2 });
    const second = peek(observer.track(request({ minGeneration: 3, reverted })));
    await clock.advance(500);
    assert.equal(second.value, undefined, 'verification waits its delay');
    view.deliver(spot(deployment({ generation: 4, ready: 2 })));
    await clock.advance(0);
    const settledSecond = second.value as Settlement | undefined;
    assert.ok(settledSecond?.result === 'failed' && settledSecond.reason === 'template-reverted', JSON.stringify(settledSecond));

    // A copy the cache holds but the handler has not been called for is caught before success.
    view.current = deployment({ generation: 4, ready: 2 });
    const third = peek(observer.track(request({ minGeneration: 4, reverted })));
    view.current = spot(deployment({ generation: 5, ready: 2 }));
    await clock.advance(1000);
    const settledThird = third.value as Settlement | undefined;
    assert.ok(settledThird?.result === 'failed' && settledThird.reason === 'template-reverted', JSON.stringify(settledThird));

    // Without the check (a rollback, a recovery) the same change is just a rollout.
    view.current = spot(deployment({ generation: 5, ready: 2 }));
    const fourth = peek(observer.track(request({ minGeneration: 5, purpose: 'rollback' })));
    await clock.advance(1000);
    assert.deepEqual(fourth.value, { result: 'complete', durationMs: 1000 });
  });
});
