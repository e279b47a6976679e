import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { GENERATED_MANIFESTS, shippedPriority } from './identity.js';

describe('the controller identity the benchmark installs', () => {
  it('is the ServiceAccount, FlowSchema and priority level of the generated manifests', () => {
    const { serviceAccount, flowSchema, priorityLevel } = shippedPriority();
    assert.equal(flowSchema.spec?.priorityLevelConfiguration.name, priorityLevel.metadata?.name);
    const subject = flowSchema.spec?.rules?.[0]?.subjects?.[0]?.serviceAccount;
    assert.equal(subject?.name, serviceAccount.metadata?.name);
    assert.equal(subject?.namespace, serviceAccount.metadata?.namespace);
    assert.equal(priorityLevel.spec?.type, 'Limited');
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
