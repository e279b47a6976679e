import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Node, V1Taint } from '@kubernetes/client-node';
import { fits, misfit } from './node-fit.js';

function node(labels: Record<string, string>, taints?: V1Taint[]): V1Node {
  return { metadata: { name: 'n1', labels }, spec: { taints } };
}

const SPOT = {
  'compute-type': 'spot',
  'eks.amazonaws.com/nodegroup': 'pool-a',
  'eks.amazonaws.com/capacityType': 'SPOT',
  'kubernetes.io/arch': 'amd64',
  cores: '8',
};

describe('node fit for restored constraints', () => {
  it('nothing to satisfy: any untainted node fits', () => {
    assert.equal(fits(node(SPOT), {}), true);
  });

  it('nodeSelector: every entry must match', () => {
    assert.equal(fits(node(SPOT), { nodeSelector: { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': 'pool-a' } }), true);
    assert.match(
      misfit(node(SPOT), { nodeSelector: { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': 'pool-b' } }) ?? '',
      /nodegroup=pool-b not matched/,
    );
  });

  it('required node affinity: terms ORed, expressions ANDed, every operator', () => {
    const req = (...terms: object[]) => ({ affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } } });
    const e = (key: string, operator: string, values?: string[]) => ({ key, operator, values });
    const cases: [object, boolean][] = [
      [req({ matchExpressions: [e('eks.amazonaws.com/capacityType', 'In', ['SPOT'])] }), true],
      [req({ matchExpressions: [e('eks.amazonaws.com/capacityType', 'In', ['ON_DEMAND'])] }), false],
      [req({ matchExpressions: [e('eks.amazonaws.com/capacityType', 'NotIn', ['ON_DEMAND'])] }), true],
      [req({ matchExpressions: [e('absent', 'NotIn', ['x'])] }), true],
      [req({ matchExpressions: [e('compute-type', 'Exists')] }), true],
      [req({ matchExpressions: [e('compute-type', 'DoesNotExist')] }), false],
      [req({ matchExpressions: [e('cores', 'Gt', ['4'])] }), true],
      [req({ matchExpressions: [e('cores', 'Lt', ['4'])] }), false],
      [req({ matchExpressions: [e('compute-type', 'In', ['spot']), e('kubernetes.io/arch', 'In', ['arm64'])] }), false],
      [req({ matchExpressions: [e('kubernetes.io/arch', 'In', ['arm64'])] }, { matchExpressions: [e('compute-type', 'In', ['spot'])] }), true],
      [req({ matchFields: [e('metadata.name', 'In', ['n1'])] }), true],
      [req({ matchFields: [e('metadata.name', 'In', ['n2'])] }), false],
      [req({}), false], // an empty term selects nothing
      // Preferred terms never exclude a node.
      [
        {
          affinity: {
            nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, preference: { matchExpressions: [e('x', 'In', ['y'])] } }] },
          },
        },
        true,
      ],
    ];
    for (const [constraints, expected] of cases) assert.equal(fits(node(SPOT), constraints), expected, JSON.stringify(constraints));
  });

  it('taints: NoSchedule and NoExecute need a toleration, PreferNoSchedule does not', () => {
    const spotTaint: V1Taint = { key: 'spot', value: 'true', effect: 'NoSchedule' };
    const tainted = node(SPOT, [spotTaint, { key: 'soft', effect: 'PreferNoSchedule' }]);
    assert.match(misfit(tainted, {}) ?? '', /taint spot=true:NoSchedule not tolerated/);
    assert.equal(fits(tainted, { tolerations: [{ key: 'spot', operator: 'Equal', value: 'true', effect: 'NoSchedule' }] }), true);
    assert.equal(fits(tainted, { tolerations: [{ key: 'spot', value: 'true' }] }), true, 'Equal by default, any effect');
    assert.equal(fits(tainted, { tolerations: [{ key: 'spot', operator: 'Exists' }] }), true);
    assert.equal(fits(tainted, { tolerations: [{ operator: 'Exists' }] }), true, 'tolerates everything');
    assert.equal(fits(tainted, { tolerations: [{ key: 'spot', value: 'false' }] }), false);
    assert.equal(fits(tainted, { tolerations: [{ key: 'spot', operator: 'Exists', effect: 'NoExecute' }] }), false);
    const noExecute = node(SPOT, [{ key: 'eks.amazonaws.com/capacityType', value: 'SPOT', effect: 'NoExecute' }]);
    assert.equal(fits(noExecute, {}), false);
    assert.equal(fits(noExecute, { tolerations: [{ key: 'eks.amazonaws.com/capacityType', operator: 'Equal', value: 'SPOT' }] }), true);
  });
});
