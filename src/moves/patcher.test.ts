// The Deployment patcher against an in-memory AppsV1Api that keeps one Deployment as the API server
// does (every write a new resourceVersion; a JSON Patch whose `test` op fails is refused with a bare
// 422): optimistic concurrency, recomputing after a refusal, retries with backoff on a hand-driven
// clock, and how each failure is classified.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiException, type AppsV1Api, type V1Deployment } from '@kubernetes/client-node';
import { pino } from 'pino';
import { ManualClock } from '../clock-test-support.js';
import { JSON_PATCH } from '../kube/api.js';
import { capturingLog } from '../log-test-support.js';
import { applyJsonPatch, type JsonPatchOp, pointer } from '../migration/json-patch.js';
import { conflictPause, DeploymentPatcher, type PatchDecision, type PatcherOptions } from './patcher.js';

const NS = 'shop';
const NAME = 'web';

/** An error as client-node 2.0 throws it for a non-2xx answer: the status as `code`, the Status object as the body. */
function apiError(code: number, message: string, headers: Record<string, string> = {}): ApiException<string> {
  return new ApiException(code, 'Unknown API Status Code!', JSON.stringify({ kind: 'Status', status: 'Failure', message, code }), headers);
}

const networkError = () => Object.assign(new TypeError('fetch failed'), { cause: new Error('read ECONNRESET') });

function deployment(replicas = 3): V1Deployment {
  return {
    metadata: { name: NAME, namespace: NS, annotations: {} },
    spec: { replicas, selector: { matchLabels: { app: NAME } }, template: { metadata: { labels: { app: NAME } } } },
  };
}

/** One Deployment in memory, written as the API server writes it. */
class FakeApps {
  stored: V1Deployment | undefined;
  private version = 100;
  /** Every call made, in order: 'get' or 'patch'. */
  readonly calls: ('get' | 'patch')[] = [];
  readonly patchBodies: JsonPatchOp[][] = [];
  readonly patchOptions: unknown[] = [];
  /** Errors the next calls of each verb throw, in order, before the fake answers for real. */
  readonly failNext: { get: unknown[]; patch: unknown[] } = { get: [], patch: [] };
  /** Runs just before a patch is applied (another writer sneaking in). */
  beforePatch?: () => void;

  constructor(initial: V1Deployment | null = deployment()) {
    if (initial) this.stored = this.stamped(initial);
  }

  /** Another writer changes the Deployment; it gets a new resourceVersion. */
  otherWriter(change: (d: V1Deployment) => void): void {
    const d = structuredClone(this.stored!);
    change(d);
    this.stored = this.stamped(d);
  }

  get copy(): V1Deployment {
    return structuredClone(this.stored!);
  }

  count(verb: 'get' | 'patch'): number {
    return this.calls.filter((c) => c === verb).length;
  }

  readonly api = {
    readNamespacedDeployment: async ({ name, namespace }: { name: string; namespace: string }) => {
      this.calls.push('get');
      await Promise.resolve();
      if (this.failNext.get.length > 0) throw this.failNext.get.shift();
      if (!this.matches(name, namespace)) throw apiError(404, `deployments.apps "${name}" not found`);
      return this.copy;
    },
    patchNamespacedDeployment: async ({ name, namespace, body }: { name: string; namespace: string; body: JsonPatchOp[] }, options: unknown) => {
      this.calls.push('patch');
      this.patchBodies.push(body);
      this.patchOptions.push(options);
      await Promise.resolve();
      if (this.failNext.patch.length > 0) throw this.failNext.patch.shift();
      if (!this.matches(name, namespace)) throw apiError(404, `deployments.apps "${name}" not found`);
      this.beforePatch?.();
      let next: V1Deployment;
      try {
        next = applyJsonPatch(this.stored!, body);
      } catch {
        // What the API server answers for any JSON Patch that does not apply, a failed `test` included.
        throw apiError(422, 'the server rejected our request due to an error in our request');
      }
      this.stored = this.stamped(next);
      return this.copy;
    },
  } as unknown as AppsV1Api;

  private matches(name: string, namespace: string): boolean {
    return this.stored !== undefined && name === this.stored.metadata?.name && namespace === this.stored.metadata?.namespace;
  }

  private stamped(d: V1Deployment): V1Deployment {
    const managedFields = [{ manager: 'kube-controller-manager', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: { 'f:status': {} } }];
    return { ...d, metadata: { ...d.metadata, resourceVersion: String(++this.version), managedFields } };
  }
}

/** The planners' guard: each patch first tests the resourceVersion it was computed from. */
function guarded(d: V1Deployment, ops: JsonPatchOp[]): PatchDecision {
  return { ops: [{ op: 'test', path: pointer('metadata', 'resourceVersion'), value: d.metadata!.resourceVersion }, ...ops] };
}

/** A decision that depends on what it reads: one more replica than the copy it was given has. */
function addReplica(seen: string[] = []) {
  return (d: V1Deployment): PatchDecision => {
    seen.push(d.metadata!.resourceVersion!);
    return guarded(d, [{ op: 'replace', path: '/spec/replicas', value: d.spec!.replicas! + 1 }]);
  };
}

function harness(fake: FakeApps, options: Partial<PatcherOptions> = {}) {
  const clock = new ManualClock();
  const apiErrors: [string, string][] = [];
  const { log, lines } = capturingLog();
  const patcher = new DeploymentPatcher(fake.api, log, {
    dryRun: false,
    clock,
    onApiError: (verb, code) => void apiErrors.push([verb, code]),
    // The middle of the jitter: each pause between conflict retries is its base.
    random: () => 0.5,
    ...options,
  });
  return { patcher, clock, apiErrors, lines };
}

/** Advances the clock 1 ms at a time until `work` settles; the clock time it took. */
async function timed<T>(clock: ManualClock, work: Promise<T>): Promise<{ value: T; ms: number }> {
  const start = clock.now().getTime();
  let settledAt: number | undefined;
  const settled = work.finally(() => {
    settledAt = clock.now().getTime();
  });
  while (settledAt === undefined) {
    assert.ok(clock.now().getTime() - start < 60_000, 'still not settled after a minute of clock time');
    await clock.advance(1);
  }
  return { value: await settled, ms: settledAt - start };
}

describe('DeploymentPatcher', () => {
  it('patches the cached copy without reading it first, as a JSON Patch, and returns what the server answered', async () => {
    const fake = new FakeApps();
    const { patcher, apiErrors } = harness(fake);
    const out = await patcher.apply(NS, NAME, fake.copy, addReplica());
    assert.deepEqual(fake.calls, ['patch']);
    assert.equal(fake.patchOptions[0], JSON_PATCH);
    assert.equal(out.outcome, 'patched');
    assert.ok(out.outcome === 'patched');
    assert.equal(out.dryRun, false);
    assert.equal(out.deployment.spec?.replicas, 4);
    assert.equal(out.deployment.metadata?.resourceVersion, fake.stored!.metadata!.resourceVersion);
    assert.equal(out.deployment.metadata?.resourceVersion, '102', 'the version the write made, not the one it was tested against');
    assert.equal(out.deployment.metadata?.managedFields, undefined, 'a move holds this copy until it ends: no managedFields');
    assert.ok(fake.stored!.metadata!.managedFields, 'the server side has them');
    assert.deepEqual(apiErrors, []);
  });

  it('reads the Deployment first when no cached copy is given', async () => {
    const fake = new FakeApps();
    const seen: string[] = [];
    const { patcher } = harness(fake);
    const out = await patcher.apply(NS, NAME, undefined, addReplica(seen));
    assert.deepEqual(fake.calls, ['get', 'patch']);
    assert.deepEqual(seen, ['101']);
    assert.equal(out.outcome, 'patched');
    assert.equal(fake.stored!.spec!.replicas, 4);
    assert.ok(out.outcome === 'patched');
    assert.equal(out.deployment.metadata?.managedFields, undefined);
  });

  it("refuses a change computed from a stale cached copy (422 from the failed test), decides again on a fresh read and keeps the other writer's change", async () => {
    const fake = new FakeApps(deployment(3));
    const stale = fake.copy;
    fake.otherWriter((d) => {
      d.spec!.replicas = 5;
      d.metadata!.annotations!.owner = 'someone-else';
    });
    const seen: string[] = [];
    const { patcher, apiErrors } = harness(fake);
    const out = await patcher.apply(NS, NAME, stale, addReplica(seen));
    // patch (refused), get (did it change? yes: that copy is decided on), patch.
    assert.deepEqual(fake.calls, ['patch', 'get', 'patch']);
    assert.deepEqual(seen, ['101', '102'], 'decided on the stale copy, then on the fresh one');
    assert.equal(out.outcome, 'patched');
    assert.equal(fake.stored!.spec!.replicas, 6, 'one more than the other writer left, not one more than the stale copy');
    assert.equal(fake.stored!.metadata!.annotations!.owner, 'someone-else');
    assert.deepEqual(apiErrors, [['patch', '422']]);
  });

  it('recomputes from a fresh read after a 409 Conflict', async () => {
    const fake = new FakeApps(deployment(3));
    fake.failNext.patch.push(apiError(409, 'Operation cannot be fulfilled on deployments.apps "web": the object has been modified'));
    const seen: string[] = [];
    const { patcher, apiErrors } = harness(fake);
    const out = await patcher.apply(NS, NAME, fake.copy, addReplica(seen));
    assert.deepEqual(fake.calls, ['patch', 'get', 'patch'], 'a 409 needs no read to tell it from an invalid patch');
    assert.equal(seen.length, 2);
    assert.equal(out.outcome, 'patched');
    assert.equal(fake.stored!.spec!.replicas, 4);
    assert.deepEqual(apiErrors, [['patch', '409']]);
  });

  it('gives up with a transient error after maxConflictRetries conflicts, pausing before every recompute but the first', async () => {
    const fake = new FakeApps();
    const conflict = () => apiError(409, 'the object has been modified; please apply your changes to the latest version and try again');
    fake.failNext.patch.push(conflict(), conflict(), conflict(), conflict());
    const { patcher, clock, apiErrors } = harness(fake, { maxConflictRetries: 2 });
    const { value: out, ms } = await timed(clock, patcher.apply(NS, NAME, fake.copy, addReplica()));
    assert.equal(fake.count('patch'), 3, 'the first try and two recomputes');
    assert.equal(fake.count('get'), 2);
    assert.equal(ms, 10, 'no pause before the first recompute, 10 ms before the second');
    assert.deepEqual(out, {
      outcome: 'error',
      error: 'patching deployment shop/web: the object has been modified; please apply your changes to the latest version and try again',
      transient: true,
    });
    assert.deepEqual(apiErrors, [
      ['patch', '409'],
      ['patch', '409'],
      ['patch', '409'],
    ]);
    assert.equal(fake.stored!.spec!.replicas, 3, 'nothing written');
  });

  it('allows 8 conflict retries by default, with pauses of 10 ms doubling to 320 ms', async () => {
    const fake = new FakeApps();
    for (let i = 0; i < 20; i++) fake.failNext.patch.push(apiError(409, 'conflict'));
    const { patcher, clock } = harness(fake);
    const { value: out, ms } = await timed(clock, patcher.apply(NS, NAME, fake.copy, addReplica()));
    assert.equal(fake.count('patch'), 9);
    assert.equal(ms, 10 + 20 + 40 + 80 + 160 + 320 + 320);
    assert.equal(out.outcome, 'error');
  });

  it('jitters each pause between half and one and a half times its base', () => {
    assert.deepEqual(
      [2, 3, 7, 8, 30].map((n) => [conflictPause(n, () => 0), conflictPause(n, () => 0.999)]),
      [
        [5, 15],
        [10, 30],
        [160, 480],
        [160, 480],
        [160, 480],
      ],
    );
  });

  it('keeps recomputing while another writer keeps winning, and succeeds once it stops', async () => {
    const fake = new FakeApps(deployment(3));
    let interferences = 3;
    fake.beforePatch = () => {
      if (interferences-- > 0) fake.otherWriter((d) => void (d.spec!.replicas = d.spec!.replicas! + 10));
    };
    const seen: string[] = [];
    const { patcher, clock, apiErrors } = harness(fake);
    const { value: out } = await timed(clock, patcher.apply(NS, NAME, fake.copy, addReplica(seen)));
    assert.equal(out.outcome, 'patched');
    assert.equal(fake.stored!.spec!.replicas, 34, 'the three writes of +10 and ours');
    assert.equal(seen.length, 4);
    assert.deepEqual(apiErrors, [
      ['patch', '422'],
      ['patch', '422'],
      ['patch', '422'],
    ]);
  });

  it('still losing to another writer after the last recompute (a 422 from the failed test) is a transient error, worth another try later', async () => {
    const fake = new FakeApps(deployment(3));
    fake.beforePatch = () => fake.otherWriter((d) => void (d.spec!.replicas = d.spec!.replicas! + 10));
    const { patcher, clock, apiErrors } = harness(fake, { maxConflictRetries: 2 });
    const { value: out } = await timed(clock, patcher.apply(NS, NAME, fake.copy, addReplica()));
    assert.deepEqual(out, {
      outcome: 'error',
      error: 'patching deployment shop/web: the server rejected our request due to an error in our request',
      transient: true,
    });
    assert.deepEqual(apiErrors, Array(3).fill(['patch', '422']));
    assert.equal(fake.stored!.spec!.replicas, 33, "only the other writer's three changes");
  });

  it('reports a 422 on an unchanged Deployment as a non-transient error (the patch itself is invalid), without retrying', async () => {
    const fake = new FakeApps();
    const { patcher, apiErrors } = harness(fake);
    const out = await patcher.apply(NS, NAME, fake.copy, (d) => guarded(d, [{ op: 'remove', path: '/spec/paused' }]));
    assert.deepEqual(fake.calls, ['patch', 'get'], 'one read to see the resourceVersion is still the tested one');
    assert.deepEqual(out, {
      outcome: 'error',
      error: 'patching deployment shop/web: the server rejected our request due to an error in our request',
      transient: false,
    });
    assert.deepEqual(apiErrors, [['patch', '422']]);
  });

  it('a 422 that cannot be told apart, the read after it failing, is transient: the Deployment is not given up on', async () => {
    const fake = new FakeApps();
    fake.failNext.patch.push(apiError(422, 'the server rejected our request due to an error in our request'));
    fake.failNext.get.push(apiError(503, 'etcdserver: leader changed'));
    const { patcher, apiErrors } = harness(fake);
    const out = await patcher.apply(NS, NAME, fake.copy, addReplica());
    assert.deepEqual(fake.calls, ['patch', 'get']);
    assert.deepEqual(out, {
      outcome: 'error',
      error: 'patching deployment shop/web: the server rejected our request due to an error in our request',
      transient: true,
    });
    assert.deepEqual(apiErrors, [['patch', '422']]);
  });

  it('answers not_found when the read finds no Deployment', async () => {
    const fake = new FakeApps(null);
    let decided = false;
    const { patcher, apiErrors } = harness(fake);
    const out = await patcher.apply(NS, NAME, undefined, (d) => {
      decided = true;
      return guarded(d, []);
    });
    assert.deepEqual(out, { outcome: 'not_found' });
    assert.equal(decided, false);
    assert.deepEqual(fake.calls, ['get'], 'a 404 is not retried');
    assert.deepEqual(apiErrors, []);
  });

  it('answers not_found when the Deployment was deleted after it was cached', async () => {
    const fake = new FakeApps();
    const cached = fake.copy;
    fake.stored = undefined;
    const { patcher, apiErrors } = harness(fake);
    const out = await patcher.apply(NS, NAME, cached, addReplica());
    assert.deepEqual(out, { outcome: 'not_found' });
    assert.deepEqual(fake.calls, ['patch']);
    assert.deepEqual(apiErrors, []);
  });

  it('writes nothing when decide() skips, and says why', async () => {
    const fake = new FakeApps();
    const { patcher } = harness(fake);
    const cached = fake.copy;
    const out = await patcher.apply(NS, NAME, cached, () => ({ skip: 'already on Fargate' }));
    assert.deepEqual(out, { outcome: 'skipped', deployment: cached, why: 'already on Fargate' });
    assert.deepEqual(fake.calls, []);
  });

  it('writes nothing when decide() refuses, and reports a non-transient error', async () => {
    const fake = new FakeApps();
    const { patcher, apiErrors } = harness(fake);
    const out = await patcher.apply(NS, NAME, undefined, () => ({ error: 'uses a hostPath volume' }));
    assert.deepEqual(out, { outcome: 'error', error: 'uses a hostPath volume', transient: false });
    assert.deepEqual(fake.calls, ['get']);
    assert.deepEqual(apiErrors, []);
  });

  it('never patches in dry run: it logs the ops and answers with the unchanged copy', async () => {
    const fake = new FakeApps();
    const { patcher, lines } = harness(fake, { dryRun: true });
    const cached = fake.copy;
    const out = await patcher.apply(NS, NAME, cached, addReplica());
    assert.deepEqual(out, { outcome: 'patched', deployment: cached, dryRun: true });
    assert.deepEqual(fake.calls, []);
    const line = lines.find((l) => l.msg === 'dry run: would patch');
    assert.equal(line?.deployment, 'shop/web');
    assert.deepEqual(line?.ops, [
      { op: 'test', path: '/metadata/resourceVersion', value: '101' },
      { op: 'replace', path: '/spec/replicas', value: 4 },
    ]);

    const read = await patcher.apply(NS, NAME, undefined, addReplica());
    assert.equal(read.outcome, 'patched');
    assert.deepEqual(fake.calls, ['get'], 'a dry run still reads');
    assert.equal(fake.stored!.spec!.replicas, 3);
  });

  it('retries 429 and 5xx answers with doubling backoff on the clock, counting each failure', async () => {
    const fake = new FakeApps();
    fake.failNext.patch.push(apiError(503, 'etcdserver: leader changed'), apiError(500, 'etcdserver: request timed out'), apiError(429, 'too many requests'));
    const { patcher, clock, apiErrors, lines } = harness(fake);
    let settled = false;
    const done = patcher.apply(NS, NAME, fake.copy, addReplica()).finally(() => {
      settled = true;
    });
    await clock.advance(199);
    assert.equal(fake.count('patch'), 1);
    await clock.advance(1);
    assert.equal(fake.count('patch'), 2, 'first retry after 200 ms');
    await clock.advance(399);
    assert.equal(fake.count('patch'), 2);
    await clock.advance(1);
    assert.equal(fake.count('patch'), 3, 'second after 400 ms more');
    await clock.advance(799);
    assert.equal(settled, false);
    await clock.advance(1);
    const out = await done;
    assert.equal(fake.count('patch'), 4, 'third after 800 ms more');
    assert.equal(out.outcome, 'patched');
    assert.equal(fake.stored!.spec!.replicas, 4);
    assert.deepEqual(fake.calls, ['patch', 'patch', 'patch', 'patch'], 'a retry is the same patch, not a recompute');
    assert.deepEqual(apiErrors, [
      ['patch', '503'],
      ['patch', '500'],
      ['patch', '429'],
    ]);
    assert.deepEqual(
      lines.filter((l) => l.msg === 'Kubernetes API call failed; retrying').map((l) => [l.attempt, l.delayMs, l.err]),
      [
        [1, 200, 'etcdserver: leader changed'],
        [2, 400, 'etcdserver: request timed out'],
        [3, 800, 'too many requests'],
      ],
    );
  });

  it("waits as long as a 429's Retry-After asks", async () => {
    const fake = new FakeApps();
    fake.failNext.patch.push(apiError(429, 'storage is (re)initializing', { 'retry-after': '3' }));
    const { patcher, clock } = harness(fake);
    const done = patcher.apply(NS, NAME, fake.copy, addReplica());
    await clock.advance(2999);
    assert.equal(fake.count('patch'), 1);
    await clock.advance(1);
    assert.equal((await done).outcome, 'patched');
    assert.equal(fake.count('patch'), 2);
  });

  it('retries the read too', async () => {
    const fake = new FakeApps();
    fake.failNext.get.push(networkError());
    const { patcher, clock, apiErrors } = harness(fake);
    const done = patcher.apply(NS, NAME, undefined, addReplica());
    await clock.advance(200);
    assert.equal((await done).outcome, 'patched');
    assert.deepEqual(fake.calls, ['get', 'get', 'patch']);
    assert.deepEqual(apiErrors, [['get', 'network']]);
  });

  it('gives a transient error when a network failure outlasts the six attempts', async () => {
    const fake = new FakeApps();
    for (let i = 0; i < 6; i++) fake.failNext.patch.push(networkError());
    const { patcher, clock, apiErrors } = harness(fake);
    const done = patcher.apply(NS, NAME, fake.copy, addReplica());
    await clock.advance(200 + 400 + 800 + 1600 + 3200);
    const out = await done;
    assert.equal(fake.count('patch'), 6);
    assert.deepEqual(out, { outcome: 'error', error: 'patching deployment shop/web: fetch failed', transient: true });
    assert.equal(apiErrors.length, 6);
    assert.ok(apiErrors.every(([verb, code]) => verb === 'patch' && code === 'network'));
  });

  it('gives a transient error when the read keeps failing with a server error', async () => {
    const fake = new FakeApps();
    for (let i = 0; i < 6; i++) fake.failNext.get.push(apiError(500, 'etcdserver: request timed out'));
    const { patcher, clock, apiErrors } = harness(fake);
    let decided = false;
    const done = patcher.apply(NS, NAME, undefined, (d) => {
      decided = true;
      return guarded(d, []);
    });
    await clock.advance(60_000);
    const out = await done;
    assert.deepEqual(out, { outcome: 'error', error: 'patching deployment shop/web: etcdserver: request timed out', transient: true });
    assert.equal(decided, false);
    assert.equal(fake.count('get'), 6);
    assert.equal(fake.count('patch'), 0);
    assert.equal(apiErrors.length, 6);
    assert.deepEqual(apiErrors.slice(0, 5), Array(5).fill(['get', '500']));
  });

  it('does not retry other client errors, and reports them as non-transient', async () => {
    const fake = new FakeApps();
    fake.failNext.patch.push(apiError(403, 'deployments.apps "web" is forbidden: User "system:serviceaccount:ops:orchestrator" cannot patch resource'));
    const { patcher, apiErrors } = harness(fake);
    const out = await patcher.apply(NS, NAME, fake.copy, addReplica());
    assert.equal(fake.count('patch'), 1);
    assert.equal(out.outcome, 'error');
    assert.ok(out.outcome === 'error' && !out.transient);
    assert.match(out.error, /^patching deployment shop\/web: deployments.apps "web" is forbidden/);
    assert.deepEqual(apiErrors, [['patch', '403']]);
  });

  it('works without onApiError', async () => {
    const fake = new FakeApps();
    fake.failNext.patch.push(apiError(409, 'conflict'));
    const patcher = new DeploymentPatcher(fake.api, pino({ level: 'silent' }), { dryRun: false, clock: new ManualClock() });
    const out = await patcher.apply(NS, NAME, fake.copy, addReplica());
    assert.equal(out.outcome, 'patched');
  });
});
