import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { V1Deployment } from '@kubernetes/client-node';

import { MANAGED_ANNOTATIONS as A } from '../state/annotations.js';
import { applyJsonPatch } from './json-patch.js';
import { formatTimestamp, MOVE_STRATEGY, type PatchResult, planFinish, planMigration, planRestoreToSpot, planStrategyReturn, type SavedSpec } from './plan.js';
import {
  LABELS,
  migrationInput,
  NOW,
  okOps,
  patchOps,
  serverApply,
  setSignedSavedSpec,
  spotDeployment,
  TEST_SIGNER,
  userAnnotations,
} from './test-fixtures.js';
import { hmacRecordSigner } from './record-signature.js';

const LATER = new Date('2025-03-14T10:00:00.999Z');

function migrate(d: V1Deployment): V1Deployment {
  return serverApply(d, patchOps(planMigration(d, migrationInput())));
}

function annotation(d: V1Deployment, key: string): string | undefined {
  return d.metadata?.annotations?.[key];
}

function savedSpecOf(d: V1Deployment): SavedSpec {
  return JSON.parse(annotation(d, A.savedSpec) ?? 'null') as SavedSpec;
}

describe('planMigration: skips', () => {
  it('allow_fargate_false', () => {
    const plan = planMigration(spotDeployment(), migrationInput({ allowFargate: false }));
    assert.deepEqual(plan, {
      action: 'skip',
      reason: 'allow_fargate_false',
      detail: 'Fargate is not allowed for deployment prod/api: its pods on the interrupted nodes will be lost with them',
    });
  });

  it('paused: no rollout could start, so nothing is patched', () => {
    const d = spotDeployment();
    d.spec!.paused = true;
    const plan = planMigration(d, migrationInput());
    assert.equal(plan.action === 'skip' && plan.reason, 'paused');
    assert.match(plan.action === 'skip' ? plan.detail : '', /prod\/api is paused \(spec\.paused\).*will be lost/);
    d.spec!.paused = false;
    assert.equal(planMigration(d, migrationInput()).action, 'patch', 'paused: false is an ordinary Deployment');
  });

  it('fargate_refuses names the problem', () => {
    const d = spotDeployment();
    d.spec!.template.spec!.containers[0]!.securityContext = { privileged: true };
    const plan = planMigration(d, migrationInput());
    assert.equal(plan.action, 'skip');
    assert.equal(plan.action === 'skip' && plan.reason, 'fargate_refuses');
    assert.match(plan.action === 'skip' ? plan.detail : '', /container "web" is privileged/);
  });

  it('zero_replicas', () => {
    const d = spotDeployment();
    d.spec!.replicas = 0;
    const plan = planMigration(d, migrationInput());
    assert.equal(plan.action === 'skip' && plan.reason, 'zero_replicas');
  });

  it('selector_pins_spot when matchLabels requires the spot label', () => {
    const d = spotDeployment();
    d.spec!.selector = { matchLabels: { app: 'api', 'compute-type': 'spot' } };
    const plan = planMigration(d, migrationInput());
    assert.equal(plan.action === 'skip' && plan.reason, 'selector_pins_spot');
    assert.match(plan.action === 'skip' ? plan.detail : '', /requires matchLabels compute-type=spot/);
  });

  it('selector_pins_spot when matchExpressions exclude the fargate value', () => {
    const d = spotDeployment();
    d.spec!.selector = { matchLabels: { app: 'api' }, matchExpressions: [{ key: 'compute-type', operator: 'In', values: ['spot'] }] };
    assert.equal(planMigration(d, migrationInput()).action, 'skip');
    d.spec!.selector.matchExpressions = [{ key: 'compute-type', operator: 'Exists' }];
    assert.equal(planMigration(d, migrationInput()).action, 'patch');
  });

  it('already_on_fargate for a repeated message, before any other check', () => {
    const migrated = migrate(spotDeployment());
    const again = planMigration(migrated, migrationInput({ allowFargate: false }));
    assert.deepEqual(again, {
      action: 'skip',
      reason: 'already_on_fargate',
      detail: 'deployment prod/api already has template label compute-type=fargate and state fargate (phase migrating)',
    });
    const finished = serverApply(migrated, okOps(planFinish(migrated, { kind: 'migrated' }, TEST_SIGNER)));
    const plan = planMigration(finished, migrationInput());
    assert.equal(plan.action === 'skip' && plan.reason, 'already_on_fargate');
  });
});

describe('planMigration: the patch', () => {
  it('on a Deployment pinned by nodeSelector, label and toleration', () => {
    const plan = planMigration(spotDeployment(), migrationInput());
    const savedSpec: SavedSpec = {
      version: 1,
      label: { key: 'compute-type', value: 'spot' },
      nodeSelector: { 'compute-type': 'spot', 'kubernetes.io/arch': 'amd64' },
      tolerations: [
        { key: 'spot', operator: 'Equal', value: 'true', effect: 'NoSchedule' },
        { key: 'dedicated', operator: 'Equal', value: 'api', effect: 'NoSchedule' },
      ],
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
    };
    assert.deepEqual(plan, {
      action: 'patch',
      removed: savedSpec,
      ops: [
        { op: 'test', path: '/metadata/resourceVersion', value: '4711' },
        { op: 'add', path: '/spec/template/spec/nodeSelector', value: { 'kubernetes.io/arch': 'amd64' } },
        {
          op: 'add',
          path: '/spec/template/spec/tolerations',
          value: [{ key: 'dedicated', operator: 'Equal', value: 'api', effect: 'NoSchedule' }],
        },
        { op: 'add', path: '/spec/template/metadata/labels/compute-type', value: 'fargate' },
        {
          op: 'add',
          path: '/spec/strategy',
          value: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: '100%' } },
        },
        { op: 'add', path: '/metadata/annotations/spot-orchestrator~1state', value: 'fargate' },
        { op: 'add', path: '/metadata/annotations/spot-orchestrator~1migrated-at', value: '2025-03-14T09:26:53Z' },
        { op: 'add', path: '/metadata/annotations/spot-orchestrator~1reason', value: 'spot-interruption' },
        { op: 'add', path: '/metadata/annotations/spot-orchestrator~1phase', value: 'migrating' },
        {
          op: 'add',
          path: '/metadata/annotations/spot-orchestrator~1interruption',
          value: '{"eventId":"evt-0b5f","instanceIds":["i-0abc123","i-0def456"]}',
        },
        { op: 'add', path: '/metadata/annotations/spot-orchestrator~1saved-spec', value: JSON.stringify(savedSpec) },
        {
          op: 'add',
          path: '/metadata/annotations/spot-orchestrator~1saved-spec-signature',
          value: TEST_SIGNER.sign(spotDeployment(), JSON.stringify(savedSpec)),
        },
      ],
    });
  });

  it('removes a nodeSelector that only selected spot, comparing values case-insensitively', () => {
    for (const nodeSelector of <Array<Record<string, string>>>[
      { 'compute-type': 'spot' },
      { 'compute-type': 'SPOT' },
      { 'eks.amazonaws.com/capacityType': 'SPOT' },
      { 'eks.amazonaws.com/capacityType': 'spot', 'karpenter.sh/capacity-type': 'Spot' },
    ]) {
      const d = spotDeployment();
      d.spec!.template.spec!.nodeSelector = nodeSelector;
      const ops = patchOps(planMigration(d, migrationInput()));
      assert.deepEqual(ops[1], { op: 'remove', path: '/spec/template/spec/nodeSelector' }, JSON.stringify(nodeSelector));
      assert.equal(migrate(d).spec!.template.spec!.nodeSelector, undefined);
    }
  });

  it('keeps nodeSelector entries that do not select spot', () => {
    const d = spotDeployment();
    d.spec!.template.spec!.nodeSelector = { 'compute-type': 'on-demand', 'karpenter.sh/capacity-type': 'on-demand' };
    const ops = patchOps(planMigration(d, migrationInput()));
    assert.ok(!ops.some((o) => o.path.endsWith('/nodeSelector')));
  });

  it('strips spot from a required affinity with mixed expressions, keeping the rest', () => {
    const d = spotDeployment();
    delete d.spec!.template.spec!.nodeSelector;
    d.spec!.template.spec!.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            {
              matchExpressions: [
                { key: 'karpenter.sh/capacity-type', operator: 'In', values: ['spot'] },
                { key: 'topology.kubernetes.io/zone', operator: 'In', values: ['eu-west-1a', 'eu-west-1b'] },
              ],
            },
            { matchExpressions: [{ key: 'eks.amazonaws.com/capacityType', operator: 'In', values: ['SPOT'] }] },
            { matchExpressions: [{ key: 'compute-type', operator: 'NotIn', values: ['spot'] }] },
          ],
        },
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 80, preference: { matchExpressions: [{ key: 'compute-type', operator: 'In', values: ['spot'] }] } },
          { weight: 20, preference: { matchExpressions: [{ key: 'node.kubernetes.io/instance-type', operator: 'In', values: ['m6i.large'] }] } },
        ],
      },
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app: 'api' } } } },
        ],
      },
    };
    const ops = patchOps(planMigration(d, migrationInput()));
    assert.deepEqual(ops[1], {
      op: 'add',
      path: '/spec/template/spec/affinity',
      value: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['eu-west-1a', 'eu-west-1b'] }] },
              { matchExpressions: [{ key: 'compute-type', operator: 'NotIn', values: ['spot'] }] },
            ],
          },
          preferredDuringSchedulingIgnoredDuringExecution: [
            { weight: 20, preference: { matchExpressions: [{ key: 'node.kubernetes.io/instance-type', operator: 'In', values: ['m6i.large'] }] } },
          ],
        },
        podAntiAffinity: d.spec!.template.spec!.affinity.podAntiAffinity,
      },
    });
  });

  it('drops a node affinity that only selected spot, and the affinity field with it', () => {
    const d = spotDeployment();
    d.spec!.template.spec!.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'compute-type', operator: 'In', values: ['spot', 'on-demand'] }] }],
        },
      },
    };
    const migrated = migrate(d);
    assert.equal(migrated.spec!.template.spec!.affinity, undefined);
    assert.deepEqual(savedSpecOf(migrated).affinity, d.spec!.template.spec!.affinity);
  });

  it('keeps a required term that still has matchFields', () => {
    const d = spotDeployment();
    d.spec!.template.spec!.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            {
              matchExpressions: [{ key: 'compute-type', operator: 'In', values: ['spot'] }],
              matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['bad-node'] }],
            },
          ],
        },
      },
    };
    assert.deepEqual(migrate(d).spec!.template.spec!.affinity, {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['bad-node'] }] }],
        },
      },
    });
  });

  it('removes every spot toleration and the field when none remain', () => {
    const d = spotDeployment();
    d.spec!.template.spec!.tolerations = [
      { key: 'spot', operator: 'Exists', effect: 'NoSchedule' },
      { key: 'eks.amazonaws.com/capacityType', operator: 'Equal', value: 'SPOT', effect: 'NoSchedule' },
      { key: 'karpenter.sh/capacity-type', operator: 'Equal', value: 'spot', effect: 'NoSchedule' },
      { key: 'compute-type', operator: 'Equal', value: 'spot', effect: 'NoExecute' },
    ];
    const ops = patchOps(planMigration(d, migrationInput()));
    assert.ok(ops.some((o) => o.op === 'remove' && o.path === '/spec/template/spec/tolerations'));
    d.spec!.template.spec!.tolerations.push({ operator: 'Exists' });
    assert.deepEqual(migrate(d).spec!.template.spec!.tolerations, [{ operator: 'Exists' }]);
  });

  it('turns a Recreate strategy into the one-wave rolling update and saves it', () => {
    const d = spotDeployment();
    d.spec!.strategy = { type: 'Recreate' };
    const plan = planMigration(d, migrationInput());
    assert.ok(patchOps(plan).some((o) => o.op === 'add' && o.path === '/spec/strategy'));
    assert.deepEqual(plan.action === 'patch' && plan.removed.strategy, { type: 'Recreate' });
    assert.deepEqual(migrate(d).spec!.strategy, MOVE_STRATEGY);
  });

  it('leaves a label that is already fargate alone, and records spot as the way back', () => {
    const d = spotDeployment();
    d.spec!.template.metadata!.labels!['compute-type'] = 'fargate';
    const plan = planMigration(d, migrationInput());
    assert.ok(!patchOps(plan).some((o) => o.path.includes('/labels')));
    assert.deepEqual(plan.action === 'patch' && plan.removed.label, { key: 'compute-type', value: 'spot' });
  });

  it('adds the label when the template had none, and remembers it was absent', () => {
    const d = spotDeployment();
    delete d.spec!.template.metadata!.labels!['compute-type'];
    const plan = planMigration(d, migrationInput());
    assert.deepEqual(plan.action === 'patch' && plan.removed.label, { key: 'compute-type' });
    assert.equal(migrate(d).spec!.template.metadata!.labels!['compute-type'], 'fargate');
  });

  it('uses the configured label key and values', () => {
    const d = spotDeployment();
    d.spec!.template.metadata!.labels = { app: 'api', 'acme.io/pool': 'preemptible' };
    d.spec!.template.spec!.nodeSelector = { 'acme.io/pool': 'preemptible', 'compute-type': 'spot' };
    const input = migrationInput({ computeLabelKey: 'acme.io/pool', spotLabel: 'preemptible', fargateLabel: 'serverless' });
    const migrated = serverApply(d, patchOps(planMigration(d, input)));
    assert.deepEqual(migrated.spec!.template.metadata!.labels, { app: 'api', 'acme.io/pool': 'serverless' });
    // With another key configured, compute-type=spot is an ordinary node label and stays.
    assert.deepEqual(migrated.spec!.template.spec!.nodeSelector, { 'compute-type': 'spot' });
    assert.ok(patchOps(planMigration(d, input)).some((o) => o.path === '/spec/template/metadata/labels/acme.io~1pool'));
  });

  it('creates the annotations map when the Deployment has none', () => {
    const d = spotDeployment();
    delete d.metadata!.annotations;
    const migrated = migrate(d);
    assert.equal(annotation(migrated, A.state), 'fargate');
    assert.equal(annotation(migrated, A.reason), 'spot-interruption');
  });

  it('records a manual move', () => {
    const migrated = serverApply(
      spotDeployment(),
      patchOps(planMigration(spotDeployment(), migrationInput({ reason: 'manual', eventId: '', instanceIds: [] }))),
    );
    assert.equal(annotation(migrated, A.reason), 'manual');
    assert.equal(annotation(migrated, A.interruption), '{"eventId":"","instanceIds":[]}');
  });

  it('keeps the saved-spec of an earlier move that was not undone', () => {
    const original = spotDeployment();
    original.spec!.strategy = { type: 'Recreate' };
    const migrated = migrate(original);
    // Interrupted in the middle of recovery: template back on spot, strategy still the move strategy.
    const restoring = serverApply(migrated, okOps(planRestoreToSpot(migrated, { purpose: 'recovery', now: LATER, signer: TEST_SIGNER })));
    const plan = planMigration(restoring, migrationInput({ now: LATER, eventId: 'evt-2' }));
    const ops = patchOps(plan);
    assert.ok(!ops.some((o) => o.path.endsWith('saved-spec')));
    assert.deepEqual(plan.action === 'patch' && plan.removed, savedSpecOf(migrated));
    const again = serverApply(restoring, ops);
    assert.equal(annotation(again, A.savedSpec), annotation(migrated, A.savedSpec));
    assert.equal(annotation(again, A.phase), 'migrating');
    assert.equal(annotation(again, A.migratedAt), formatTimestamp(LATER));
  });

  it('overwrites a saved-spec left over from a Deployment that is on spot', () => {
    const d = spotDeployment();
    d.metadata!.annotations![A.state] = 'spot';
    d.metadata!.annotations![A.savedSpec] = '{"version":1,"label":{"key":"compute-type"}}';
    const migrated = migrate(d);
    assert.equal(savedSpecOf(migrated).label.value, 'spot');
  });

  it('is guarded by resourceVersion', () => {
    const d = spotDeployment();
    const ops = patchOps(planMigration(d, migrationInput()));
    d.metadata!.resourceVersion = '4712';
    assert.throws(() => applyJsonPatch(d, ops), /test failed/);
  });
});

describe('planMigration: a template the Go original half-moved (Fargate label, no state)', () => {
  it('records the spot label as the way back, not the Fargate label it found', () => {
    const d = spotDeployment();
    d.spec!.template.metadata!.labels!['compute-type'] = 'fargate';
    const migrated = migrate(d);
    assert.deepEqual(savedSpecOf(migrated).label, { key: 'compute-type', value: 'spot' });
    const restored = serverApply(migrated, okOps(planRestoreToSpot(migrated, { purpose: 'recovery', now: LATER, signer: TEST_SIGNER })));
    assert.equal(restored.spec!.template.metadata!.labels!['compute-type'], 'spot');
  });
});

describe('planRestoreToSpot', () => {
  it('puts the scheduling constraints and label back, keeps the move strategy, sets the phase', () => {
    const original = spotDeployment();
    const migrated = migrate(original);
    const result = planRestoreToSpot(migrated, { purpose: 'recovery', now: LATER, signer: TEST_SIGNER });
    assert.deepEqual(result, {
      ops: [
        { op: 'test', path: '/metadata/resourceVersion', value: '4712' },
        { op: 'add', path: '/spec/template/spec/nodeSelector', value: original.spec!.template.spec!.nodeSelector },
        { op: 'add', path: '/spec/template/spec/tolerations', value: original.spec!.template.spec!.tolerations },
        { op: 'add', path: '/spec/template/metadata/labels/compute-type', value: 'spot' },
        { op: 'add', path: '/metadata/annotations/spot-orchestrator~1phase', value: 'recovering' },
      ],
    });
  });

  it('removes fields that were absent originally', () => {
    const original = spotDeployment();
    delete original.spec!.template.spec!.tolerations;
    delete original.spec!.template.metadata!.labels!['compute-type'];
    const migrated = migrate(original);
    // Something (a user, another tool) added fields while on Fargate; restore puts back the original.
    migrated.spec!.template.spec!.tolerations = [{ key: 'spot', operator: 'Exists' }];
    migrated.spec!.template.spec!.affinity = { nodeAffinity: {} };
    const ops = okOps(planRestoreToSpot(migrated, { purpose: 'rollback', now: LATER, signer: TEST_SIGNER }));
    assert.ok(ops.some((o) => o.op === 'remove' && o.path === '/spec/template/spec/tolerations'));
    assert.ok(ops.some((o) => o.op === 'remove' && o.path === '/spec/template/spec/affinity'));
    assert.ok(ops.some((o) => o.op === 'remove' && o.path === '/spec/template/metadata/labels/compute-type'));
    assert.ok(ops.some((o) => o.op === 'add' && o.path.endsWith('phase') && 'value' in o && o.value === 'rolling-back'));
    const restored = serverApply(migrated, ops);
    assert.deepEqual(restored.spec!.template, original.spec!.template);
  });

  it('sets the move strategy again after the migration gave the original back', () => {
    const migrated = migrate(spotDeployment());
    const settled = serverApply(migrated, okOps(planFinish(migrated, { kind: 'migrated' }, TEST_SIGNER)));
    const restoring = serverApply(settled, okOps(planRestoreToSpot(settled, { purpose: 'recovery', now: LATER, signer: TEST_SIGNER })));
    assert.deepEqual(restoring.spec!.strategy, MOVE_STRATEGY);
  });

  it('refuses without a usable saved-spec, with no ops', () => {
    const migrated = migrate(spotDeployment());
    const cases: Array<[string | undefined, RegExp]> = [
      [undefined, /annotation is missing/],
      ['{not json', /not valid JSON/],
      ['[]', /not a JSON object/],
      ['{"version":2,"label":{"key":"compute-type"}}', /unsupported version 2/],
      ['{"version":1}', /"label.key" must be a non-empty string/],
      ['{"version":1,"label":{"key":"compute-type"},"nodeSelector":{"a":1}}', /"nodeSelector" must be an object of strings/],
      ['{"version":1,"label":{"key":"compute-type"},"tolerations":{}}', /"tolerations" must be an array/],
    ];
    for (const [raw, message] of cases) {
      const d = structuredClone(migrated);
      setSignedSavedSpec(d, raw);
      const result = planRestoreToSpot(d, { purpose: 'recovery', now: LATER, signer: TEST_SIGNER });
      assert.ok('error' in result && !('ops' in result), String(raw));
      assert.match(result.error, message);
      assert.match(result.error, /^cannot plan recovery to spot: reading annotation spot-orchestrator\/saved-spec of deployment prod\/api: /);
    }
  });
});

describe('planRestoreToSpot: a Deployment the Go original moved (no saved-spec)', () => {
  /** As the original leaves it: the template label flipped to fargate, state annotations, no saved-spec. */
  function movedByGoOriginal(): V1Deployment {
    const d = spotDeployment();
    d.spec!.template.metadata!.labels!['compute-type'] = 'fargate';
    d.spec!.template.spec!.nodeSelector = { team: 'payments' };
    Object.assign(d.metadata!.annotations!, { [A.state]: 'fargate', [A.migratedAt]: '2024-01-15T10:30:45Z', [A.reason]: 'spot-interruption' });
    return d;
  }
  const legacy = { computeLabelKey: LABELS.computeLabelKey, spotLabel: LABELS.spotLabel };

  it('flips only the template label back to spot, and records what it restored as the saved-spec', () => {
    const d = movedByGoOriginal();
    const planned = planRestoreToSpot(d, { purpose: 'recovery', now: LATER, legacy, signer: TEST_SIGNER });
    assert.match('note' in planned ? String(planned.note) : '', /moved by the Go original/, 'the plan says how it was made, for the Event');
    const restoring = serverApply(d, okOps(planned));
    assert.equal(restoring.spec!.template.metadata!.labels!['compute-type'], 'spot');
    assert.deepEqual(restoring.spec!.template.spec!.nodeSelector, { team: 'payments' }, 'no invented constraint');
    assert.deepEqual(restoring.spec!.template.spec!.tolerations, d.spec!.template.spec!.tolerations);
    assert.equal(annotation(restoring, A.phase), 'recovering');
    assert.deepEqual(savedSpecOf(restoring), {
      version: 1,
      label: { key: 'compute-type', value: 'spot' },
      nodeSelector: { team: 'payments' },
      tolerations: d.spec!.template.spec!.tolerations,
      strategy: d.spec!.strategy,
    });
    // The rest of the trip reads that record like any other: the user's strategy comes back at the end.
    const done = serverApply(restoring, okOps(planFinish(restoring, { kind: 'recovered', now: LATER, recoveryReason: 'successful-recovery' }, TEST_SIGNER)));
    assert.deepEqual(done.spec!.strategy, d.spec!.strategy);
    assert.equal(annotation(done, A.state), 'spot');
    assert.equal(annotation(done, A.savedSpec), undefined);
    assert.equal(annotation(done, A.recoveryReason), 'successful-recovery');
  });

  it('is only for a missing saved-spec on state fargate, never a guess over an unreadable one', () => {
    const unreadable = movedByGoOriginal();
    setSignedSavedSpec(unreadable, '{not json');
    assert.match(
      String((planRestoreToSpot(unreadable, { purpose: 'recovery', now: LATER, legacy, signer: TEST_SIGNER }) as { error?: string }).error),
      /not valid JSON/,
    );
    const onSpot = movedByGoOriginal();
    onSpot.metadata!.annotations![A.state] = 'spot';
    assert.match(
      String((planRestoreToSpot(onSpot, { purpose: 'recovery', now: LATER, legacy, signer: TEST_SIGNER }) as { error?: string }).error),
      /annotation is missing/,
    );
    // Without the legacy labels (a rollback of this controller's own move) a missing record is an error.
    assert.ok('error' in planRestoreToSpot(movedByGoOriginal(), { purpose: 'rollback', now: LATER, signer: TEST_SIGNER }));
  });
});

describe('planFinish', () => {
  it('after migration: original strategy back, phase removed, state stays fargate', () => {
    const migrated = migrate(spotDeployment());
    const result = planFinish(migrated, { kind: 'migrated' }, TEST_SIGNER);
    assert.deepEqual(result, {
      ops: [
        { op: 'test', path: '/metadata/resourceVersion', value: '4712' },
        { op: 'add', path: '/spec/strategy', value: spotDeployment().spec!.strategy },
        { op: 'remove', path: '/metadata/annotations/spot-orchestrator~1phase' },
      ],
    });
    const settled = serverApply(migrated, okOps(result));
    assert.equal(annotation(settled, A.state), 'fargate');
    assert.ok(annotation(settled, A.savedSpec) !== undefined);
  });

  it('removes spec.strategy when the original had none', () => {
    const d = spotDeployment();
    delete d.spec!.strategy;
    const migrated = migrate(d);
    assert.ok(okOps(planFinish(migrated, { kind: 'migrated' }, TEST_SIGNER)).some((o) => o.op === 'remove' && o.path === '/spec/strategy'));
  });

  it('after recovery: state spot, saved-spec and phase gone, recovery recorded', () => {
    const migrated = migrate(spotDeployment());
    migrated.metadata!.annotations![A.failedRecoveryAttempts] = '2';
    const restoring = serverApply(migrated, okOps(planRestoreToSpot(migrated, { purpose: 'recovery', now: LATER, signer: TEST_SIGNER })));
    const done = serverApply(restoring, okOps(planFinish(restoring, { kind: 'recovered', now: LATER, recoveryReason: 'successful-recovery' }, TEST_SIGNER)));
    const ann = done.metadata!.annotations!;
    assert.equal(ann[A.state], 'spot');
    assert.equal(ann[A.savedSpec], undefined);
    assert.equal(ann[A.phase], undefined);
    assert.equal(ann[A.lastRecoveredAt], '2025-03-14T10:00:00Z');
    assert.equal(ann[A.recoveryReason], 'successful-recovery');
    assert.equal(ann[A.failedRecoveryAttempts], '0');
  });

  it('after a rollback: state spot, reason rollback, saved-spec and phase gone', () => {
    const original = spotDeployment();
    const migrated = migrate(original);
    const rolling = serverApply(migrated, okOps(planRestoreToSpot(migrated, { purpose: 'rollback', now: LATER, signer: TEST_SIGNER })));
    assert.equal(annotation(rolling, A.phase), 'rolling-back');
    const done = serverApply(rolling, okOps(planFinish(rolling, { kind: 'rolled-back' }, TEST_SIGNER)));
    assert.equal(annotation(done, A.state), 'spot');
    assert.equal(annotation(done, A.reason), 'rollback');
    assert.equal(annotation(done, A.savedSpec), undefined);
    assert.equal(annotation(done, A.phase), undefined);
    assert.deepEqual(done.spec!.template, original.spec!.template);
    assert.deepEqual(done.spec!.strategy, original.spec!.strategy);
  });

  it('after a failed recovery: back to the Fargate template, attempt counted', () => {
    const migrated = migrate(spotDeployment());
    const settled = serverApply(migrated, okOps(planFinish(migrated, { kind: 'migrated' }, TEST_SIGNER)));
    const restoring = serverApply(settled, okOps(planRestoreToSpot(settled, { purpose: 'recovery', now: LATER, signer: TEST_SIGNER })));
    const failed = serverApply(
      restoring,
      okOps(planFinish(restoring, { kind: 'recovery-failed', now: LATER, recoveryReason: 'rollout-timeout', ...LABELS }, TEST_SIGNER)),
    );
    assert.deepEqual(failed.spec!.template, migrated.spec!.template);
    assert.deepEqual(failed.spec!.strategy, MOVE_STRATEGY);
    const ann = failed.metadata!.annotations!;
    assert.equal(ann[A.state], 'fargate');
    assert.equal(ann[A.phase], 'migrating');
    assert.equal(ann[A.failedRecoveryAttempts], '1');
    assert.equal(ann[A.recoveryReason], 'rollout-timeout');
    assert.equal(ann[A.lastRecoveredAt], '2025-03-14T10:00:00Z');
    assert.equal(ann[A.savedSpec], annotation(migrated, A.savedSpec));

    const second = serverApply(
      failed,
      okOps(planFinish(failed, { kind: 'recovery-failed', now: LATER, recoveryReason: 'rollout-timeout', ...LABELS }, TEST_SIGNER)),
    );
    assert.equal(annotation(second, A.failedRecoveryAttempts), '2');
  });

  it('refuses to finish without a saved-spec', () => {
    const migrated = migrate(spotDeployment());
    delete migrated.metadata!.annotations![A.savedSpec];
    const result = planFinish(migrated, { kind: 'migrated' }, TEST_SIGNER);
    assert.ok('error' in result);
    assert.match(result.error, /^cannot finish \(migrated\): .*annotation is missing/);
  });
});

describe('round trip', () => {
  function fullCycle(original: V1Deployment): V1Deployment {
    const migrated = migrate(original);
    const settled = serverApply(migrated, okOps(planFinish(migrated, { kind: 'migrated' }, TEST_SIGNER)));
    const restoring = serverApply(settled, okOps(planRestoreToSpot(settled, { purpose: 'recovery', now: LATER, signer: TEST_SIGNER })));
    return serverApply(restoring, okOps(planFinish(restoring, { kind: 'recovered', now: LATER, recoveryReason: 'successful-recovery' }, TEST_SIGNER)));
  }

  function assertRestored(original: V1Deployment, back: V1Deployment): void {
    assert.deepStrictEqual(back.spec!.template, original.spec!.template);
    assert.deepStrictEqual(back.spec!.strategy, original.spec!.strategy);
    assert.deepStrictEqual(back.spec!.selector, original.spec!.selector);
    assert.deepStrictEqual(userAnnotations(back), userAnnotations(original));
    assert.equal(annotation(back, A.state), 'spot');
  }

  it('restores a realistic Deployment exactly', () => {
    const original = spotDeployment();
    assertRestored(original, fullCycle(original));
  });

  it('restores Recreate, mixed affinity, absent fields and an absent label exactly', () => {
    const original = spotDeployment();
    original.spec!.strategy = { type: 'Recreate' };
    delete original.spec!.template.spec!.nodeSelector;
    delete original.spec!.template.metadata!.labels!['compute-type'];
    original.spec!.template.spec!.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            {
              matchExpressions: [
                { key: 'topology.kubernetes.io/zone', operator: 'In', values: ['eu-west-1a'] },
                { key: 'karpenter.sh/capacity-type', operator: 'In', values: ['spot'] },
              ],
            },
          ],
        },
      },
    };
    original.spec!.template.spec!.tolerations = [{ key: 'karpenter.sh/capacity-type', operator: 'Exists' }];
    assertRestored(original, fullCycle(original));
  });

  it('restores a Deployment without strategy or annotations', () => {
    const original = spotDeployment();
    delete original.spec!.strategy;
    delete original.metadata!.annotations;
    const back = fullCycle(original);
    assertRestored(original, back);
    assert.equal(back.spec!.strategy, undefined);
  });

  it('survives a failed recovery followed by a successful one', () => {
    const original = spotDeployment();
    const migrated = migrate(original);
    const settled = serverApply(migrated, okOps(planFinish(migrated, { kind: 'migrated' }, TEST_SIGNER)));
    const restoring = serverApply(settled, okOps(planRestoreToSpot(settled, { purpose: 'recovery', now: LATER, signer: TEST_SIGNER })));
    const failed = serverApply(
      restoring,
      okOps(planFinish(restoring, { kind: 'recovery-failed', now: LATER, recoveryReason: 'rollout-timeout', ...LABELS }, TEST_SIGNER)),
    );
    const settledAgain = serverApply(failed, okOps(planFinish(failed, { kind: 'migrated' }, TEST_SIGNER)));
    assert.deepStrictEqual(settledAgain.spec!.strategy, original.spec!.strategy);
    const restoringAgain = serverApply(settledAgain, okOps(planRestoreToSpot(settledAgain, { purpose: 'recovery', now: LATER, signer: TEST_SIGNER })));
    const back = serverApply(
      restoringAgain,
      okOps(planFinish(restoringAgain, { kind: 'recovered', now: LATER, recoveryReason: 'successful-recovery' }, TEST_SIGNER)),
    );
    assertRestored(original, back);
    assert.equal(annotation(back, A.failedRecoveryAttempts), '0');
  });

  it('timestamps are RFC 3339 without milliseconds', () => {
    assert.equal(formatTimestamp(NOW), '2025-03-14T09:26:53Z');
  });
});

describe('the restore record is only applied when its signature verifies', () => {
  const forged = JSON.stringify({
    version: 1,
    label: { key: 'compute-type', value: 'spot' },
    tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
  });
  const restore = (d: V1Deployment, signer = TEST_SIGNER) => planRestoreToSpot(d, { purpose: 'recovery', now: LATER, signer });

  it('a record a tenant wrote, changed, or copied from another Deployment is refused, with no ops', () => {
    const migrated = migrate(spotDeployment());
    const written = structuredClone(migrated);
    written.metadata!.annotations![A.savedSpec] = forged;
    delete written.metadata!.annotations![A.savedSpecSignature];
    const changed = structuredClone(migrated);
    changed.metadata!.annotations![A.savedSpec] = forged; // the controller's signature kept, the record replaced
    const copied = structuredClone(migrated);
    const other = structuredClone(migrated);
    other.metadata!.uid = 'another-uid';
    setSignedSavedSpec(other, forged);
    copied.metadata!.annotations![A.savedSpec] = forged;
    copied.metadata!.annotations![A.savedSpecSignature] = other.metadata!.annotations![A.savedSpecSignature]!;
    for (const [d, why] of [
      [written, /has no spot-orchestrator\/saved-spec-signature/],
      [changed, /does not match its spot-orchestrator\/saved-spec-signature/],
      [copied, /does not match/],
    ] as const) {
      const planned = restore(d);
      assert.ok('error' in planned && !('ops' in planned));
      assert.match(planned.error, why);
      const finished = planFinish(d, { kind: 'recovered', now: LATER, recoveryReason: 'successful-recovery' }, TEST_SIGNER);
      assert.ok('error' in finished, 'finishing reads the record too');
    }
  });

  it('a record signed with another key (another install, or a key replaced) does not verify', () => {
    const migrated = migrate(spotDeployment());
    assert.ok('error' in restore(migrated, hmacRecordSigner(Buffer.alloc(32, 8))));
    assert.ok('ops' in restore(migrated));
  });

  it('a new move replaces an unverified record with what the template is now, signed', () => {
    // Interrupted mid-recovery (template back on spot, state still fargate), then the record forged.
    const migrated = migrate(spotDeployment());
    const restoring = serverApply(migrated, okOps(restore(migrated)));
    restoring.metadata!.annotations![A.savedSpec] = forged;
    const plan = planMigration(restoring, migrationInput({ now: LATER, eventId: 'evt-2' }));
    assert.deepEqual(plan.action === 'patch' && plan.removed.tolerations, spotDeployment().spec!.template.spec!.tolerations, 'the template, not the forgery');
    const after = serverApply(restoring, patchOps(plan));
    assert.notEqual(annotation(after, A.savedSpec), forged);
    assert.ok(TEST_SIGNER.verify(after, annotation(after, A.savedSpec)!, annotation(after, A.savedSpecSignature)!));
  });

  it('the signature is removed with the record when the trip ends', () => {
    const migrated = migrate(spotDeployment());
    const restoring = serverApply(migrated, okOps(restore(migrated)));
    const done = serverApply(restoring, okOps(planFinish(restoring, { kind: 'recovered', now: LATER, recoveryReason: 'successful-recovery' }, TEST_SIGNER)));
    assert.equal(annotation(done, A.savedSpec), undefined);
    assert.equal(annotation(done, A.savedSpecSignature), undefined);
  });
});

describe('planStrategyReturn: a move that ended on Fargate without a finish', () => {
  /** A migration whose phase was cleared with no finish (no spot capacity to roll back to), its status as given. */
  function stranded(status: { replicas: number; updatedReplicas: number; observed?: number }): V1Deployment {
    const migrated = migrate(spotDeployment());
    const cleared = serverApply(migrated, [{ op: 'remove', path: '/metadata/annotations/spot-orchestrator~1phase' }]);
    cleared.metadata!.generation = 8;
    cleared.status = { observedGeneration: status.observed ?? 8, replicas: status.replicas, updatedReplicas: status.updatedReplicas };
    return cleared;
  }
  const skipOf = (r: ReturnType<typeof planStrategyReturn>) => ('skip' in r ? r.skip : undefined);

  it('gives back the saved strategy once no Ready pod of an older ReplicaSet is left, and nothing else', () => {
    const original = spotDeployment();
    const d = stranded({ replicas: 3, updatedReplicas: 3 });
    const result = planStrategyReturn(d, () => 0, TEST_SIGNER);
    const ops = okOps(result as PatchResult);
    assert.deepEqual(ops[0], { op: 'test', path: '/metadata/resourceVersion', value: d.metadata!.resourceVersion });
    const back = serverApply(d, ops);
    assert.deepEqual(back.spec!.strategy, original.spec!.strategy);
    assert.deepEqual(back.spec!.template, d.spec!.template, 'still the Fargate template');
    assert.deepEqual(back.metadata!.annotations, d.metadata!.annotations, 'state, saved-spec and the rest stay');
    assert.match(skipOf(planStrategyReturn(back, () => 0, TEST_SIGNER)) ?? '', /not the move's/, 'and once given back, there is nothing left to do');
  });

  it('keeps the surge while Ready old pods still serve, or while the status lags the generation', () => {
    assert.equal(
      skipOf(planStrategyReturn(stranded({ replicas: 5, updatedReplicas: 3 }), () => 2, TEST_SIGNER)),
      '2 Ready pod(s) of an older ReplicaSet still serve',
    );
    assert.match(
      skipOf(planStrategyReturn(stranded({ replicas: 3, updatedReplicas: 3, observed: 7 }), () => 0, TEST_SIGNER)) ?? '',
      /generation 8 not yet observed/,
    );
    // The old ReplicaSet recreated its pod after the instance died, and it is Pending: it serves nothing.
    assert.ok('ops' in planStrategyReturn(stranded({ replicas: 4, updatedReplicas: 3 }), () => 0, TEST_SIGNER), 'a Pending old pod does not hold the strategy');
  });

  it('leaves moves in flight, Deployments on spot, and other strategies alone', () => {
    const migrating = migrate(spotDeployment());
    migrating.status = { observedGeneration: 7, replicas: 3, updatedReplicas: 3 };
    assert.equal(skipOf(planStrategyReturn(migrating, () => 0, TEST_SIGNER)), 'a move is in flight (phase migrating)');
    const onSpot = spotDeployment();
    onSpot.spec!.strategy = MOVE_STRATEGY;
    assert.equal(skipOf(planStrategyReturn(onSpot, () => 0, TEST_SIGNER)), 'not on Fargate');
    const edited = stranded({ replicas: 3, updatedReplicas: 3 });
    edited.spec!.strategy = { type: 'Recreate' };
    assert.equal(skipOf(planStrategyReturn(edited, () => 0, TEST_SIGNER)), "the strategy is not the move's");
  });

  it("says nothing is left when the user's own strategy was the move's", () => {
    const own = spotDeployment();
    own.spec!.strategy = MOVE_STRATEGY;
    const migrated = migrate(own);
    const cleared = serverApply(migrated, [{ op: 'remove', path: '/metadata/annotations/spot-orchestrator~1phase' }]);
    cleared.status = { observedGeneration: 7, replicas: 3, updatedReplicas: 3 };
    assert.equal(skipOf(planStrategyReturn(cleared, () => 0, TEST_SIGNER)), "the saved strategy is the move's");
  });

  it('leaves a Deployment the Go original moved (no saved-spec) as it is, saying why', () => {
    const legacy = stranded({ replicas: 3, updatedReplicas: 3 });
    delete legacy.metadata!.annotations![A.savedSpec];
    delete legacy.metadata!.annotations![A.savedSpecSignature];
    assert.equal(skipOf(planStrategyReturn(legacy, () => 0, TEST_SIGNER)), 'no saved spec: not moved by this controller');
  });

  it('does not guess a strategy from a saved-spec that does not verify', () => {
    const d = stranded({ replicas: 3, updatedReplicas: 3 });
    const result = planStrategyReturn(d, () => 0, hmacRecordSigner(Buffer.alloc(32, 9)));
    assert.ok('error' in result);
    assert.match(result.error, /^cannot give the strategy back: /);
  });
});
