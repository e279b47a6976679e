import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1Node } from '@kubernetes/client-node';
import { loadConfig } from '../config/load.js';
import { formatTimestamp, planFinish, planMigration, planRestoreToSpot } from '../migration/plan.js';
import { migrationInput, serverApply, setSignedSavedSpec, spotDeployment, TEST_SIGNER } from '../migration/test-fixtures.js';
import { MANAGED_ANNOTATIONS as A, NODE_ANNOTATIONS, USER_ANNOTATIONS } from '../state/annotations.js';
import {
  assessSpotCapacity,
  backoffDelayMs,
  describeVerdict,
  failedAttempts,
  judgePass,
  judgeRecovery,
  type EligibilityInput,
  type Verdict,
} from './eligibility.js';

const BASE_ENV = { SQS_QUEUE_URL: 'http://localhost:9324/000000000000/q', MODE: 'namespace', NAMESPACE: 'prod' };
const config = loadConfig({ env: BASE_ENV }); // cooldown 45m, backoff 15m doubling up to 4h
const MIN = 60_000;
const MIGRATED = new Date('2025-03-14T09:00:00Z');

function node(
  name: string,
  o: { labels?: Record<string, string>; ready?: boolean; unschedulable?: boolean; annotations?: Record<string, string> } = {},
): V1Node {
  return {
    metadata: {
      name,
      labels: { 'compute-type': 'spot', 'kubernetes.io/arch': 'amd64', 'eks.amazonaws.com/nodegroup': 'spot-a', ...o.labels },
      annotations: o.annotations,
    },
    spec: { unschedulable: o.unschedulable },
    status: { conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}

/** The fixture Deployment after a completed migration at MIGRATED, plus extra annotations. */
function onFargate(annotations: Record<string, string> = {}): V1Deployment {
  const plan = planMigration(spotDeployment(), migrationInput({ now: MIGRATED }));
  assert.equal(plan.action, 'patch');
  const migrated = serverApply(spotDeployment(), plan.action === 'patch' ? plan.ops : []);
  const finish = planFinish(migrated, { kind: 'migrated' }, TEST_SIGNER);
  assert.ok('ops' in finish);
  const settled = serverApply(migrated, finish.ops);
  Object.assign(settled.metadata!.annotations!, annotations);
  return settled;
}

function judge(d: V1Deployment, at: Date, o: Partial<EligibilityInput> & { nodes?: V1Node[] } = {}): Verdict {
  const cfg = o.config ?? config;
  return judgeRecovery(d, {
    config: cfg,
    now: at,
    capacity: o.capacity ?? assessSpotCapacity(o.nodes ?? [node('spot-1')], cfg.compute),
    inFlight: o.inFlight,
    signer: TEST_SIGNER,
  });
}

const after = (ms: number) => new Date(MIGRATED.getTime() + ms);

function reasonOf(v: Verdict): string {
  return v.eligible ? 'eligible' : v.reason;
}

describe('recovery eligibility', () => {
  it('is eligible once the cooldown is over and a healthy spot node fits', () => {
    const v = judge(onFargate(), after(45 * MIN));
    assert.equal(v.eligible, true);
    assert.ok(v.eligible && v.candidates.includes('spot-1'));
    assert.deepEqual(v.warnings, []);
    assert.match(describeVerdict(v), /^would recover now: 1 healthy spot node\(s\) fit/);
  });

  describe('cooldown', () => {
    it('global: waits recovery.cooldown since migrated-at, and says until when', () => {
      const v = judge(onFargate(), after(44 * MIN));
      assert.equal(reasonOf(v), 'cooldown');
      assert.ok(!v.eligible);
      assert.deepEqual(v.nextEligibleAt, after(45 * MIN));
      assert.match(v.detail, /cooldown 45m0s \(recovery\.cooldown\) since migrated-at 2025-03-14T09:00:00Z: 1m0s left/);
      assert.equal(reasonOf(judge(onFargate(), after(45 * MIN - 1))), 'cooldown');
      assert.equal(reasonOf(judge(onFargate(), after(45 * MIN))), 'eligible');
    });

    it('global value from the configuration', () => {
      const short = loadConfig({ env: { ...BASE_ENV, RECOVERY_COOLDOWN: '5m' } });
      assert.equal(reasonOf(judge(onFargate(), after(4 * MIN), { config: short })), 'cooldown');
      assert.equal(reasonOf(judge(onFargate(), after(5 * MIN), { config: short })), 'eligible');
      const none = loadConfig({ env: { ...BASE_ENV, RECOVERY_COOLDOWN: '0s' } });
      assert.equal(reasonOf(judge(onFargate(), MIGRATED, { config: none })), 'eligible');
    });

    it('per-Deployment override: shorter or longer than the global one', () => {
      const shorter = onFargate({ [USER_ANNOTATIONS.recoveryCooldown]: '10m' });
      assert.equal(reasonOf(judge(shorter, after(11 * MIN))), 'eligible');
      const waiting = judge(shorter, after(9 * MIN));
      assert.ok(!waiting.eligible);
      assert.equal(waiting.reason, 'cooldown');
      assert.deepEqual(waiting.nextEligibleAt, after(10 * MIN));
      assert.match(waiting.detail, /cooldown 10m0s \(annotation spot-orchestrator\/recovery-cooldown\)/);

      const longer = onFargate({ [USER_ANNOTATIONS.recoveryCooldown]: '2h' });
      assert.equal(reasonOf(judge(longer, after(90 * MIN))), 'cooldown');
      assert.equal(reasonOf(judge(longer, after(120 * MIN))), 'eligible');
    });

    it('an invalid override falls back to the global cooldown, with a warning', () => {
      const v = judge(onFargate({ [USER_ANNOTATIONS.recoveryCooldown]: 'soon' }), after(30 * MIN));
      assert.ok(!v.eligible);
      assert.equal(v.reason, 'cooldown');
      assert.deepEqual(v.nextEligibleAt, after(45 * MIN));
      assert.match(v.warnings.join(), /ignoring annotation spot-orchestrator\/recovery-cooldown="soon"/);
    });

    it('without a readable migrated-at no cooldown applies, with a warning', () => {
      const d = onFargate();
      delete d.metadata!.annotations![A.migratedAt];
      const v = judge(d, MIGRATED);
      assert.equal(v.eligible, true);
      assert.match(v.warnings.join(), /migrated-at is missing: no cooldown applied/);
    });
  });

  describe('backoff after failed attempts', () => {
    it('doubles from backoff_base and is capped at max_backoff: 15m, 30m, 60m, 2h, 4h, 4h…', () => {
      const delays = [0, 1, 2, 3, 4, 5, 6, 50, 5000].map((n) => backoffDelayMs(n, config.recovery) / MIN);
      assert.deepEqual(delays, [0, 15, 30, 60, 120, 240, 240, 240, 240]);
      const capped = loadConfig({ env: { ...BASE_ENV, RECOVERY_BACKOFF_BASE: '2s', RECOVERY_MAX_BACKOFF: '5s' } });
      assert.deepEqual(
        [1, 2, 3, 4].map((n) => backoffDelayMs(n, capped.recovery)),
        [2000, 4000, 5000, 5000],
      );
    });

    it('waits the delay of the attempt count since last-recovered-at', () => {
      const lastTry = after(3 * 60 * MIN); // long past the cooldown
      for (const [attempts, minutes] of [
        [1, 15],
        [2, 30],
        [3, 60],
        [4, 120],
        [5, 240],
        [9, 240],
      ] as const) {
        const d = onFargate({ [A.failedRecoveryAttempts]: String(attempts), [A.lastRecoveredAt]: formatTimestamp(lastTry) });
        const end = new Date(lastTry.getTime() + minutes * MIN);
        const waiting = judge(d, new Date(end.getTime() - 1000));
        assert.ok(!waiting.eligible, `${attempts} attempts`);
        assert.equal(waiting.reason, 'backoff');
        assert.deepEqual(waiting.nextEligibleAt, end, `${attempts} attempts: next at +${minutes}m`);
        assert.match(waiting.detail, new RegExp(`after ${attempts} failed attempt\\(s\\)`));
        assert.equal(reasonOf(judge(d, end)), 'eligible', `${attempts} attempts, at +${minutes}m`);
      }
    });

    it('no backoff with zero attempts (a success resets the counter)', () => {
      const d = onFargate({ [A.failedRecoveryAttempts]: '0', [A.lastRecoveredAt]: formatTimestamp(after(45 * MIN)) });
      assert.equal(reasonOf(judge(d, after(45 * MIN))), 'eligible');
    });

    it('reports whichever of cooldown and backoff ends later', () => {
      // Failed 20 minutes after migrating: backoff ends at +35m, cooldown at +45m.
      const early = onFargate({ [A.failedRecoveryAttempts]: '1', [A.lastRecoveredAt]: formatTimestamp(after(20 * MIN)) });
      const v1 = judge(early, after(30 * MIN));
      assert.ok(!v1.eligible && v1.reason === 'cooldown');
      assert.deepEqual(v1.nextEligibleAt, after(45 * MIN));
      // Failed (third time) at +40m: backoff 60m ends at +100m, after the cooldown.
      const late = onFargate({ [A.failedRecoveryAttempts]: '3', [A.lastRecoveredAt]: formatTimestamp(after(40 * MIN)) });
      const v2 = judge(late, after(30 * MIN));
      assert.ok(!v2.eligible && v2.reason === 'backoff');
      assert.deepEqual(v2.nextEligibleAt, after(100 * MIN));
    });

    it('reads the counter leniently', () => {
      assert.equal(failedAttempts({ [A.failedRecoveryAttempts]: '3' }), 3);
      for (const bad of ['', 'x', '-1', '1.5']) assert.equal(failedAttempts({ [A.failedRecoveryAttempts]: bad }), 0, bad);
      assert.equal(failedAttempts(undefined), 0);
    });
  });

  describe('spot capacity', () => {
    it('none: no spot node, or only unhealthy ones', () => {
      const cases: [string, V1Node[]][] = [
        ['no node at all', []],
        ['not Ready', [node('a', { ready: false })]],
        ['cordoned', [node('a', { unschedulable: true })]],
        ['interruption warning', [node('a', { annotations: { [NODE_ANNOTATIONS.interruptedAt]: '2025-03-14T09:00:00Z' } })]],
        ['rebalance recommendation', [node('a', { annotations: { [NODE_ANNOTATIONS.rebalanceRecommendedAt]: '2025-03-14T09:00:00Z' } })]],
        [
          'on-demand only',
          [
            {
              metadata: { name: 'od', labels: { 'eks.amazonaws.com/capacityType': 'ON_DEMAND', 'kubernetes.io/arch': 'amd64' } },
              status: { conditions: [{ type: 'Ready', status: 'True' }] },
            },
          ],
        ],
      ];
      for (const [what, nodes] of cases) {
        const v = judge(onFargate(), after(60 * MIN), { nodes });
        assert.equal(reasonOf(v), 'no_spot_capacity', what);
        assert.equal(v.eligible ? undefined : v.nextEligibleAt, undefined);
      }
    });

    it('healthy spot nodes that the restored constraints do not select do not count', () => {
      const d = onFargate();
      setSignedSavedSpec(
        d,
        JSON.stringify({
          ...JSON.parse(d.metadata!.annotations![A.savedSpec]!),
          nodeSelector: { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': 'spot-b' },
        }),
      );
      const v = judge(d, after(60 * MIN), { nodes: [node('a1'), node('a2')] });
      assert.ok(!v.eligible);
      assert.equal(v.reason, 'no_matching_spot_node');
      assert.match(v.detail, /none of the 2 healthy spot node\(s\).*eks\.amazonaws\.com\/nodegroup=spot-b/);
      const withB = judge(d, after(60 * MIN), { nodes: [node('a1'), node('b1', { labels: { 'eks.amazonaws.com/nodegroup': 'spot-b' } })] });
      assert.ok(withB.eligible);
      assert.deepEqual(withB.candidates, ['b1']);
    });

    it('is judged from the capacity passed in, once for every Deployment of a pass', () => {
      const nodes = [node('a1')];
      let reads = 0;
      const counted = new Proxy(nodes, { get: (t, p, r) => (p === 'filter' && reads++, Reflect.get(t, p, r)) });
      const deployments = ['x', 'y', 'z'].map((n) => {
        const d = onFargate();
        d.metadata!.name = n;
        setSignedSavedSpec(d, d.metadata!.annotations![A.savedSpec]); // the record is bound to the name
        return d;
      });
      const { capacity, verdicts } = judgePass(deployments, counted, { config, now: after(60 * MIN), signer: TEST_SIGNER });
      assert.equal(capacity.healthy.length, 1);
      assert.deepEqual(
        verdicts.map((v) => reasonOf(v.verdict)),
        ['eligible', 'eligible', 'eligible'],
      );
      assert.equal(reads, 2, 'the node list is read once per pass (spot count + healthy), not per Deployment');
    });
  });

  describe('switched off', () => {
    it('globally: recovery.enabled=false wins over the annotation', () => {
      const off = loadConfig({ env: { ...BASE_ENV, RECOVERY_ENABLED: 'false' } });
      for (const annotation of [{}, { [USER_ANNOTATIONS.recoveryEnabled]: 'true' }] as Record<string, string>[]) {
        const v = judge(onFargate(annotation), after(60 * MIN), { config: off });
        assert.equal(reasonOf(v), 'disabled_globally');
      }
    });

    it('by the Deployment annotation', () => {
      const v = judge(onFargate({ [USER_ANNOTATIONS.recoveryEnabled]: 'false' }), after(60 * MIN));
      assert.ok(!v.eligible);
      assert.equal(v.reason, 'disabled_by_annotation');
      assert.match(v.detail, /recovery-enabled=false/);
      assert.equal(reasonOf(judge(onFargate({ [USER_ANNOTATIONS.recoveryEnabled]: 'true' }), after(60 * MIN))), 'eligible');
    });
  });

  describe('nothing to do or not now', () => {
    it('a Deployment on spot or never moved', () => {
      assert.equal(reasonOf(judge(spotDeployment(), after(60 * MIN))), 'not_on_fargate');
      assert.equal(reasonOf(judge(onFargate({ [A.state]: 'spot' }), after(60 * MIN))), 'not_on_fargate');
    });

    it('a move in flight, recorded in the phase annotation', () => {
      for (const phase of ['migrating', 'recovering', 'rolling-back']) {
        const v = judge(onFargate({ [A.phase]: phase }), after(60 * MIN));
        assert.ok(!v.eligible);
        assert.equal(v.reason, 'phase_in_flight');
        assert.match(v.detail, new RegExp(`phase ${phase}`));
      }
      // Mid-recovery as the planner leaves it.
      const restoring = serverApply(
        onFargate(),
        (planRestoreToSpot(onFargate(), { purpose: 'recovery', now: after(60 * MIN), signer: TEST_SIGNER }) as { ops: never[] }).ops,
      );
      assert.equal(reasonOf(judge(restoring, after(61 * MIN))), 'phase_in_flight');
    });

    it('a move in flight in this controller, not yet visible in annotations', () => {
      const v = judge(onFargate(), after(60 * MIN), { inFlight: 'a rollout of it is being observed' });
      assert.ok(!v.eligible);
      assert.equal(v.reason, 'in_flight');
    });

    it('an unreadable saved-spec: nothing to restore from', () => {
      const d = onFargate();
      setSignedSavedSpec(d, '{"version":1');
      const v = judge(d, after(60 * MIN));
      assert.equal(reasonOf(v), 'no_saved_spec');
      assert.match(v.detail, /not valid JSON/);
    });

    it('a saved-spec this controller did not sign: never applied, and says why', () => {
      const d = onFargate();
      d.metadata!.annotations![A.savedSpec] = JSON.stringify({
        version: 1,
        label: { key: 'compute-type', value: 'spot' },
        tolerations: [{ operator: 'Exists' }],
      });
      const v = judge(d, after(60 * MIN));
      assert.equal(reasonOf(v), 'unverified_restore_record');
      assert.match(v.detail, /does not match its spot-orchestrator\/saved-spec-signature/);
    });

    it('no saved-spec at all (moved by the Go original): eligible, by its convention, and says so', () => {
      const d = onFargate();
      delete d.metadata!.annotations![A.savedSpec];
      const v = judge(d, after(60 * MIN));
      assert.equal(reasonOf(v), 'eligible');
      assert.match(v.detail, /moved by the Go original.*template label compute-type=spot, nodeSelector, affinity, tolerations and strategy unchanged/);
    });
  });

  it('orders a pass: eligible first, longest on Fargate first', () => {
    const mk = (name: string, migrated: Date, extra: Record<string, string> = {}) => {
      const d = onFargate({ [A.migratedAt]: formatTimestamp(migrated), ...extra });
      d.metadata!.name = name;
      setSignedSavedSpec(d, d.metadata!.annotations![A.savedSpec]); // the record is bound to the name
      return d;
    };
    const now = after(10 * 60 * MIN);
    const { verdicts } = judgePass(
      [
        mk('young', after(5 * 60 * MIN)),
        mk('off', MIGRATED, { [USER_ANNOTATIONS.recoveryEnabled]: 'false' }),
        mk('old', MIGRATED),
        mk('waiting', after(9.5 * 60 * MIN)),
      ],
      [node('a')],
      { config, now, signer: TEST_SIGNER },
    );
    assert.deepEqual(
      verdicts.map((v) => `${v.deployment.metadata!.name}:${reasonOf(v.verdict)}`),
      ['old:eligible', 'young:eligible', 'off:disabled_by_annotation', 'waiting:cooldown'],
    );
  });
});
