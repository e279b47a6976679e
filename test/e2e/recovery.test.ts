// Recovery end to end: Deployments moved to Fargate by a real interruption come back to spot when it
// is safe (cooldown, backoff, spot capacity that fits them), exactly as they were, without a ready
// replica lost; a failed recovery goes back to Fargate and backs off; an interruption wins over a
// recovery; a recovery in flight survives a controller restart.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { V1Deployment } from '@kubernetes/client-node';
import type { CollectionWatch } from '../../testground/src/collection-watch.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, isPodReady, podsOf, testGround, uniqueName, type AppOptions } from '../support/ground.js';
import { MERGE_PATCH } from '../../src/kube/api.js';
import { ReadinessSampler, startController, watchDeployments, type TestController } from '../support/controller.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const OPT_IN = { 'spot-orchestrator/enabled': 'true' };
const A = {
  state: 'spot-orchestrator/state',
  phase: 'spot-orchestrator/phase',
  migratedAt: 'spot-orchestrator/migrated-at',
  savedSpec: 'spot-orchestrator/saved-spec',
  attempts: 'spot-orchestrator.io/failed-recovery-attempts',
  lastRecoveredAt: 'spot-orchestrator.io/last-recovered-at',
  recoveryReason: 'spot-orchestrator.io/recovery-reason',
  cooldown: 'spot-orchestrator/recovery-cooldown',
};
const MANAGED_KEYS = new Set([
  'spot-orchestrator/state',
  'spot-orchestrator/migrated-at',
  'spot-orchestrator/reason',
  A.savedSpec,
  'spot-orchestrator/saved-spec-signature',
  A.phase,
  A.attempts,
  A.lastRecoveredAt,
  A.recoveryReason,
  'spot-orchestrator/interruption',
  'deployment.kubernetes.io/revision',
]);
/** Fast recovery settings; each scenario overrides what it tests. */
const RECOVERY_ENV = { RECOVERY_INTERVAL: '1s', RECOVERY_COOLDOWN: '2s', RECOVERY_TIMEOUT: '10s', RECOVERY_BACKOFF_BASE: '2s', RECOVERY_MAX_BACKOFF: '4s' };

interface Snapshot {
  at: number;
  state?: string;
  phase?: string;
  attempts?: string;
  lastRecoveredAt?: string;
  migratedAt?: string;
  label?: string;
}

/** Every change of state, phase, attempts or compute label of each Deployment, as the watch saw it. */
class PhaseRecorder {
  readonly history = new Map<string, Snapshot[]>();
  private watch?: CollectionWatch;

  async start(namespace: string): Promise<void> {
    this.watch = watchDeployments(t, namespace, (d) => {
      const a = d.metadata?.annotations ?? {};
      const snap: Snapshot = {
        at: Date.now(),
        state: a[A.state],
        phase: a[A.phase],
        attempts: a[A.attempts],
        lastRecoveredAt: a[A.lastRecoveredAt],
        migratedAt: a[A.migratedAt],
        label: d.spec?.template.metadata?.labels?.['compute-type'],
      };
      const list = this.history.get(d.metadata!.name!) ?? [];
      const last = list.at(-1);
      if (!last || (['state', 'phase', 'attempts', 'lastRecoveredAt', 'migratedAt', 'label'] as const).some((k) => last[k] !== snap[k])) list.push(snap);
      this.history.set(d.metadata!.name!, list);
    });
    await this.watch.start();
  }

  stop(): void {
    this.watch?.stop();
  }

  of(name: string): Snapshot[] {
    return this.history.get(name) ?? [];
  }

  /** When each recovery started (the phase became recovering), in order. */
  recoveryStarts(name: string): Snapshot[] {
    return this.of(name).filter((s, i, all) => s.phase === 'recovering' && all[i - 1]?.phase !== 'recovering');
  }
}

interface Scenario {
  namespace: string;
  c: TestController;
  nodes: string[];
  recorder: PhaseRecorder;
}

async function setUp(prefix: string, env: Record<string, string>): Promise<Scenario> {
  const namespace = await createNamespace(t, prefix);
  const recorder = new PhaseRecorder();
  await recorder.start(namespace);
  const c = await startController(t, namespace, { ...RECOVERY_ENV, ...env });
  return { namespace, c, nodes: [], recorder };
}

async function tearDown(s: Scenario | undefined): Promise<void> {
  if (!s) return;
  injector.cancel();
  s.recorder.stop();
  await s.c?.stop();
  await Promise.all(s.nodes.map((n) => injector.terminateNode(n).catch(() => undefined)));
  await deleteNamespace(t, s.namespace);
}

async function pool(s: Scenario, count: number): Promise<{ pool: string; nodes: string[] }> {
  const name = uniqueName('pool');
  const nodes = await injector.addSpotNodes(count, { name, suffix: '' });
  s.nodes.push(...nodes);
  return { pool: name, nodes };
}

async function freshNodes(s: Scenario, poolName: string, count: number): Promise<string[]> {
  const nodes = await injector.addSpotNodes(count, { name: poolName });
  s.nodes.push(...nodes);
  return nodes;
}

const pinnedTo = (poolName: string) => ({ 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': poolName });

async function create(s: Scenario, o: Omit<AppOptions, 'namespace'>): Promise<string> {
  await t.apps.createNamespacedDeployment({ namespace: s.namespace, body: appDeployment({ namespace: s.namespace, ...o }) });
  return o.name;
}

const read = (s: Scenario, name: string) => t.apps.readNamespacedDeployment({ name, namespace: s.namespace });

async function ready(s: Scenario, names: string[]): Promise<void> {
  await eventually(
    `ready: ${names.join(', ')}`,
    async () => {
      for (const name of names) {
        const d = await read(s, name);
        if ((d.status?.readyReplicas ?? 0) < (d.spec?.replicas ?? 1) || d.status?.updatedReplicas !== d.spec?.replicas) return undefined;
      }
      return true;
    },
    60_000,
  );
}

/** At rest in `state` (no phase), with the matching template label. */
async function settledOn(s: Scenario, name: string, state: 'spot' | 'fargate', timeoutMs = 60_000): Promise<V1Deployment> {
  return eventually(
    `${name} settled on ${state}`,
    async () => {
      const d = await read(s, name);
      const a = d.metadata?.annotations ?? {};
      const label = d.spec?.template.metadata?.labels?.['compute-type'];
      return a[A.state] === state && a[A.phase] === undefined && (state === 'fargate' ? label === 'fargate' : label !== 'fargate') ? d : undefined;
    },
    timeoutMs,
  );
}

function userAnnotations(d: V1Deployment): Record<string, string> {
  return Object.fromEntries(Object.entries(d.metadata?.annotations ?? {}).filter(([k]) => !MANAGED_KEYS.has(k)));
}

async function eventReasons(s: Scenario, name: string): Promise<string[]> {
  return (await t.core.listNamespacedEvent({ namespace: s.namespace, fieldSelector: `involvedObject.name=${name}` })).items.map((e) => e.reason ?? '');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function assertNeverBelowDesired(sampler: ReadinessSampler, names: string[]): void {
  for (const name of names) {
    const desired = sampler.desired.get(name) ?? 1;
    assert.ok((sampler.lowestReady.get(name) ?? 0) >= desired, `${name}: ready replicas dipped to ${sampler.lowestReady.get(name)} of ${desired}`);
    assert.ok((sampler.lowestAvailable.get(name) ?? 0) >= desired, `${name}: available replicas dipped to ${sampler.lowestAvailable.get(name)} of ${desired}`);
  }
}

describe('recovery from Fargate to spot', () => {
  describe('cooldown, spot capacity that fits, exact round trip, availability', () => {
    let s: Scenario;
    const GLOBAL_COOLDOWN_MS = 45_000;
    before(async () => {
      s = await setUp('rec', { RECOVERY_COOLDOWN: '45s' });
    });
    after(() => tearDown(s));

    it('waits for its cooldown and for a healthy spot node it can use, then comes back exactly as it was', async () => {
      const p = await pool(s, 2);
      const q = await pool(s, 1);
      // A template with every kind of spot constraint the migration strips and the recovery restores.
      const fast = await create(s, {
        name: uniqueName('fast'),
        replicas: 2,
        annotations: { ...OPT_IN, [A.cooldown]: '1s', 'team.example/owner': 'payments' },
        podLabels: { 'compute-type': 'spot', tier: 'backend' },
        podAnnotations: { 'prometheus.io/scrape': 'true' },
        nodeSelector: pinnedTo(p.pool),
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } },
        spec: {
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [{ matchExpressions: [{ key: 'eks.amazonaws.com/capacityType', operator: 'In', values: ['SPOT'] }] }],
              },
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 10, preference: { matchExpressions: [{ key: 'karpenter.sh/capacity-type', operator: 'In', values: ['spot'] }] } },
                { weight: 50, preference: { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['us-east-1a'] }] } },
              ],
            },
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { tier: 'backend' } } } },
              ],
            },
          },
          tolerations: [
            { key: 'spot', operator: 'Equal', value: 'true', effect: 'NoSchedule' },
            { key: 'dedicated', operator: 'Equal', value: 'payments', effect: 'NoSchedule' },
          ],
        },
      });
      const slow = await create(s, { name: uniqueName('slow'), replicas: 1, annotations: OPT_IN, nodeSelector: pinnedTo(p.pool) });
      const stuck = await create(s, { name: uniqueName('stuck'), replicas: 1, annotations: { ...OPT_IN, [A.cooldown]: '1s' }, nodeSelector: pinnedTo(q.pool) });
      const all = [fast, slow, stuck];
      await t.core.createNamespacedService({
        namespace: s.namespace,
        body: { metadata: { name: fast }, spec: { selector: { app: fast }, ports: [{ port: 80, targetPort: 8080 }] } },
      });
      await ready(s, all);
      const original = new Map<string, V1Deployment>();
      for (const name of all) original.set(name, await read(s, name));

      // Both pools are interrupted (and stay, cordoned): everything goes to Fargate.
      await injector.interrupt([...p.nodes, ...q.nodes], { terminate: false });
      const onFargate = new Map<string, V1Deployment>();
      for (const name of all) onFargate.set(name, await settledOn(s, name, 'fargate'));
      const sampler = new ReadinessSampler();
      await sampler.start(t, s.namespace);

      // The CLI's dry run, from one listing of the cluster (it takes a few seconds to start).
      const dryRun = promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'recover', '--dry-run'], {
        cwd: new URL('../..', import.meta.url).pathname,
        env: {
          ...process.env,
          KUBECONFIG: t.ground.kubeconfig,
          MODE: 'namespace',
          NAMESPACE: s.namespace,
          SQS_QUEUE_URL: s.c.queueUrl,
          RECOVERY_COOLDOWN: '45s',
          LOG_LEVEL: 'silent',
        },
      });
      // fast's 1 s cooldown is over, but no healthy spot node fits it (its pool is cordoned; other
      // tests' spot nodes elsewhere in the cluster do not count): nothing moves.
      await sleep(2500);
      const verdicts = s.c.controller.recovery.lastPass?.verdicts;
      for (const name of [fast, stuck]) {
        const v = verdicts?.get(`${s.namespace}/${name}`);
        assert.ok(v && !v.eligible && ['no_matching_spot_node', 'no_spot_capacity'].includes(v.reason), `${name}: ${JSON.stringify(v)}`);
        assert.equal(s.recorder.recoveryStarts(name).length, 0, `${name} did not start recovering`);
      }
      const slowVerdict = verdicts?.get(`${s.namespace}/${slow}`);
      assert.ok(slowVerdict && !slowVerdict.eligible && slowVerdict.reason === 'cooldown', JSON.stringify(slowVerdict));
      assert.equal(slowVerdict.nextEligibleAt?.getTime(), Date.parse(onFargate.get(slow)!.metadata!.annotations![A.migratedAt]!) + GLOBAL_COOLDOWN_MS);

      // The dry run says the same.
      const { stdout } = await dryRun;
      assert.match(stdout, new RegExp(`${fast}: wait +not now \\((no_matching_spot_node|no_spot_capacity)\\)`));
      assert.match(stdout, new RegExp(`${slow}: wait +not now \\(cooldown\\): cooldown 45s \\(recovery\\.cooldown\\)`));
      assert.match(stdout, /0 would recover now/);

      // Fresh spot nodes join p's pool: fast (1 s cooldown) comes back at once, slow only after 45 s.
      const freshP = await freshNodes(s, p.pool, 2);
      const backOnSpot = await settledOn(s, fast, 'spot', 30_000);
      const slowNow = await read(s, slow);
      const slowMigratedAt = Date.parse(slowNow.metadata!.annotations![A.migratedAt]!);
      if (Date.now() < slowMigratedAt + GLOBAL_COOLDOWN_MS - 500) {
        assert.equal(slowNow.metadata?.annotations?.[A.state], 'fargate', 'slow waits for the global cooldown');
        assert.equal(s.recorder.recoveryStarts(slow).length, 0);
      }
      const fastStart = s.recorder.recoveryStarts(fast)[0]!;
      assert.ok(fastStart.at < Date.parse(fastStart.migratedAt!) + GLOBAL_COOLDOWN_MS, 'the per-Deployment cooldown overrides the global one');
      await settledOn(s, slow, 'spot', 60_000);
      const slowStart = s.recorder.recoveryStarts(slow)[0]!;
      assert.ok(slowStart.at >= slowMigratedAt + GLOBAL_COOLDOWN_MS, `slow started ${slowStart.at - slowMigratedAt} ms after migrated-at`);
      assert.equal(s.recorder.recoveryStarts(stuck).length, 0, 'stuck has still no spot node it can use');
      assert.equal(s.c.controller.recovery.lastPass?.verdicts.get(`${s.namespace}/${stuck}`)?.eligible, false);

      // Its own pool comes back: stuck recovers too.
      const qAddedAt = Date.now();
      await freshNodes(s, q.pool, 1);
      await settledOn(s, stuck, 'spot', 30_000);
      assert.ok(s.recorder.recoveryStarts(stuck)[0]!.at >= qAddedAt);
      sampler.stop();

      // The exact round trip, field by field, then whole.
      const before = original.get(fast)!;
      const was = before.spec!.template;
      const now = backOnSpot.spec!.template;
      assert.deepEqual(now.spec?.nodeSelector, was.spec?.nodeSelector, 'nodeSelector');
      assert.deepEqual(now.spec?.affinity, was.spec?.affinity, 'affinity');
      assert.deepEqual(now.spec?.tolerations, was.spec?.tolerations, 'tolerations');
      assert.deepEqual(now.metadata?.labels, was.metadata?.labels, 'template labels');
      assert.deepEqual(now.metadata?.annotations, was.metadata?.annotations, 'template annotations');
      assert.deepEqual(now, was, 'the whole pod template');
      assert.deepEqual(backOnSpot.spec?.strategy, before.spec?.strategy, 'the user strategy');
      assert.deepEqual(backOnSpot.spec?.selector, before.spec?.selector);
      assert.deepEqual(backOnSpot.metadata?.labels, before.metadata?.labels);
      assert.deepEqual(userAnnotations(backOnSpot), userAnnotations(before), 'user annotations');
      const a = backOnSpot.metadata!.annotations!;
      assert.equal(a[A.state], 'spot');
      assert.equal(a[A.attempts], '0');
      assert.equal(a[A.recoveryReason], 'successful-recovery');
      assert.match(a[A.lastRecoveredAt] ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(a[A.savedSpec], undefined);
      for (const pod of (await podsOf(t, s.namespace, fast)).filter((x) => !x.metadata?.deletionTimestamp)) {
        assert.ok(freshP.includes(pod.spec?.nodeName ?? ''), `${pod.metadata?.name} runs on a fresh spot node, not ${pod.spec?.nodeName}`);
        assert.ok(isPodReady(pod));
      }

      assertNeverBelowDesired(sampler, all);
      const completed = s.c.alerter.of('recovery_completed').map((x) => x.deployment.name);
      for (const name of all) assert.ok(completed.includes(name), `recovery_completed for ${name}`);
      assert.deepEqual(s.c.alerter.of('recovery_failed'), []);
      assert.ok((await eventReasons(s, fast)).includes('RecoveredToSpot'));
      const metrics = await s.c.controller.ctx.metrics.registry.metrics();
      assert.match(metrics, /spot_orchestrator_recovery_outcomes_total\{outcome="recovered"\} 3/);
      assert.match(metrics, new RegExp(`spot_orchestrator_fargate_stay_seconds_total\\{namespace="${s.namespace}",deployment="${fast}"\\} \\d`));
    });
  });

  describe('a failed recovery', () => {
    let s: Scenario;
    before(async () => {
      s = await setUp('recfail', { RECOVERY_COOLDOWN: '1s', RECOVERY_TIMEOUT: '3s', RECOVERY_BACKOFF_BASE: '2s', RECOVERY_MAX_BACKOFF: '4s' });
    });
    after(() => tearDown(s));

    it('rolls back to Fargate and backs off 2 s, 4 s, 4 s (capped), counting attempts', async () => {
      const p = await pool(s, 1);
      // Never Ready on spot, Ready on Fargate.
      const flaky = await create(s, {
        name: uniqueName('flaky'),
        replicas: 2,
        annotations: OPT_IN,
        podAnnotations: { 'testground.spot-fargate.io/never-ready-on': 'spot' },
        nodeSelector: pinnedTo(p.pool),
      });
      await eventually('flaky pods running on spot', async () =>
        (await podsOf(t, s.namespace, flaky)).filter((x) => x.status?.phase === 'Running').length === 2 ? true : undefined,
      );
      await injector.interrupt(p.nodes, { terminate: false });
      const migrated = await settledOn(s, flaky, 'fargate');
      await ready(s, [flaky]);
      const sampler = new ReadinessSampler();
      await sampler.start(t, s.namespace);

      await freshNodes(s, p.pool, 1);
      const failures = await eventually(
        'three failed recoveries',
        async () => {
          const f = s.c.alerter.of('recovery_failed').filter((x) => x.deployment.name === flaky);
          return f.length >= 3 ? f : undefined;
        },
        90_000,
      );
      const d = await settledOn(s, flaky, 'fargate');
      sampler.stop();

      assert.deepEqual(
        failures.slice(0, 3).map((f) => f.attempts),
        [1, 2, 3],
      );
      for (const f of failures) assert.match(f.reason, /^rollout-timeout: rollout not healthy within 3000 ms/);
      // Each retry starts no sooner than last-recovered-at + backoff, and not much later.
      const starts = s.recorder.recoveryStarts(flaky);
      assert.ok(starts.length >= 3, `${starts.length} recovery starts`);
      const history = s.recorder.of(flaky);
      const delays = [2000, 4000, 4000];
      for (let n = 1; n <= 3; n++) {
        const failed = history.find((x) => x.attempts === String(n))!;
        assert.ok(failed, `attempts=${n} recorded`);
        const last = Date.parse(failed.lastRecoveredAt!);
        assert.equal(failures[n - 1]!.nextAttemptAt?.getTime(), last + delays[n - 1]!, `alert ${n}: next attempt time`);
        const next = starts[n];
        if (!next) continue; // the 4th attempt may not have begun yet
        const gap = next.at - last;
        assert.ok(gap >= delays[n - 1]!, `attempt ${n + 1} began ${gap} ms after last-recovered-at, backoff is ${delays[n - 1]} ms`);
        assert.ok(gap <= delays[n - 1]! + 3000, `attempt ${n + 1} began promptly (${gap} ms)`);
        assert.equal(next.attempts, String(n), `attempt ${n + 1} begins with ${n} failure(s) counted`);
      }
      // Between attempts: back on the Fargate template, state fargate, pods Ready on Fargate.
      const a = d.metadata!.annotations!;
      assert.ok(Number(a[A.attempts]) >= 3);
      assert.equal(a[A.savedSpec], migrated.metadata!.annotations![A.savedSpec], 'the saved-spec survives failed recoveries');
      assert.deepEqual(d.spec?.strategy, migrated.spec?.strategy, 'the user strategy is given back after each rollback');
      assert.equal(d.spec?.template.metadata?.labels?.['compute-type'], 'fargate');
      assertNeverBelowDesired(sampler, [flaky]);
      const reasons = await eventReasons(s, flaky);
      assert.ok(reasons.includes('RecoveryFailed') && reasons.includes('RecoveryRolledBack'), reasons.join());
      assert.deepEqual(s.c.alerter.of('recovery_completed'), []);
    });
  });

  describe('a restore record someone else wrote', () => {
    let s: Scenario;
    before(async () => {
      s = await setUp('recforge', { RECOVERY_COOLDOWN: '1s' });
    });
    after(() => tearDown(s));

    it('is never applied: the Deployment stays on Fargate as it is, and the rejection is reported', async () => {
      const p = await pool(s, 1);
      const names = [uniqueName('forged'), uniqueName('honest')];
      for (const name of names) await create(s, { name, replicas: 1, annotations: OPT_IN, nodeSelector: pinnedTo(p.pool) });
      await ready(s, names);
      await injector.interrupt(p.nodes, { terminate: false });
      const [forgedName, honestName] = names as [string, string];
      const migrated = await settledOn(s, forgedName, 'fargate');
      await settledOn(s, honestName, 'fargate');
      // A tenant with edit on the Deployment rewrites the record: a toleration for the control plane.
      const saved = JSON.parse(migrated.metadata!.annotations![A.savedSpec]!) as Record<string, unknown>;
      const forged = JSON.stringify({ ...saved, tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }] });
      await t.apps.patchNamespacedDeployment(
        { name: forgedName, namespace: s.namespace, body: { metadata: { annotations: { [A.savedSpec]: forged } } } },
        MERGE_PATCH,
      );
      await freshNodes(s, p.pool, 1);
      // The honest one comes back: recovery ran, and the forged one was judged in the same passes.
      await settledOn(s, honestName, 'spot');
      const reasons = await eventually('a RestoreRecordRejected Event', async () => {
        const r = await eventReasons(s, forgedName);
        return r.includes('RestoreRecordRejected') ? r : undefined;
      });
      assert.ok(!reasons.includes('RecoveringToSpot'), reasons.join());
      const d = await read(s, forgedName);
      assert.equal(d.metadata?.annotations?.[A.state], 'fargate');
      assert.equal(d.metadata?.annotations?.[A.phase], undefined);
      assert.equal(d.spec?.template.metadata?.labels?.['compute-type'], 'fargate');
      assert.deepEqual(d.spec?.template.spec?.tolerations, migrated.spec?.template.spec?.tolerations, 'the forged toleration was never written');
      assert.deepEqual(d.spec, migrated.spec, 'the controller changed nothing in its spec');
      assert.ok(
        s.c.logs.some((l) => l.includes('restore record rejected: not recovering this Deployment') && l.includes(forgedName)),
        'a warning in the log',
      );
    });
  });

  describe('an interruption during a recovery', () => {
    let s: Scenario;
    before(async () => {
      s = await setUp('recint', { RECOVERY_COOLDOWN: '1s', RECOVERY_TIMEOUT: '30s' });
    });
    after(() => tearDown(s));

    it('wins: the Deployment goes back to Fargate, the recovery stops, and a later one still restores it exactly', async () => {
      const p = await pool(s, 1);
      // Pods take 4 s to become Ready anywhere, so the recovery is in flight long enough to be hit.
      const busy = await create(s, {
        name: uniqueName('busy'),
        replicas: 2,
        annotations: OPT_IN,
        podAnnotations: { 'testground.spot-fargate.io/ready-after': '4s' },
        nodeSelector: pinnedTo(p.pool),
        spec: { tolerations: [{ key: 'spot', operator: 'Exists' }] },
      });
      await ready(s, [busy]);
      const original = await read(s, busy);
      await injector.interrupt(p.nodes, { terminate: false });
      const firstMove = await settledOn(s, busy, 'fargate');
      const sampler = new ReadinessSampler();
      await sampler.start(t, s.namespace);

      const fresh = await freshNodes(s, p.pool, 1);
      await eventually('the recovery in flight, a new pod bound to the fresh node', async () =>
        s.recorder.recoveryStarts(busy).length > 0 && (await podsOf(t, s.namespace, busy)).some((x) => x.spec?.nodeName === fresh[0]) ? true : undefined,
      );
      await injector.interrupt(fresh, { terminate: false });
      await eventually('the interruption took over', async () => (s.recorder.of(busy).some((x) => x.phase === 'migrating') ? true : undefined));
      const d = await settledOn(s, busy, 'fargate');
      await ready(s, [busy]);
      await sleep(2000); // a few passes: nothing restarts while the fresh node is at risk

      assert.equal(s.recorder.recoveryStarts(busy).length, 1, 'one recovery, abandoned');
      const a = d.metadata!.annotations!;
      assert.ok(Date.parse(a[A.migratedAt]!) >= Date.parse(firstMove.metadata!.annotations![A.migratedAt]!), 'migrated again');
      assert.equal(a[A.attempts], undefined, 'a preempted recovery is not a failed attempt');
      assert.equal(a[A.savedSpec], firstMove.metadata!.annotations![A.savedSpec], 'the original constraints are still saved');
      assert.equal(d.spec?.template.metadata?.labels?.['compute-type'], 'fargate');
      assert.equal(d.spec?.template.spec?.tolerations, undefined);
      for (const pod of (await podsOf(t, s.namespace, busy)).filter((x) => !x.metadata?.deletionTimestamp))
        assert.match(pod.spec?.nodeName ?? '', /^fargate-ip-/);
      assert.deepEqual(s.c.alerter.of('recovery_failed'), []);
      assert.deepEqual(s.c.alerter.of('recovery_completed'), []);
      assert.ok(
        s.c.logs.some((l) => l.includes('recovery preempted')),
        'the recovery pipeline stood down',
      );
      assert.ok((await eventReasons(s, busy)).includes('RecoveryPreempted'));

      // Spot comes back for good: the recovery restores the template the user wrote.
      await freshNodes(s, p.pool, 1);
      const back = await settledOn(s, busy, 'spot', 30_000);
      sampler.stop();
      assert.deepEqual(back.spec?.template, original.spec?.template);
      assert.deepEqual(back.spec?.strategy, original.spec?.strategy);
      assertNeverBelowDesired(sampler, [busy]);
    });
  });

  describe('a Deployment the Go original left on Fargate', () => {
    let s: Scenario | undefined;
    after(() => tearDown(s));

    it("comes back to spot by the original's convention: the template label, nothing invented", async () => {
      const namespace = await createNamespace(t, 'recgo');
      const recorder = new PhaseRecorder();
      await recorder.start(namespace);
      // Annotated exactly as the original leaves a Deployment it moved: no saved-spec, no phase.
      const name = uniqueName('legacy');
      const migratedAt = new Date(Date.now() - 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      await t.apps.createNamespacedDeployment({
        namespace,
        body: appDeployment({
          namespace,
          name,
          replicas: 2,
          annotations: { ...OPT_IN, [A.state]: 'fargate', [A.migratedAt]: migratedAt, 'spot-orchestrator/reason': 'spot-interruption' },
          podLabels: { 'compute-type': 'fargate' },
          strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        }),
      });
      const placeholder = { namespace, c: undefined as unknown as TestController, nodes: [] as string[], recorder };
      s = placeholder;
      await pool(placeholder, 2);
      await ready(placeholder, [name]);
      const before = await read(placeholder, name);
      for (const pod of await podsOf(t, namespace, name)) assert.match(pod.spec?.nodeName ?? '', /^fargate-ip-/);

      // The dry run says what it will do, before any controller runs.
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'recover', '--dry-run'], {
        cwd: new URL('../..', import.meta.url).pathname,
        env: {
          ...process.env,
          KUBECONFIG: t.ground.kubeconfig,
          MODE: 'namespace',
          NAMESPACE: namespace,
          // The dry run reads the cluster only: it needs no queue.
          SQS_QUEUE_URL: '',
          LOG_LEVEL: 'silent',
        },
      });
      assert.match(stdout, new RegExp(`${name}: RECOVER +would recover now: .*moved by the Go original.*template label compute-type=spot`));

      const sampler = new ReadinessSampler();
      await sampler.start(t, namespace);
      placeholder.c = await startController(t, namespace, RECOVERY_ENV);
      const back = await settledOn(placeholder, name, 'spot', 60_000);
      sampler.stop();
      assert.equal(back.spec?.template.metadata?.labels?.['compute-type'], 'spot');
      const { labels: _beforeLabels, ...beforeRest } = before.spec!.template.metadata!;
      const { labels: _backLabels, ...backRest } = back.spec!.template.metadata!;
      assert.deepEqual(backRest, beforeRest, 'template metadata other than the label unchanged');
      assert.deepEqual(back.spec?.template.spec, before.spec?.template.spec, 'no invented scheduling constraint');
      assert.deepEqual(back.spec?.strategy, before.spec?.strategy, 'the user strategy');
      const a = back.metadata!.annotations!;
      assert.equal(a[A.recoveryReason], 'successful-recovery');
      assert.equal(a[A.savedSpec], undefined, 'the restore record is gone with the move');
      for (const pod of (await podsOf(t, namespace, name)).filter((x) => !x.metadata?.deletionTimestamp)) {
        assert.doesNotMatch(pod.spec?.nodeName ?? '', /^fargate-ip-/);
        assert.ok(isPodReady(pod));
      }
      assertNeverBelowDesired(sampler, [name]);
      const events = (await t.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` })).items;
      const said = events.filter((e) => e.reason === 'RecoveringByGoOriginalConvention').map((e) => e.message ?? '');
      assert.match(said.join(), /moved by the Go original/);
      assert.ok(events.some((e) => e.reason === 'RecoveredToSpot'));
    });
  });

  describe('a controller restart during a recovery', () => {
    let s: Scenario;
    before(async () => {
      s = await setUp('recres', { RECOVERY_COOLDOWN: '1s', RECOVERY_TIMEOUT: '30s' });
    });
    after(() => tearDown(s));

    it('resumes the recovery left in flight and sees it through', async () => {
      const p = await pool(s, 1);
      const app = await create(s, {
        name: uniqueName('resume'),
        replicas: 2,
        annotations: OPT_IN,
        podAnnotations: { 'testground.spot-fargate.io/ready-after': '3s' },
        nodeSelector: pinnedTo(p.pool),
      });
      await ready(s, [app]);
      await injector.interrupt(p.nodes, { terminate: false });
      await settledOn(s, app, 'fargate');
      await freshNodes(s, p.pool, 1);
      await eventually('the recovery in flight', async () => (s.recorder.recoveryStarts(app).length > 0 ? true : undefined));
      await s.c.stop();
      assert.equal((await read(s, app)).metadata?.annotations?.[A.phase], 'recovering', 'stopped mid-recovery');

      const second = await startController(t, s.namespace, { ...RECOVERY_ENV, RECOVERY_COOLDOWN: '1s', RECOVERY_TIMEOUT: '30s' });
      s.c = second; // stopped by tearDown
      const d = await settledOn(s, app, 'spot', 30_000);
      assert.equal(d.metadata?.annotations?.[A.attempts], '0');
      assert.ok(second.logs.some((l) => l.includes('resuming a recovery left in flight')));
      assert.deepEqual(
        second.alerter.of('recovery_completed').map((x) => x.deployment.name),
        [app],
      );
      assert.equal(s.recorder.recoveryStarts(app).length, 1, 'resumed, not started again');
    });
  });
});
