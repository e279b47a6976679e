// The preflight's judgements: the access the controller needs for each scope, the Fargate profile
// match (namespace globs, the one label every moved pod carries, ACTIVE only), how results read, and
// the runner's handling of probes that skip, fail or throw.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../config/load.js';
import { type AccessNeed, describeNeed, formatResult, judgeAccess, judgeFargateProfiles, requiredAccess } from './checks.js';
import { classifyAwsError, runPreflight } from './preflight.js';

const BASE = { SQS_QUEUE_URL: 'http://localhost:9324/000000000000/q', MODE: 'namespace' };
const compute = { compute_label_key: 'compute-type', fargate_label: 'fargate' };
const verbs = (needs: AccessNeed[], ns?: string) =>
  needs
    .filter((n) => n.namespace === ns)
    .map(describeNeed)
    .sort();

describe('the access the controller needs', () => {
  it('per listed namespace, plus nodes cluster-wide, node Events and the Lease', () => {
    const config = loadConfig({ env: { ...BASE, NAMESPACES: 'shop,payments', LEADER_ELECT: 'true', LEASE_NAMESPACE: 'ops' } });
    const needs = requiredAccess(config, 'ops');
    assert.deepEqual(verbs(needs, undefined), ['get nodes', 'list nodes', 'patch nodes', 'watch nodes']);
    assert.deepEqual(verbs(needs, 'shop'), [
      'create events',
      'get deployments.apps',
      'list deployments.apps',
      'list endpointslices.discovery.k8s.io',
      'list pods',
      'list replicasets.apps',
      'list services',
      'patch deployments.apps',
      'patch events',
      'watch deployments.apps',
      'watch endpointslices.discovery.k8s.io',
      'watch pods',
      'watch replicasets.apps',
      'watch services',
    ]);
    assert.deepEqual(verbs(needs, 'payments'), verbs(needs, 'shop'));
    assert.deepEqual(verbs(needs, 'default'), ['create events', 'patch events']);
    assert.deepEqual(verbs(needs, 'ops'), [
      'create leases.coordination.k8s.io',
      'create secrets',
      'get leases.coordination.k8s.io/spot-fargate-orchestrator',
      'get secrets/spot-fargate-orchestrator-record-key',
      'patch leases.coordination.k8s.io/spot-fargate-orchestrator',
    ]);
  });

  it('cluster-wide for "*" and a selector (which also lists and watches Namespaces); by name in single mode', () => {
    const all = requiredAccess(loadConfig({ env: { ...BASE, NAMESPACES: '*' } }), 'x');
    assert.ok(
      all.filter((n) => n.resource !== 'secrets').every((n) => n.namespace === undefined),
      'all but the key in the controller namespace',
    );
    assert.ok(!all.some((n) => n.resource === 'namespaces'));
    const selected = requiredAccess(loadConfig({ env: { ...BASE, NAMESPACE_SELECTOR: 'team=a' } }), 'x');
    assert.deepEqual(verbs(selected.filter((n) => n.resource === 'namespaces')), ['list namespaces', 'watch namespaces']);
    const single = requiredAccess(loadConfig({ env: { ...BASE, MODE: 'single', NAMESPACE: 'shop', DEPLOYMENT_NAME: 'web' } }), 'shop');
    assert.deepEqual(
      verbs(
        single.filter((n) => n.resource === 'deployments'),
        'shop',
      ),
      ['get deployments.apps/web', 'list deployments.apps', 'patch deployments.apps/web', 'watch deployments.apps'],
    );
  });

  it('one result per place, a failure naming each verb refused', () => {
    const need = (verb: string, namespace?: string): AccessNeed => ({ group: 'apps', resource: 'deployments', verb, namespace });
    const results = judgeAccess([
      { need: need('get', 'shop'), allowed: true },
      { need: need('patch', 'shop'), allowed: false, reason: 'no rule' },
      { need: { group: '', resource: 'nodes', verb: 'patch' }, allowed: true },
    ]);
    assert.deepEqual(
      results.map((r) => [r.subject, r.status, r.detail]),
      [
        ['namespace shop', 'failed', 'not allowed: patch deployments.apps (no rule)'],
        ['cluster-wide', 'ok', 'allowed: patch nodes'],
      ],
    );
  });
});

describe('the Fargate profile check', () => {
  it('passes where an ACTIVE profile selects compute-type=fargate (or every pod) in the namespace, globs included', () => {
    const [shop, pay, other] = judgeFargateProfiles(
      ['shop', 'pay-eu', 'other'],
      [
        { name: 'spot-fallback', status: 'ACTIVE', selectors: [{ namespace: 'shop', labels: { 'compute-type': 'fargate' } }] },
        { name: 'payments', status: 'ACTIVE', selectors: [{ namespace: 'pay-*' }] },
      ],
      compute,
      'prod',
    );
    assert.equal(shop!.status, 'ok');
    assert.match(shop!.detail, /profile spot-fallback \(ACTIVE\) of cluster prod selects pods labelled compute-type=fargate/);
    assert.equal(pay!.status, 'ok');
    assert.match(pay!.detail, /every pod of pay-eu/);
    assert.equal(other!.status, 'failed');
    assert.match(other!.detail, /no ACTIVE Fargate profile of cluster prod selects pods labelled compute-type=fargate in other/);
  });

  it('fails naming the near misses: other labels required, or a profile not yet ACTIVE', () => {
    const [r] = judgeFargateProfiles(
      ['shop'],
      [
        { name: 'by-app', status: 'ACTIVE', selectors: [{ namespace: 'shop', labels: { app: 'web', 'compute-type': 'fargate' } }] },
        { name: 'new', status: 'CREATING', selectors: [{ namespace: 's?op', labels: { 'compute-type': 'fargate' } }] },
      ],
      compute,
      'prod',
    );
    assert.equal(r!.status, 'failed');
    assert.match(r!.detail, /profile by-app selects shop only with labels app=web, compute-type=fargate/);
    assert.match(r!.detail, /profile new would, but is CREATING, not ACTIVE/);
    assert.match(formatResult(r!), /^FAILED {2}fargate profile: namespace shop: no ACTIVE/);
  });
});

describe('AWS errors in the preflight', () => {
  it('credentials, network and permission are skips with why; a wrong name is a failure', () => {
    assert.ok('skip' in classifyAwsError(Object.assign(new Error('Could not load credentials'), { name: 'CredentialsProviderError' }), 'x', 'a'));
    const refused = classifyAwsError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'EKS cluster c', 'a');
    assert.ok('skip' in refused && /unreachable/.test(refused.skip));
    const denied = classifyAwsError(Object.assign(new Error('nope'), { name: 'AccessDeniedException' }), 'EKS cluster c', 'eks:ListFargateProfiles');
    assert.ok('skip' in denied && /needs eks:ListFargateProfiles/.test(denied.skip));
    const missing = classifyAwsError(Object.assign(new Error('No cluster found'), { name: 'ResourceNotFoundException' }), 'EKS cluster c in r', 'a');
    assert.ok('fail' in missing && /EKS cluster c in r does not exist/.test(missing.fail));
  });
});

describe('the preflight runner', () => {
  const config = loadConfig({ env: { ...BASE, NAMESPACE: 'shop' } });
  it('reports every check; a probe that throws is a failure quoting it, and a skip stays a skip', async () => {
    const seen: string[] = [];
    const results = await runPreflight(
      config,
      'shop',
      {
        managedNamespaces: async () => ({ namespaces: ['shop'] }),
        fargateProfiles: async () => ({ skip: 'aws.cluster_name (CLUSTER_NAME) is not set' }),
        queue: async () => {
          throw new Error('socket hang up');
        },
        access: async (need) => ({ allowed: !(need.resource === 'events' && need.verb === 'patch'), reason: 'RBAC: no rule' }),
      },
      (r) => seen.push(formatResult(r)),
    );
    assert.equal(seen.length, results.length);
    const text = seen.join('\n');
    assert.match(text, /^skipped fargate profile: cluster: aws\.cluster_name \(CLUSTER_NAME\) is not set$/m);
    assert.match(text, /^FAILED {2}queue: queue: the check itself failed: socket hang up$/m);
    assert.match(text, /^FAILED {2}rbac: namespace shop: not allowed: patch events \(RBAC: no rule\)$/m);
    assert.match(text, /^ok {6}rbac: cluster-wide: allowed: get nodes/m);
  });
});
