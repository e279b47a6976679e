import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type {
  V1Affinity,
  V1Deployment,
  V1DeploymentStrategy,
  V1NodeSelectorRequirement,
  V1NodeSelectorTerm,
  V1PodSpec,
  V1PodTemplateSpec,
  V1Toleration,
} from '@kubernetes/client-node';
import fc from 'fast-check';

import { MANAGED_ANNOTATIONS as A } from '../state/annotations.js';
import type { JsonPatchOp } from './json-patch.js';
import { MOVE_STRATEGY, planFinish, planMigration, planRestoreToSpot, type MigrationPlan, type PatchResult } from './plan.js';
import type { ComputeLabels } from './spot-constraints.js';
import { TEST_SIGNER, migrationInput, serverApply, userAnnotations } from './test-fixtures.js';

const LATER = new Date('2025-03-14T11:00:00Z');
const CONFIGS: ComputeLabels[] = [
  { computeLabelKey: 'compute-type', spotLabel: 'spot', fargateLabel: 'fargate' },
  { computeLabelKey: 'node-pool', spotLabel: 'Preemptible', fargateLabel: 'serverless' },
];

const NO_NULL = { noNullPrototype: true } as const;
const key = fc.constantFrom(
  'compute-type',
  'node-pool',
  'eks.amazonaws.com/capacityType',
  'karpenter.sh/capacity-type',
  'kubernetes.io/arch',
  'topology.kubernetes.io/zone',
  'team',
);
const value = fc.constantFrom('spot', 'SPOT', 'Spot', 'preemptible', 'on-demand', 'ON_DEMAND', 'fargate', 'serverless', 'amd64', 'eu-west-1a');

const requirement: fc.Arbitrary<V1NodeSelectorRequirement> = fc.record(
  {
    key,
    operator: fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist'),
    values: fc.array(value, { minLength: 1, maxLength: 3 }),
  },
  { requiredKeys: ['key', 'operator'], ...NO_NULL },
);
const fieldRequirement: fc.Arbitrary<V1NodeSelectorRequirement> = fc.record(
  {
    key: fc.constant('metadata.name'),
    operator: fc.constantFrom('In', 'NotIn'),
    values: fc.array(fc.constantFrom('node-a', 'node-b'), { minLength: 1, maxLength: 2 }),
  },
  NO_NULL,
);
const term: fc.Arbitrary<V1NodeSelectorTerm> = fc.record(
  { matchExpressions: fc.array(requirement, { maxLength: 3 }), matchFields: fc.array(fieldRequirement, { maxLength: 1 }) },
  { requiredKeys: [], ...NO_NULL },
);
const affinity: fc.Arbitrary<V1Affinity> = fc.record(
  {
    nodeAffinity: fc.record(
      {
        requiredDuringSchedulingIgnoredDuringExecution: fc.record({ nodeSelectorTerms: fc.array(term, { maxLength: 3 }) }, NO_NULL),
        preferredDuringSchedulingIgnoredDuringExecution: fc.array(fc.record({ weight: fc.integer({ min: 1, max: 100 }), preference: term }, NO_NULL), {
          maxLength: 3,
        }),
      },
      { requiredKeys: [], ...NO_NULL },
    ),
    podAntiAffinity: fc.constant({
      preferredDuringSchedulingIgnoredDuringExecution: [
        { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app: 'gen' } } } },
      ],
    }),
  },
  { requiredKeys: [], ...NO_NULL },
);
const toleration: fc.Arbitrary<V1Toleration> = fc.record(
  {
    key: fc.oneof(key, fc.constantFrom('spot', 'dedicated')),
    operator: fc.constantFrom('Equal', 'Exists'),
    value,
    effect: fc.constantFrom('NoSchedule', 'NoExecute', 'PreferNoSchedule'),
    tolerationSeconds: fc.integer({ min: 0, max: 600 }),
  },
  { requiredKeys: ['operator'], ...NO_NULL },
);
const strategy: fc.Arbitrary<V1DeploymentStrategy> = fc.oneof(
  fc.constant({ type: 'Recreate' }),
  fc.record(
    {
      type: fc.constant('RollingUpdate'),
      rollingUpdate: fc.record(
        {
          maxSurge: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom('25%', '50%')),
          maxUnavailable: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constantFrom('0%', '25%')),
        },
        { requiredKeys: [], ...NO_NULL },
      ),
    },
    { requiredKeys: ['type'], ...NO_NULL },
  ),
);
const schedulingFields = fc.record(
  {
    nodeSelector: fc.dictionary(key, value, { maxKeys: 4, ...NO_NULL }),
    affinity,
    tolerations: fc.array(toleration, { maxLength: 4 }),
  },
  { requiredKeys: [], ...NO_NULL },
);
const templateLabels = fc.record({ app: fc.constant('gen'), 'compute-type': value, 'node-pool': value }, { requiredKeys: ['app'], ...NO_NULL });

const deployment: fc.Arbitrary<V1Deployment> = fc
  .record(
    {
      scheduling: schedulingFields,
      labels: templateLabels,
      strategy: fc.option(strategy, { nil: undefined }),
      annotations: fc.option(fc.dictionary(fc.constantFrom('team', 'spot-orchestrator/enabled'), value, NO_NULL), { nil: undefined }),
      replicas: fc.integer({ min: 1, max: 20 }),
    },
    NO_NULL,
  )
  .map(({ scheduling, labels, strategy, annotations, replicas }) => {
    const podSpec: V1PodSpec = { containers: [{ name: 'app', image: 'ghcr.io/acme/gen:1' }], ...scheduling };
    const d: V1Deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'gen', namespace: 'prop', resourceVersion: '100', generation: 1 },
      spec: { replicas, selector: { matchLabels: { app: 'gen' } }, template: { metadata: { labels }, spec: podSpec } },
    };
    // Optional members are left out, not set to undefined: the API server never sends undefined.
    if (annotations !== undefined) d.metadata!.annotations = annotations;
    if (strategy !== undefined) d.spec!.strategy = strategy;
    return d;
  });

const config = fc.constantFrom(...CONFIGS);

function ops(plan: MigrationPlan): JsonPatchOp[] {
  if (plan.action !== 'patch') throw new Error(`expected a patch, got ${plan.reason}: ${plan.detail}`);
  return plan.ops;
}

function ok(result: PatchResult): JsonPatchOp[] {
  if ('error' in result) throw new Error(result.error);
  return result.ops;
}

function spotValues(labels: ComputeLabels): Map<string, string[]> {
  return new Map([
    [labels.computeLabelKey, [labels.spotLabel.toLowerCase()]],
    ['eks.amazonaws.com/capacityType', ['spot']],
    ['karpenter.sh/capacity-type', ['spot']],
  ]);
}

/** Independent check: nothing in the pod spec still asks for spot. */
function assertNoSpotPinning(spec: V1PodSpec, labels: ComputeLabels): void {
  const spot = spotValues(labels);
  const isSpot = (k: string, v: string) => spot.get(k)?.includes(v.toLowerCase()) ?? false;
  for (const [k, v] of Object.entries(spec.nodeSelector ?? {})) assert.ok(!isSpot(k, v), `nodeSelector ${k}=${v}`);
  const na = spec.affinity?.nodeAffinity;
  const spotExpr = (e: V1NodeSelectorRequirement) => e.operator === 'In' && (e.values ?? []).some((v) => isSpot(e.key, v));
  for (const t of na?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []) {
    assert.ok(!(t.matchExpressions ?? []).some(spotExpr), 'required term selects spot');
  }
  for (const p of na?.preferredDuringSchedulingIgnoredDuringExecution ?? []) {
    assert.ok(!(p.preference.matchExpressions ?? []).some(spotExpr), 'preferred term selects spot');
  }
  for (const t of spec.tolerations ?? []) {
    assert.ok(t.key === undefined || !(t.key === 'spot' || spot.has(t.key)), `toleration ${t.key}`);
  }
}

/** Stripping leaves no empty husk: a field is empty after migration only if the user wrote it empty. */
function assertNoHusks(migrated: V1PodSpec, original: V1PodSpec): void {
  const empty = (v: object | undefined) => v !== undefined && Object.keys(v).length === 0;
  if (empty(migrated.nodeSelector)) assert.ok(empty(original.nodeSelector), 'emptied nodeSelector');
  if (empty(migrated.affinity)) assert.ok(empty(original.affinity), 'emptied affinity');
  if (migrated.tolerations?.length === 0) assert.deepStrictEqual(original.tolerations, [], 'emptied tolerations');
}

/**
 * The template a trip back to spot ends on: the original exactly, except that a template already
 * labelled for Fargate (half-moved by someone else) comes back with the spot label.
 */
function spotTemplateOf(original: V1Deployment, labels: ComputeLabels): V1PodTemplateSpec {
  const template = structuredClone(original.spec!.template);
  const current = template.metadata?.labels?.[labels.computeLabelKey];
  if (current === labels.fargateLabel) template.metadata!.labels![labels.computeLabelKey] = labels.spotLabel;
  return template;
}

describe('planMigration / planRestoreToSpot / planFinish (property)', () => {
  it('migration unpins spot, and recovery gives back the original exactly', () => {
    fc.assert(
      fc.property(deployment, config, (original, labels) => {
        const input = migrationInput(labels);
        const migrated = serverApply(original, ops(planMigration(original, input)));
        assert.equal(migrated.spec!.template.metadata!.labels![labels.computeLabelKey], labels.fargateLabel);
        assertNoSpotPinning(migrated.spec!.template.spec!, labels);
        assertNoHusks(migrated.spec!.template.spec!, original.spec!.template.spec!);
        assert.deepStrictEqual(migrated.spec!.strategy, MOVE_STRATEGY);
        const again = planMigration(migrated, input);
        assert.equal(again.action === 'skip' ? again.reason : again.action, 'already_on_fargate');

        const settled = serverApply(migrated, ok(planFinish(migrated, { kind: 'migrated' }, TEST_SIGNER)));
        assert.deepStrictEqual(settled.spec!.strategy, original.spec!.strategy);
        assert.deepStrictEqual(settled.spec!.template, migrated.spec!.template);

        const restoring = serverApply(settled, ok(planRestoreToSpot(settled, { purpose: 'recovery', now: LATER, signer: TEST_SIGNER })));
        assert.deepStrictEqual(restoring.spec!.template, spotTemplateOf(original, labels));
        const back = serverApply(restoring, ok(planFinish(restoring, { kind: 'recovered', now: LATER, recoveryReason: 'successful-recovery' }, TEST_SIGNER)));
        assert.deepStrictEqual(back.spec!.template, spotTemplateOf(original, labels));
        assert.deepStrictEqual(back.spec!.strategy, original.spec!.strategy);
        assert.deepStrictEqual(userAnnotations(back), userAnnotations(original));
        assert.equal(back.metadata!.annotations![A.state], 'spot');
        assert.equal(back.metadata!.annotations![A.savedSpec], undefined);
      }),
      { numRuns: 300 },
    );
  });

  it('a rollback straight after migration gives back the original exactly', () => {
    fc.assert(
      fc.property(deployment, config, (original, labels) => {
        const migrated = serverApply(original, ops(planMigration(original, migrationInput(labels))));
        const rolling = serverApply(migrated, ok(planRestoreToSpot(migrated, { purpose: 'rollback', now: LATER, signer: TEST_SIGNER })));
        const back = serverApply(rolling, ok(planFinish(rolling, { kind: 'rolled-back' }, TEST_SIGNER)));
        assert.deepStrictEqual(back.spec!.template, spotTemplateOf(original, labels));
        assert.deepStrictEqual(back.spec!.strategy, original.spec!.strategy);
        assert.deepStrictEqual(userAnnotations(back), userAnnotations(original));
      }),
      { numRuns: 200 },
    );
  });

  it('a failed recovery returns to the same Fargate template, and a later recovery still restores exactly', () => {
    fc.assert(
      fc.property(deployment, config, (original, labels) => {
        const migrated = serverApply(original, ops(planMigration(original, migrationInput(labels))));
        const settled = serverApply(migrated, ok(planFinish(migrated, { kind: 'migrated' }, TEST_SIGNER)));
        const restoring = serverApply(settled, ok(planRestoreToSpot(settled, { purpose: 'recovery', now: LATER, signer: TEST_SIGNER })));
        const failed = serverApply(
          restoring,
          ok(planFinish(restoring, { kind: 'recovery-failed', now: LATER, recoveryReason: 'rollout-timeout', ...labels }, TEST_SIGNER)),
        );
        assert.deepStrictEqual(failed.spec!.template, migrated.spec!.template);
        const settledAgain = serverApply(failed, ok(planFinish(failed, { kind: 'migrated' }, TEST_SIGNER)));
        const restoringAgain = serverApply(settledAgain, ok(planRestoreToSpot(settledAgain, { purpose: 'recovery', now: LATER, signer: TEST_SIGNER })));
        const back = serverApply(
          restoringAgain,
          ok(planFinish(restoringAgain, { kind: 'recovered', now: LATER, recoveryReason: 'successful-recovery' }, TEST_SIGNER)),
        );
        assert.deepStrictEqual(back.spec!.template, spotTemplateOf(original, labels));
        assert.deepStrictEqual(back.spec!.strategy, original.spec!.strategy);
      }),
      { numRuns: 150 },
    );
  });

  it('every remove op targets a field that exists', () => {
    fc.assert(
      fc.property(deployment, config, (original, labels) => {
        // serverApply throws on a remove of a missing member; check the migration ops one by one too.
        for (const op of ops(planMigration(original, migrationInput(labels)))) {
          if (op.op === 'remove') serverApply(original, [op]);
        }
      }),
      { numRuns: 200 },
    );
  });
});
