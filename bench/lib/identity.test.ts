import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { BENCH_IDENTITY_NAME, BENCH_IDENTITY_NAMESPACE, benchPriority, GENERATED_MANIFESTS, shippedPriority } from './identity.js';

describe('the controller identity the benchmark installs', () => {
  it('is the ServiceAccount, FlowSchema and priority level of the generated manifests', () => {
    const { serviceAccount, flowSchema, priorityLevel } = shippedPriority();
    assert.equal(flowSchema.spec?.priorityLevelConfiguration.name, priorityLevel.metadata?.name);
    const subject = flowSchema.spec?.rules?.[0]?.subjects?.[0]?.serviceAccount;
    assert.equal(subject?.name, serviceAccount.metadata?.name);
    assert.equal(subject?.namespace, serviceAccount.metadata?.namespace);
    assert.equal(priorityLevel.spec?.type, 'Limited');
  });

  it("the bench's copy keeps the shipped rules and priority level under names of its own", () => {
    const shipped = shippedPriority();
    const copy = benchPriority(shipped);
    assert.equal(copy.serviceAccount.metadata?.name, BENCH_IDENTITY_NAME);
    assert.equal(copy.serviceAccount.metadata?.namespace, BENCH_IDENTITY_NAMESPACE);
    assert.equal(copy.flowSchema.metadata?.name, BENCH_IDENTITY_NAME);
    assert.equal(copy.flowSchema.spec?.priorityLevelConfiguration.name, copy.priorityLevel.metadata?.name);
    assert.equal(copy.flowSchema.spec?.matchingPrecedence, shipped.flowSchema.spec?.matchingPrecedence);
    assert.deepEqual(copy.flowSchema.spec?.rules?.[0]?.resourceRules, shipped.flowSchema.spec?.rules?.[0]?.resourceRules);
    assert.deepEqual(copy.flowSchema.spec?.rules?.[0]?.subjects, [
      { kind: 'ServiceAccount', serviceAccount: { name: BENCH_IDENTITY_NAME, namespace: BENCH_IDENTITY_NAMESPACE } },
    ]);
    assert.deepEqual(copy.priorityLevel.spec, shipped.priorityLevel.spec);
    assert.notEqual(copy.flowSchema.metadata?.name, shipped.flowSchema.metadata?.name, 'a release of the chart on the same ground finds its names free');
  });

  it('refuses manifests whose FlowSchema names another ServiceAccount', () => {
    const text = readFileSync(GENERATED_MANIFESTS, 'utf8').replace(/(serviceAccount:\n\s+name: )spot-fargate-orchestrator/, '$1someone-else');
    assert.throws(() => shippedPriority(text), /the FlowSchema does not name the ServiceAccount it ships with/);
  });

  it('refuses manifests without a priority level', () => {
    const text = readFileSync(GENERATED_MANIFESTS, 'utf8').replace('kind: PriorityLevelConfiguration', 'kind: Unrelated');
    assert.throws(() => shippedPriority(text), /expected one PriorityLevelConfiguration, found 0/);
  });
});
