import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiCallsBetween, readApiCalls } from './api-calls.js';

const before = readApiCalls(`# HELP spot_orchestrator_kube_api_requests_total calls
spot_orchestrator_kube_api_requests_total{verb="patch",resource="leases",code="200"} 4
spot_orchestrator_kube_api_request_duration_seconds_sum{verb="patch",resource="leases"} 0.04
spot_orchestrator_kube_api_request_duration_seconds_count{verb="patch",resource="leases"} 4
spot_orchestrator_kube_api_request_duration_seconds_bucket{verb="patch",resource="leases",le="0.1"} 4
`);
const after = readApiCalls(`spot_orchestrator_kube_api_requests_total{verb="patch",resource="leases",code="200"} 5
spot_orchestrator_kube_api_requests_total{verb="patch",resource="deployments",code="200"} 800
spot_orchestrator_kube_api_requests_total{verb="patch",resource="deployments",code="422"} 3
spot_orchestrator_kube_api_requests_total{verb="get",resource="deployments",code="200"} 3
spot_orchestrator_kube_api_request_duration_seconds_sum{verb="patch",resource="leases"} 0.06
spot_orchestrator_kube_api_request_duration_seconds_count{verb="patch",resource="leases"} 5
spot_orchestrator_kube_api_request_duration_seconds_sum{verb="patch",resource="deployments"} 160.6
spot_orchestrator_kube_api_request_duration_seconds_count{verb="patch",resource="deployments"} 803
`);

test('the calls between two readings, by kind and outcome, most first, with mean latency', () => {
  const d = apiCallsBetween(before, after);
  assert.deepEqual(d.calls, [
    { verb: 'patch', resource: 'deployments', code: '200', count: 800 },
    { verb: 'patch', resource: 'deployments', code: '422', count: 3 },
    { verb: 'get', resource: 'deployments', code: '200', count: 3 },
    { verb: 'patch', resource: 'leases', code: '200', count: 1 },
  ]);
  assert.deepEqual(d.latency, [
    { verb: 'patch', resource: 'deployments', count: 803, meanMs: 200 },
    { verb: 'patch', resource: 'leases', count: 1, meanMs: 20 },
  ]);
});

test('nothing between two equal readings', () => {
  assert.deepEqual(apiCallsBetween(after, after), { calls: [], latency: [] });
});
