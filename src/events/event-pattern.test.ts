// The EventBridge rule's pattern (deploy/aws/event-pattern.json) forwards exactly what the parsers
// know, and of the instance state changes only those the controller acts on.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ACTED_ON_STATES, INSTANCE_STATES, isActedOnState } from './kinds/state-change.js';

interface PatternBranch {
  source: string[];
  'detail-type': string[];
  detail?: { state?: string[] };
}

const pattern = JSON.parse(readFileSync(new URL('../../deploy/aws/event-pattern.json', import.meta.url), 'utf8')) as { $or: PatternBranch[] };

describe('deploy/aws/event-pattern.json', () => {
  it('forwards instance state changes only for the states the controller acts on', () => {
    const stateBranches = pattern.$or.filter((b) => b['detail-type'].includes('EC2 Instance State-change Notification'));
    assert.equal(stateBranches.length, 1, 'one branch for state changes');
    const [branch] = stateBranches;
    assert.deepEqual(branch!['detail-type'], ['EC2 Instance State-change Notification'], 'the state filter applies to state changes alone');
    assert.deepEqual(branch!.source, ['aws.ec2']);
    assert.deepEqual([...(branch!.detail?.state ?? [])].sort(), [...ACTED_ON_STATES].sort());
    for (const state of ['pending', 'running'] as const) assert.equal(isActedOnState(state), false, state);
    assert.deepEqual(INSTANCE_STATES.filter(isActedOnState), [...ACTED_ON_STATES], 'every state the controller acts on is one EC2 sends');
  });

  it('still forwards every other kind the controller parses, unfiltered', () => {
    const unfiltered = pattern.$or.filter((b) => b.detail === undefined).flatMap((b) => b.source.flatMap((s) => b['detail-type'].map((d) => `${s} ${d}`)));
    assert.deepEqual(unfiltered.sort(), [
      'aws.ec2 EC2 Capacity Reservation Instance Interruption Warning',
      'aws.ec2 EC2 Instance Rebalance Recommendation',
      'aws.ec2 EC2 Spot Instance Interruption Warning',
      'aws.health AWS Health Event',
    ]);
  });
});
