// A template put back during phase 2, as the tools that do it put it back: a client-side apply or
// helm's three-way merge (every field the manifest names returns, the label with them), and a
// server-side apply that owns the scheduling fields but not the label the controller added.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { V1Deployment } from '@kubernetes/client-node';

import { MANAGED_ANNOTATIONS as A } from '../state/annotations.js';
import { MOVE_STRATEGY, planMigration, planReapply, planYieldToRevert } from './plan.js';
import { fargateTemplateDrift, GITOPS_GUIDE, revertFix, revertResponse } from './revert.js';
import { LABELS, migrationInput, okOps, patchOps, serverApply, spotDeployment, TEST_SIGNER } from './test-fixtures.js';

const LATER = new Date('2025-03-14T09:27:40.000Z');

function migrated(original = spotDeployment()): V1Deployment {
  return serverApply(original, patchOps(planMigration(original, migrationInput())));
}

/** What `kubectl apply` of the original manifest (or Argo CD's self-heal with it) leaves: the template and strategy as the manifest has them, the controller's annotations kept. */
function clientSideRevert(moved: V1Deployment, original = spotDeployment()): V1Deployment {
  const out = structuredClone(moved);
  out.spec!.template = structuredClone(original.spec!.template);
  out.spec!.strategy = structuredClone(original.spec!.strategy);
  out.metadata!.generation = (out.metadata!.generation ?? 0) + 1;
  return out;
}

/** A server-side apply of a manifest without strategy: nodeSelector and tolerations return, the label the controller changed stays. */
function serverSideRevert(moved: V1Deployment, original = spotDeployment()): V1Deployment {
  const out = structuredClone(moved);
  out.spec!.template.spec!.nodeSelector = structuredClone(original.spec!.template.spec!.nodeSelector);
  out.spec!.template.spec!.tolerations = structuredClone(original.spec!.template.spec!.tolerations);
  return out;
}

const annotation = (d: V1Deployment, key: string) => d.metadata?.annotations?.[key];

describe('fargateTemplateDrift', () => {
  it('is empty on the Fargate template the move wrote, and not fooled by a user change elsewhere', () => {
    const moved = migrated();
    assert.deepEqual(fargateTemplateDrift(moved, LABELS), []);
    const imageBump = structuredClone(moved);
    imageBump.spec!.template.spec!.containers[0]!.image = 'ghcr.io/acme/api:1.2.4';
    imageBump.spec!.strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } };
    assert.deepEqual(fargateTemplateDrift(imageBump, LABELS), [], 'a new image, or the strategy alone, does not send the pods to spot');
  });

  it('names each way back to spot', () => {
    const moved = migrated();
    assert.deepEqual(fargateTemplateDrift(clientSideRevert(moved), LABELS), [
      'template label compute-type=spot',
      'nodeSelector selects spot',
      'tolerations of spot taints',
    ]);
    assert.deepEqual(fargateTemplateDrift(serverSideRevert(moved), LABELS), ['nodeSelector selects spot', 'tolerations of spot taints']);
    const unlabelled = structuredClone(moved);
    delete unlabelled.spec!.template.metadata!.labels!['compute-type'];
    unlabelled.spec!.template.spec!.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'karpenter.sh/capacity-type', operator: 'In', values: ['spot'] }] }],
        },
      },
    };
    assert.deepEqual(fargateTemplateDrift(unlabelled, LABELS), ['template label compute-type removed', 'node affinity selects spot']);
  });
});

describe('revertResponse', () => {
  it('re-applies after the first revert of a move and stops at the second', () => {
    assert.equal(revertResponse(0), 'reapply');
    assert.equal(revertResponse(1), 'stop');
    assert.equal(revertResponse(5), 'stop');
  });

  it('the fix names the guide and what to set in each tool', () => {
    assert.ok(revertFix().includes(GITOPS_GUIDE));
    assert.match(revertFix(), /ignoreDifferences.*RespectIgnoreDifferences=true.*spec\.ignore/);
  });
});

describe('planReapply', () => {
  it('writes the Fargate template over a client-side revert, keeping the saved-spec of the move and stamping migrated-at anew', () => {
    const moved = migrated();
    const reverted = clientSideRevert(moved);
    const again = serverApply(reverted, patchOps(planReapply(reverted, migrationInput({ now: LATER }))));
    assert.deepEqual(again.spec!.template, moved.spec!.template);
    assert.deepEqual(again.spec!.strategy, MOVE_STRATEGY);
    assert.equal(annotation(again, A.savedSpec), annotation(moved, A.savedSpec), 'the original record stays');
    assert.equal(annotation(again, A.migratedAt), '2025-03-14T09:27:40Z');
    assert.equal(annotation(again, A.phase), 'migrating');
    assert.equal(annotation(again, A.state), 'fargate');
  });

  it('re-applies a server-side revert that planMigration would take for a finished move (label and state still fargate)', () => {
    const reverted = serverSideRevert(migrated());
    const first = planMigration(reverted, migrationInput({ now: LATER }));
    assert.equal(first.action === 'skip' && first.reason, 'already_on_fargate');
    const again = serverApply(reverted, patchOps(planReapply(reverted, migrationInput({ now: LATER }))));
    assert.deepEqual(again.spec!.template.spec!.nodeSelector, { 'kubernetes.io/arch': 'amd64' });
    assert.deepEqual(fargateTemplateDrift(again, LABELS), []);
  });

  it('skips a template that is the Fargate template again, and tests the resourceVersion it planned from', () => {
    const moved = migrated();
    const plan = planReapply(moved, migrationInput());
    assert.equal(plan.action === 'skip' && plan.reason, 'already_on_fargate');
    const ops = patchOps(planReapply(clientSideRevert(moved), migrationInput()));
    assert.deepEqual(ops[0], { op: 'test', path: '/metadata/resourceVersion', value: moved.metadata!.resourceVersion });
  });
});

describe('planYieldToRevert', () => {
  it('after a client-side revert: the reverter’s template and strategy stay exactly, the state says spot, rolled back', () => {
    const original = spotDeployment();
    const reverted = clientSideRevert(migrated(original));
    const ended = serverApply(reverted, okOps(planYieldToRevert(reverted, LABELS, TEST_SIGNER)));
    assert.deepEqual(ended.spec, reverted.spec, 'no field of the template or strategy is written');
    assert.deepEqual(ended.spec!.template, original.spec!.template);
    assert.equal(annotation(ended, A.state), 'spot');
    assert.equal(annotation(ended, A.reason), 'rollback');
    assert.equal(annotation(ended, A.savedSpec), undefined);
    assert.equal(annotation(ended, A.phase), undefined);
    assert.equal(annotation(ended, 'spot-orchestrator/enabled'), 'true', 'the user’s annotations stay');
  });

  it('after a server-side revert: the label and strategy the controller left behind go back, what the reverter wrote stays', () => {
    const original = spotDeployment();
    const reverted = serverSideRevert(migrated(original));
    reverted.spec!.template.spec!.nodeSelector = { 'compute-type': 'spot', 'topology.kubernetes.io/zone': 'eu-west-1b' };
    const ended = serverApply(reverted, okOps(planYieldToRevert(reverted, LABELS, TEST_SIGNER)));
    assert.equal(ended.spec!.template.metadata!.labels!['compute-type'], 'spot');
    assert.deepEqual(ended.spec!.strategy, original.spec!.strategy);
    assert.deepEqual(ended.spec!.template.spec!.nodeSelector, { 'compute-type': 'spot', 'topology.kubernetes.io/zone': 'eu-west-1b' }, 'the reverter’s value');
    assert.deepEqual(ended.spec!.template.spec!.tolerations, original.spec!.template.spec!.tolerations);
    assert.ok(fargateTemplateDrift(ended, LABELS).length > 0, 'it is a spot template');
    assert.equal(annotation(ended, A.state), 'spot');
  });

  it('gives back a field the move removed whole when the reverter did not name it, and removes a label that was not there before', () => {
    const original = spotDeployment();
    delete original.spec!.template.metadata!.labels!['compute-type'];
    original.spec!.template.spec!.nodeSelector = { 'eks.amazonaws.com/capacityType': 'SPOT' };
    const moved = migrated(original);
    assert.equal(moved.spec!.template.spec!.nodeSelector, undefined, 'the move removed it whole');
    // The reverter's manifest names only the tolerations.
    const reverted = structuredClone(moved);
    reverted.spec!.template.spec!.tolerations = structuredClone(original.spec!.template.spec!.tolerations);
    const ended = serverApply(reverted, okOps(planYieldToRevert(reverted, LABELS, TEST_SIGNER)));
    assert.deepEqual(ended.spec!.template.spec!.nodeSelector, { 'eks.amazonaws.com/capacityType': 'SPOT' });
    assert.equal(ended.spec!.template.metadata!.labels!['compute-type'], undefined);
    assert.deepEqual(ended.spec!.template, original.spec!.template);
  });

  it('without a readable saved-spec, writes only the state', () => {
    const reverted = clientSideRevert(migrated());
    reverted.metadata!.annotations![A.savedSpec] = '{not json';
    reverted.spec!.strategy = MOVE_STRATEGY;
    const ops = okOps(planYieldToRevert(reverted, LABELS, TEST_SIGNER));
    assert.ok(
      ops.every((op) => op.path.startsWith('/metadata/')),
      JSON.stringify(ops),
    );
    const ended = serverApply(reverted, ops);
    assert.equal(annotation(ended, A.state), 'spot');
    assert.equal(annotation(ended, A.savedSpec), undefined);
  });
});
