// The uninstall path's decisions: which Deployments go back (cooldown, backoff and recovery-enabled
// waived, capacity and the restore record still judged), why the others stay, what is forgotten, and
// whether a controller still holds the Lease.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1Node } from '@kubernetes/client-node';
import { loadConfig } from '../config/load.js';
import { applyJsonPatch } from '../migration/json-patch.js';
import { formatTimestamp, planFinish, planMigration } from '../migration/plan.js';
import { migrationInput, serverApply, spotDeployment, setSignedSavedSpec, TEST_SIGNER } from '../migration/test-fixtures.js';
import { MANAGED_ANNOTATIONS as A, NODE_ANNOTATIONS, USER_ANNOTATIONS } from '../state/annotations.js';
import { leaseHolder, planForget, planRecoverAll } from './recover-all.js';

const config = loadConfig({
  env: { SQS_QUEUE_URL: 'http://localhost:9324/000000000000/q', MODE: 'namespace', NAMESPACE: 'prod', RECOVERY_COOLDOWN: '2h', RECOVERY_ENABLED: 'false' },
});
const MIGRATED = new Date('2025-03-14T09:00:00Z');
const NOW = new Date('2025-03-14T09:10:00Z');

function onFargate(name: string, annotations: Record<string, string> = {}): V1Deployment {
  let d = spotDeployment();
  const plan = planMigration(d, migrationInput({ now: MIGRATED }));
  d = serverApply(d, plan.action === 'patch' ? plan.ops : []);
  const finish = planFinish(d, { kind: 'migrated' }, TEST_SIGNER);
  d = serverApply(d, 'ops' in finish ? finish.ops : []);
  d.metadata!.name = name;
  setSignedSavedSpec(d, d.metadata!.annotations![A.savedSpec]); // the record is bound to the name
  Object.assign(d.metadata!.annotations!, annotations);
  return d;
}

const spotNode = (name: string, annotations: Record<string, string> = {}): V1Node => ({
  metadata: { name, labels: { 'compute-type': 'spot', 'kubernetes.io/arch': 'amd64' }, annotations },
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
});

describe('recover --all --now: the plan', () => {
  it('moves back what spot capacity fits, waiving cooldown, backoff and recovery-enabled, and says so', () => {
    const backedOff = { [A.failedRecoveryAttempts]: '3', [A.lastRecoveredAt]: formatTimestamp(NOW) };
    const plan = planRecoverAll(
      [onFargate('api'), onFargate('worker', { ...backedOff, [USER_ANNOTATIONS.recoveryEnabled]: 'false' }), spotDeployment()],
      [spotNode('spot-a-0')],
      config,
      NOW,
      TEST_SIGNER,
    );
    assert.deepEqual(
      plan.recover.map((r) => r.key),
      ['prod/api', 'prod/worker'],
    );
    const worker = plan.recover.find((r) => r.key === 'prod/worker')!.verdict;
    assert.match(
      worker.warnings.join('\n'),
      /--now: waived recovery\.enabled is false, spot-orchestrator\/recovery-enabled=false, cooldown \(2h0m0s since migrated-at\), backoff after 3 failed attempt/,
    );
    assert.deepEqual(plan.onSpot, [`${spotDeployment().metadata!.namespace}/${spotDeployment().metadata!.name}`]);
    assert.deepEqual(plan.blocked, []);
  });

  it('leaves on Fargate, with why, what no healthy spot node fits or what has no restore record', () => {
    const pinned = onFargate('pinned');
    const saved = JSON.parse(pinned.metadata!.annotations![A.savedSpec]!);
    saved.nodeSelector = { ...saved.nodeSelector, 'eks.amazonaws.com/nodegroup': 'gone' };
    setSignedSavedSpec(pinned, JSON.stringify(saved));
    const broken = onFargate('broken');
    setSignedSavedSpec(broken, '{not json');
    const plan = planRecoverAll(
      [pinned, broken, onFargate('warned')],
      [spotNode('spot-a-0', { [NODE_ANNOTATIONS.interruptedAt]: NOW.toISOString() })],
      config,
      NOW,
      TEST_SIGNER,
    );
    const why = Object.fromEntries(plan.blocked.map((b) => [b.key, b.why]));
    // The only spot node is under a warning: it is no capacity to go back to.
    assert.match(why['prod/warned']!, /^no spot capacity fits: no healthy spot node/);
    assert.match(why['prod/pinned']!, /^no spot capacity fits/);
    assert.match(why['prod/broken']!, /^no restore record to go back by .*restore its scheduling by hand/);
    assert.equal(plan.recover.length, 0);
  });

  it('a move in flight is left to the controller, with what to do', () => {
    const plan = planRecoverAll([onFargate('moving', { [A.phase]: 'migrating' })], [spotNode('spot-a-0')], config, NOW, TEST_SIGNER);
    assert.match(plan.blocked[0]!.why, /phase migrating.*let the controller finish/);
  });
});

describe('recover --all --now: forgetting a Deployment at rest on spot', () => {
  it("removes only the controller's annotations, behind a resourceVersion test", () => {
    const d = spotDeployment();
    Object.assign(d.metadata!.annotations!, { [A.state]: 'spot', [A.lastRecoveredAt]: 'x', [A.failedRecoveryAttempts]: '0', mine: 'kept' });
    d.metadata!.resourceVersion = '7';
    const ops = planForget(d)!;
    assert.deepEqual(ops[0], { op: 'test', path: '/metadata/resourceVersion', value: '7' });
    const after = applyJsonPatch(d, ops) as V1Deployment;
    assert.deepEqual(Object.keys(after.metadata!.annotations!).sort(), ['deployment.kubernetes.io/revision', 'mine', 'spot-orchestrator/enabled']);
  });

  it('keeps everything while it is on Fargate or moving, and has nothing to do on a clean one', () => {
    assert.equal(planForget(onFargate('x')), undefined);
    const moving = spotDeployment();
    Object.assign(moving.metadata!.annotations!, { [A.state]: 'spot', [A.phase]: 'recovering' });
    assert.equal(planForget(moving), undefined);
    assert.equal(planForget(spotDeployment()), undefined);
  });
});

describe('the Lease', () => {
  const lease = (holder: string | undefined, renewedSecondsAgo: number) => ({
    spec: { holderIdentity: holder, leaseDurationSeconds: 15, renewTime: new Date(NOW.getTime() - renewedSecondsAgo * 1000) },
  });
  it('is held while renewed within its duration, and free once expired, released or absent', () => {
    assert.equal(leaseHolder(lease('pod-a', 5), NOW), 'pod-a');
    assert.equal(leaseHolder(lease('pod-a', 30), NOW), undefined);
    assert.equal(leaseHolder(lease(undefined, 1), NOW), undefined);
    assert.equal(leaseHolder(undefined, NOW), undefined);
  });
});
