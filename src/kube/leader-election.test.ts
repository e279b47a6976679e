// Leader election against an in-memory CoordinationV1Api that keeps one Lease as the API server
// does (every write a new resourceVersion, a write carrying a stale one refused with 409, merge
// patches with null deleting a field), with time driven by a ManualClock: nobody waits for real.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiException, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import { pino } from 'pino';
import { ManualClock } from '../clock-test-support.js';
import { capturingLog } from '../log-test-support.js';
import { MERGE_PATCH } from './api.js';
import { LeaderElector, microTime } from './leader-election.js';

const NS = 'ops';
const LEASE = 'spot-orchestrator';
// client-go's defaults, which are also this project's.
const LEASE_MS = 15_000;
const RENEW_DEADLINE_MS = 10_000;
const RETRY_MS = 2_000;

function apiError(code: number, reason: string, message: string): ApiException<string> {
  return new ApiException(code, 'Unknown API Status Code!', JSON.stringify({ kind: 'Status', status: 'Failure', reason, message, code }), {});
}

/** RFC 7386 JSON Merge Patch, as the API server applies `application/merge-patch+json`. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as object) } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else if (value !== undefined) out[key] = mergePatch(out[key], value);
  }
  return out;
}

interface Write {
  by: string;
  verb: 'create' | 'patch';
  body: V1Lease;
  options?: unknown;
}

/** One Lease in memory, shared by the clients of several candidates; each client can be cut off. */
class FakeLeases {
  lease: V1Lease | undefined;
  private version = 0;
  /** Writes refused because another writer got there first (409s). */
  conflicts = 0;
  readonly writes: Write[] = [];
  readonly reads: string[] = [];
  /** Clients whose calls fail (an unreachable API server). */
  readonly cut = new Set<string>();
  /** Clients whose calls never answer (a connection that hangs). */
  readonly hung = new Set<string>();

  /**
   * A Lease someone else wrote (stamped with a resourceVersion). Times are MicroTime strings: client-node
   * 2.0 types them as a Date subclass but hands back the API server's string, as this fake does.
   */
  seed(spec: Record<string, unknown>): void {
    this.lease = { metadata: { name: LEASE, namespace: NS, resourceVersion: String(++this.version) }, spec: spec as V1Lease['spec'] };
  }

  get spec(): NonNullable<V1Lease['spec']> {
    return this.lease?.spec ?? {};
  }

  /** The API as one candidate sees it. */
  client(by: string): CoordinationV1Api {
    const reachable = async () => {
      await Promise.resolve(); // answers arrive later, so candidates interleave
      if (this.cut.has(by)) throw Object.assign(new TypeError('fetch failed'), { cause: new Error('connect ETIMEDOUT') });
      if (this.hung.has(by)) await new Promise<never>(() => {});
    };
    return {
      readNamespacedLease: async ({ name, namespace }: { name: string; namespace: string }) => {
        await reachable();
        this.reads.push(by);
        if (!this.lease || name !== LEASE || namespace !== NS) throw apiError(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`);
        return structuredClone(this.lease);
      },
      createNamespacedLease: async ({ namespace, body }: { namespace: string; body: V1Lease }) => {
        await reachable();
        this.writes.push({ by, verb: 'create', body: structuredClone(body) });
        if (this.lease) {
          this.conflicts++;
          throw apiError(409, 'AlreadyExists', `leases.coordination.k8s.io "${body.metadata?.name}" already exists`);
        }
        this.lease = { ...body, metadata: { ...body.metadata, namespace, resourceVersion: String(++this.version) } };
        return structuredClone(this.lease);
      },
      patchNamespacedLease: async ({ name, body }: { name: string; namespace: string; body: V1Lease }, options: unknown) => {
        await reachable();
        this.writes.push({ by, verb: 'patch', body: structuredClone(body), options });
        if (!this.lease || name !== LEASE) throw apiError(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`);
        const precondition = body.metadata?.resourceVersion;
        if (precondition !== undefined && precondition !== this.lease.metadata?.resourceVersion) {
          this.conflicts++;
          throw apiError(
            409,
            'Conflict',
            `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified; please apply your changes to the latest version and try again`,
          );
        }
        const merged = mergePatch(this.lease, body) as V1Lease;
        this.lease = { ...merged, metadata: { ...merged.metadata, resourceVersion: String(++this.version) } };
        return structuredClone(this.lease);
      },
    } as unknown as CoordinationV1Api;
  }

  patchesBy(by: string): Write[] {
    return this.writes.filter((w) => w.by === by && w.verb === 'patch');
  }
}

function candidate(fake: FakeLeases, clock: ManualClock, identity: string, log = pino({ level: 'silent' })) {
  const elector = new LeaderElector({
    api: fake.client(identity),
    name: LEASE,
    namespace: NS,
    identity,
    leaseDurationMs: LEASE_MS,
    renewDeadlineMs: RENEW_DEADLINE_MS,
    retryPeriodMs: RETRY_MS,
    log,
    clock,
  });
  const state = { identity, elector, ledAt: undefined as Date | undefined, result: undefined as 'lost' | 'stopped' | undefined, leads: 0 };
  const done = elector
    .run(() => {
      state.leads++;
      state.ledAt = clock.now();
    })
    .then((how) => {
      state.result = how;
      return how;
    });
  return Object.assign(state, { done });
}

/** ManualClock's start (2026-01-01T00:00:00Z) plus `ms`. */
const at = (ms: number) => new Date(Date.parse('2026-01-01T00:00:00Z') + ms);

describe('microTime', () => {
  it('writes the six fractional digits the API server wants', () => {
    assert.equal(microTime(new Date('2026-03-14T09:26:53.589Z')), '2026-03-14T09:26:53.589000Z');
    assert.equal(microTime(new Date('2026-01-01T00:00:00Z')), '2026-01-01T00:00:00.000000Z');
    assert.match(microTime(new Date()), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });
});

describe('LeaderElector', () => {
  it('creates a missing Lease and takes it at once', async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    const { log, lines } = capturingLog();
    const a = candidate(fake, clock, 'a', log);
    await clock.advance(0);
    assert.equal(a.leads, 1);
    assert.equal(a.elector.isLeader, true);
    assert.deepEqual(
      fake.writes.map((w) => [w.by, w.verb]),
      [
        ['a', 'create'],
        ['a', 'patch'],
      ],
    );
    assert.equal(fake.writes[1]!.options, MERGE_PATCH);
    assert.deepEqual(fake.spec, {
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      renewTime: '2026-01-01T00:00:00.000000Z',
      acquireTime: '2026-01-01T00:00:00.000000Z',
      leaseTransitions: 0,
    });
    assert.ok(lines.some((l) => l.msg === 'became the leader' && l.identity === 'a' && l.lease === 'ops/spot-orchestrator'));
    await a.elector.stop();
    assert.equal(await a.done, 'stopped');
  });

  it('takes a Lease that exists but has no holder', async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    fake.seed({ leaseDurationSeconds: 1, renewTime: microTime(clock.now()), leaseTransitions: 2 });
    const a = candidate(fake, clock, 'a');
    await clock.advance(0);
    assert.equal(a.elector.isLeader, true);
    assert.equal(fake.spec.holderIdentity, 'a');
    assert.equal(fake.spec.acquireTime, microTime(clock.now()));
    assert.equal(fake.spec.leaseDurationSeconds, 15);
    assert.equal(fake.writes.filter((w) => w.verb === 'create').length, 0);
    await a.elector.stop();
  });

  it('does not take a Lease another identity holds and keeps renewing, however long it waits', async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    const b = candidate(fake, clock, 'b');
    await clock.advance(0);
    assert.equal(b.elector.isLeader, true);
    const a = candidate(fake, clock, 'a');
    for (let t = 0; t < 120_000; t += 500) {
      await clock.advance(500);
      assert.equal(a.elector.isLeader, false);
      assert.equal(fake.spec.holderIdentity, 'b');
    }
    assert.equal(a.leads, 0);
    assert.equal(fake.patchesBy('a').length, 0, 'a standby only reads a Lease held by another');
    assert.equal(fake.reads.filter((r) => r === 'a').length, 61, 'it looks once a retry period');
    await Promise.all([a.elector.stop(), b.elector.stop()]);
  });

  it('takes over a Lease once its holder has not renewed for a lease duration, counting the transition', async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    const renewed = clock.now();
    fake.seed({ holderIdentity: 'b', leaseDurationSeconds: 15, renewTime: microTime(renewed), acquireTime: microTime(renewed), leaseTransitions: 3 });
    const a = candidate(fake, clock, 'a');
    await clock.advance(14_999);
    assert.equal(a.elector.isLeader, false, 'the last look, at 14 s, found it unexpired');
    assert.equal(fake.spec.holderIdentity, 'b');
    await clock.advance(1_001);
    assert.equal(a.elector.isLeader, true, 'the look at 16 s found it expired');
    assert.deepEqual(a.ledAt, at(16_000));
    assert.deepEqual(fake.spec, {
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      renewTime: microTime(at(16_000)),
      acquireTime: microTime(at(16_000)),
      leaseTransitions: 4,
    });
    await a.elector.stop();
  });

  it('lets the holder take its own unexpired Lease back at once (a restart with the same identity), without a transition', async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    const acquired = microTime(at(-60_000));
    fake.seed({ holderIdentity: 'a', leaseDurationSeconds: 15, renewTime: microTime(at(-1_000)), acquireTime: acquired, leaseTransitions: 3 });
    const a = candidate(fake, clock, 'a');
    await clock.advance(0);
    assert.equal(a.elector.isLeader, true);
    assert.equal(fake.spec.acquireTime, acquired);
    assert.equal(fake.spec.leaseTransitions, 3);
    assert.equal(fake.spec.renewTime, microTime(clock.now()));
    await a.elector.stop();
  });

  it('never lets two candidates racing for a missing Lease both win', async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    const a = candidate(fake, clock, 'a');
    const b = candidate(fake, clock, 'b');
    await clock.advance(0);
    assert.ok(fake.conflicts >= 1, 'the two really raced: one create was refused');
    const leaders = [a, b].filter((c) => c.elector.isLeader);
    assert.equal(leaders.length, 1);
    assert.equal(fake.spec.holderIdentity, leaders[0]!.identity);
    for (let t = 0; t < 60_000; t += 250) {
      await clock.advance(250);
      assert.deepEqual(
        [a, b].filter((c) => c.elector.isLeader).map((c) => c.identity),
        [leaders[0]!.identity],
      );
    }
    await Promise.all([a.elector.stop(), b.elector.stop()]);
  });

  it('never lets candidates racing for an expired Lease both win: one takes it, the others are refused with 409', async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    fake.seed({ holderIdentity: 'gone', leaseDurationSeconds: 15, renewTime: microTime(at(-20_000)), leaseTransitions: 7 });
    const all = ['a', 'b', 'c'].map((id) => candidate(fake, clock, id));
    await clock.advance(0);
    assert.equal(fake.conflicts, 2, 'all three read the same version; two writes were refused');
    const leaders = all.filter((c) => c.elector.isLeader);
    assert.equal(leaders.length, 1);
    assert.equal(fake.spec.holderIdentity, leaders[0]!.identity);
    assert.equal(fake.spec.leaseTransitions, 8, 'one transition, not three');
    // The leader goes away without a word; one of the others takes over, and only after expiry.
    fake.cut.add(leaders[0]!.identity);
    const lostAt: number[] = [];
    for (let t = 250; t <= 40_000; t += 250) {
      await clock.advance(250);
      const now = all.filter((c) => c.elector.isLeader);
      assert.ok(now.length <= 1, `at ${t} ms: ${now.map((c) => c.identity)} all lead`);
      if (leaders[0]!.result === 'lost' && lostAt.length === 0) lostAt.push(t);
    }
    assert.equal(leaders[0]!.result, 'lost');
    const next = all.filter((c) => c.elector.isLeader);
    assert.equal(next.length, 1);
    assert.notEqual(next[0]!.identity, leaders[0]!.identity);
    assert.ok(next[0]!.ledAt!.getTime() - at(0).getTime() >= LEASE_MS, 'not before the lease expired');
    assert.ok(lostAt[0]! <= next[0]!.ledAt!.getTime() - at(0).getTime(), 'the old leader stopped leading before the new one began');
    assert.equal(fake.spec.leaseTransitions, 9);
    await Promise.all(all.map((c) => c.elector.stop()));
  });

  it('renews the Lease every retry period while leading, keeping acquireTime and the transition count', async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    const a = candidate(fake, clock, 'a');
    await clock.advance(0);
    const versions = [fake.lease!.metadata!.resourceVersion];
    for (let i = 1; i <= 5; i++) {
      await clock.advance(RETRY_MS - 1);
      assert.equal(fake.spec.renewTime, microTime(at((i - 1) * RETRY_MS)), 'not yet');
      await clock.advance(1);
      assert.equal(fake.spec.renewTime, microTime(at(i * RETRY_MS)));
      versions.push(fake.lease!.metadata!.resourceVersion);
    }
    assert.equal(new Set(versions).size, 6, 'each renewal is a write');
    assert.equal(fake.patchesBy('a').length, 6);
    assert.ok(fake.patchesBy('a').every((w) => w.options === MERGE_PATCH && w.body.metadata?.resourceVersion !== undefined));
    assert.equal(fake.spec.acquireTime, microTime(at(0)));
    assert.equal(fake.spec.leaseTransitions, 0);
    assert.equal(a.leads, 1, 'lead() runs once, not on every renewal');
    assert.equal(fake.conflicts, 0);
    await a.elector.stop();
  });

  it('keeps leading through failed renewals that end within the renew deadline', async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    const a = candidate(fake, clock, 'a');
    await clock.advance(0);
    fake.cut.add('a');
    await clock.advance(9_000); // renewals at 2, 4, 6 and 8 s fail
    fake.cut.delete('a');
    await clock.advance(1_000); // the one at 10 s gets through
    assert.equal(a.elector.isLeader, true);
    assert.equal(a.result, undefined);
    assert.equal(fake.spec.renewTime, microTime(at(10_000)));
    fake.cut.add('a');
    await clock.advance(10_000); // 10 s after the last renewal: not past the deadline yet
    assert.equal(a.elector.isLeader, true);
    await a.elector.stop();
  });

  it("stops leading ('lost') when renewals keep failing past the renew deadline, before the Lease expires for a standby", async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    const { log, lines } = capturingLog();
    const a = candidate(fake, clock, 'a', log);
    await clock.advance(0);
    const b = candidate(fake, clock, 'b');
    fake.cut.add('a');
    await clock.advance(11_999);
    assert.equal(a.elector.isLeader, true, 'the failure at 10 s is not past the deadline');
    await clock.advance(1);
    assert.equal(a.result, 'lost', 'the failure at 12 s is');
    assert.equal(await a.done, 'lost');
    assert.equal(a.elector.isLeader, false);
    assert.ok(lines.some((l) => l.msg === 'could not renew the lease in time; no longer the leader'));
    assert.ok(
      lines.some((l) => l.msg === 'leader election: could not read or write the lease'),
      'each failed renewal is logged',
    );
    assert.equal(b.elector.isLeader, false);
    await clock.advance(4_000);
    assert.equal(b.elector.isLeader, true, 'the standby takes over at its first look past expiry (16 s)');
    assert.equal(fake.spec.holderIdentity, 'b');
    assert.equal(fake.spec.leaseTransitions, 1);
    await b.elector.stop();
  });

  it("stop() hands the Lease back (no holder) so a standby takes over at once, and run() answers 'stopped'", async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    const { log, lines } = capturingLog();
    const a = candidate(fake, clock, 'a', log);
    await clock.advance(0);
    const b = candidate(fake, clock, 'b');
    await clock.advance(5_000);
    await a.elector.stop();
    assert.equal(await a.done, 'stopped');
    assert.equal(a.elector.isLeader, false);
    const release = fake.patchesBy('a').at(-1)!;
    assert.deepEqual(release.body.spec, { holderIdentity: null, leaseDurationSeconds: 1 });
    assert.equal(release.body.metadata?.resourceVersion !== undefined, true);
    assert.equal(fake.spec.holderIdentity, undefined, 'null in a merge patch removes the holder');
    assert.ok(lines.some((l) => l.msg === 'released the lease'));
    await clock.advance(RETRY_MS);
    assert.equal(b.elector.isLeader, true, 'at its next look, not a lease duration later');
    assert.equal(fake.spec.holderIdentity, 'b');
    await clock.advance(60_000);
    assert.equal(fake.patchesBy('a').length, 4, 'a stopped elector writes nothing more: take, renewals at 2 and 4 s, release');
    await b.elector.stop();
  });

  it("stop() wakes a sleeping standby at once: run() answers 'stopped' and the holder's Lease is left alone", async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    const b = candidate(fake, clock, 'b');
    await clock.advance(0);
    const a = candidate(fake, clock, 'a');
    await clock.advance(500);
    const version = fake.lease!.metadata!.resourceVersion;
    const readsBefore = fake.reads.length;
    await a.elector.stop();
    await clock.advance(0); // no time passes: stop() needs no timer to fire
    assert.equal(a.result, 'stopped');
    assert.equal(a.leads, 0);
    assert.equal(fake.reads.length, readsBefore, 'a standby does not read or write to stop');
    assert.equal(fake.lease!.metadata!.resourceVersion, version);
    assert.equal(fake.spec.holderIdentity, 'b');
    await b.elector.stop();
    assert.equal(await b.done, 'stopped');
    assert.equal(clock.timers, 0, 'no timer left behind');
  });

  it('stop() leaves a Lease that another identity has taken meanwhile', async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    const a = candidate(fake, clock, 'a');
    await clock.advance(0);
    fake.seed({ holderIdentity: 'b', leaseDurationSeconds: 15, renewTime: microTime(clock.now()) });
    await a.elector.stop();
    assert.equal(await a.done, 'stopped');
    assert.equal(fake.spec.holderIdentity, 'b');
    assert.equal(fake.patchesBy('a').length, 1, 'only the take');
  });

  it('stop() that cannot reach the API server only logs: a standby takes over when the Lease expires', async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    const { log, lines } = capturingLog();
    const a = candidate(fake, clock, 'a', log);
    await clock.advance(0);
    fake.cut.add('a');
    await a.elector.stop();
    assert.equal(await a.done, 'stopped');
    assert.equal(fake.spec.holderIdentity, 'a');
    assert.ok(lines.some((l) => l.msg === 'could not release the lease; a standby takes over when it expires'));
  });

  it('a renewal that hangs does not keep a leader past the renew deadline (no two leaders)', async () => {
    const clock = new ManualClock();
    const fake = new FakeLeases();
    const a = candidate(fake, clock, 'a');
    await clock.advance(0);
    const b = candidate(fake, clock, 'b');
    fake.hung.add('a');
    await clock.advance(12_000);
    assert.equal(a.result, 'lost', 'given up at the first look past the deadline, though the call never answered');
    assert.equal(a.elector.isLeader, false);
    await clock.advance(4_000);
    assert.equal(b.elector.isLeader, true, 'the standby takes over once the Lease expires');
    await b.elector.stop();
  });
});
