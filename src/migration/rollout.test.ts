import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { V1Deployment, V1DeploymentStatus } from '@kubernetes/client-node';

import { evaluateRollout } from './rollout.js';

const startedAt = new Date('2025-03-14T09:00:00Z');
const clock = (seconds: number) => ({ startedAt, now: new Date(startedAt.getTime() + seconds * 1000), timeoutMs: 300_000 });

function deployment(status: V1DeploymentStatus, replicas = 3, generation = 8): V1Deployment {
  return { metadata: { name: 'api', namespace: 'prod', generation }, spec: { replicas, selector: {}, template: {} }, status };
}

const done: V1DeploymentStatus = {
  observedGeneration: 8,
  replicas: 3,
  updatedReplicas: 3,
  readyReplicas: 3,
  availableReplicas: 3,
};

describe('evaluateRollout', () => {
  it('is complete when every replica is updated and available and no old pod is left', () => {
    assert.deepEqual(evaluateRollout(deployment(done), clock(30)), {
      status: 'complete',
      detail: '3/3 updated and available',
    });
  });

  it('is complete even past the timeout if the rollout has finished', () => {
    assert.equal(evaluateRollout(deployment(done), clock(3600)).status, 'complete');
  });

  it('says what is missing while progressing', () => {
    const r = evaluateRollout(deployment({ observedGeneration: 8, replicas: 4, updatedReplicas: 2, availableReplicas: 1, unavailableReplicas: 3 }), clock(10));
    assert.equal(r.status, 'progressing');
    assert.equal(r.detail, '2/3 updated, 1/3 available, 4 total replicas, 3 unavailable');
  });

  it('waits for the controller to observe the new generation', () => {
    const r = evaluateRollout(deployment({ ...done, observedGeneration: 7 }), clock(1));
    assert.equal(r.status, 'progressing');
    assert.match(r.detail, /^generation 8 not yet observed \(observed 7\)/);
  });

  it('is not complete while old replicas remain (surge)', () => {
    const r = evaluateRollout(deployment({ ...done, replicas: 6 }), clock(5));
    assert.equal(r.status, 'progressing');
    assert.match(r.detail, /6 total replicas/);
  });

  it('is not complete while some replica is unavailable', () => {
    assert.equal(evaluateRollout(deployment({ ...done, unavailableReplicas: 1 }), clock(5)).status, 'progressing');
  });

  it('fails on ProgressDeadlineExceeded', () => {
    const r = evaluateRollout(
      deployment({
        observedGeneration: 8,
        replicas: 6,
        updatedReplicas: 3,
        availableReplicas: 3,
        unavailableReplicas: 3,
        conditions: [
          { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
          {
            type: 'Progressing',
            status: 'False',
            reason: 'ProgressDeadlineExceeded',
            message: 'ReplicaSet "api-7f9c" has timed out progressing.',
          },
        ],
      }),
      clock(60),
    );
    assert.equal(r.status, 'failed');
    assert.match(r.detail, /^progress deadline exceeded: ReplicaSet "api-7f9c" has timed out progressing\. \(3\/3 updated/);
  });

  it('ignores a ProgressDeadlineExceeded left from an older generation', () => {
    const r = evaluateRollout(
      deployment({
        observedGeneration: 7,
        conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
      }),
      clock(5),
    );
    assert.equal(r.status, 'progressing');
  });

  it('fails after the timeout', () => {
    const r = evaluateRollout(deployment({ observedGeneration: 8, replicas: 3, updatedReplicas: 3, availableReplicas: 1 }), clock(301));
    assert.equal(r.status, 'failed');
    assert.equal(r.detail, 'rollout not complete after 301s (timeout 300s): 3/3 updated, 1/3 available');
  });

  it('defaults spec.replicas to 1 and a missing status to nothing done', () => {
    const d: V1Deployment = { metadata: { generation: 1 }, spec: { selector: {}, template: {} } };
    const r = evaluateRollout(d, clock(1));
    assert.equal(r.status, 'progressing');
    assert.equal(r.detail, 'generation 1 not yet observed (observed 0), 0/1 updated, 0/1 available, 0 total replicas');
  });

  it('mentions a paused deployment', () => {
    const d = deployment({ observedGeneration: 8, replicas: 3, updatedReplicas: 0, availableReplicas: 3 });
    d.spec!.paused = true;
    assert.match(evaluateRollout(d, clock(1)).detail, /\(deployment is paused\)$/);
  });

  it('is complete for a Deployment scaled to zero', () => {
    assert.equal(evaluateRollout(deployment({ observedGeneration: 8 }, 0), clock(1)).status, 'complete');
  });
});
