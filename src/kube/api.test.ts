import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeCall } from './api.js';

describe('describeCall', () => {
  const S = 'https://10.0.0.1:6443';
  it("names calls in RBAC's words: get or list, create, update, patch, delete, deletecollection", () => {
    const cases: [string, string, string][] = [
      ['GET', '/apis/apps/v1/namespaces/prod/deployments/api', 'get deployments'],
      ['GET', '/apis/apps/v1/namespaces/prod/deployments?limit=500', 'list deployments'],
      ['GET', '/apis/apps/v1/deployments', 'list deployments'],
      ['PATCH', '/apis/apps/v1/namespaces/prod/deployments/api', 'patch deployments'],
      ['PATCH', '/apis/apps/v1/namespaces/prod/deployments/api/scale', 'patch deployments/scale'],
      ['POST', '/api/v1/namespaces/default/events', 'create events'],
      ['PUT', '/apis/coordination.k8s.io/v1/namespaces/ops/leases/spot-orchestrator', 'update leases'],
      ['PATCH', '/api/v1/nodes/ip-10-0-1-2', 'patch nodes'],
      ['GET', '/api/v1/nodes', 'list nodes'],
      ['GET', '/api/v1/namespaces', 'list namespaces'],
      ['GET', '/api/v1/namespaces/ops', 'get namespaces'],
      ['GET', '/api/v1/namespaces/ops/secrets/record-key', 'get secrets'],
      ['DELETE', '/api/v1/namespaces/ops/pods', 'deletecollection pods'],
      ['DELETE', '/api/v1/namespaces/ops/pods/p-1', 'delete pods'],
      ['POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', 'create selfsubjectaccessreviews'],
      ['GET', '/version', 'get other'],
      ['GET', '/apis', 'get other'],
    ];
    for (const [method, path, want] of cases) {
      const { verb, resource } = describeCall(method, `${S}${path}`);
      assert.equal(`${verb} ${resource}`, want, `${method} ${path}`);
    }
  });
});
