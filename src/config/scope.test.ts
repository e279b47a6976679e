import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment } from '@kubernetes/client-node';
import { loadConfig, resolveWithProvenance } from './load.js';
import { describeScope, isManaged, leaseNamespace, namespaceInScope, namespaceScope, scopeKey } from './scope.js';

const QUEUE = 'http://localhost:9324/000000000000/q';
const config = (env: Record<string, string>) => loadConfig({ env: { SQS_QUEUE_URL: QUEUE, MODE: 'namespace', ...env } });
const problemsOf = (env: Record<string, string>, tomlText?: string) =>
  resolveWithProvenance({ env: { SQS_QUEUE_URL: QUEUE, ...env }, tomlText }).problems.map((p) => p.message);
const deployment = (namespace: string, name = 'api', optIn = true): V1Deployment => ({
  metadata: { namespace, name, annotations: optIn ? { 'spot-orchestrator/enabled': 'true' } : {} },
});

describe('namespace scope', () => {
  it('is kubernetes.namespace alone unless namespaces or a selector say otherwise', () => {
    assert.deepEqual(namespaceScope(config({}).kubernetes), { kind: 'listed', namespaces: ['default'] });
    assert.deepEqual(namespaceScope(config({ NAMESPACE: 'shop' }).kubernetes), { kind: 'listed', namespaces: ['shop'] });
    assert.deepEqual(namespaceScope(config({ NAMESPACES: 'shop,payments' }).kubernetes), { kind: 'listed', namespaces: ['shop', 'payments'] });
    assert.deepEqual(namespaceScope(config({ NAMESPACES: '*' }).kubernetes), { kind: 'cluster' });
    const selected = namespaceScope(config({ NAMESPACE_SELECTOR: 'team=payments' }).kubernetes);
    assert.equal(selected.kind === 'cluster' && selected.selector?.text, 'team=payments');
    assert.deepEqual(namespaceScope(config({ NAMESPACES: '*', NAMESPACE_SELECTOR: 'team=payments' }).kubernetes), selected);
  });

  it('reads namespaces from config.toml as an array or a string', () => {
    const fromArray = loadConfig({ env: { SQS_QUEUE_URL: QUEUE }, tomlText: '[kubernetes]\nmode = "namespace"\nnamespaces = ["shop", "payments"]\n' });
    assert.deepEqual(fromArray.kubernetes.namespaces, ['shop', 'payments']);
    const all = loadConfig({ env: { SQS_QUEUE_URL: QUEUE }, tomlText: '[kubernetes]\nmode = "namespace"\nnamespaces = "*"\n' });
    assert.equal(all.kubernetes.namespaces, '*');
  });

  it('decides which namespaces are in, with a selector by their labels', () => {
    const selector = namespaceScope(config({ NAMESPACE_SELECTOR: 'team=payments' }).kubernetes);
    const labels: Record<string, Record<string, string>> = { pay: { team: 'payments' }, shop: { team: 'shop' } };
    assert.equal(
      namespaceInScope(selector, 'pay', (ns) => labels[ns]),
      true,
    );
    assert.equal(
      namespaceInScope(selector, 'shop', (ns) => labels[ns]),
      false,
    );
    assert.equal(
      namespaceInScope(selector, 'gone', (ns) => labels[ns]),
      false,
      'a namespace that does not exist is not in',
    );
    assert.equal(
      namespaceInScope({ kind: 'cluster' }, 'anything', () => undefined),
      true,
    );
    assert.equal(
      namespaceInScope({ kind: 'listed', namespaces: ['a', 'b'] }, 'b', () => undefined),
      true,
    );
    assert.equal(
      namespaceInScope({ kind: 'listed', namespaces: ['a', 'b'] }, 'c', () => undefined),
      false,
    );
  });

  it('manages an opted-in Deployment of a namespace in scope, and only that', () => {
    const c = config({ NAMESPACES: 'shop,payments' });
    const inScope = (ns: string) => namespaceInScope(namespaceScope(c.kubernetes), ns, () => undefined);
    assert.equal(isManaged(c, deployment('payments'), inScope), true);
    assert.equal(isManaged(c, deployment('payments', 'api', false), inScope), false);
    assert.equal(isManaged(c, deployment('other'), inScope), false);
    const single = loadConfig({ env: { SQS_QUEUE_URL: QUEUE, NAMESPACE: 'shop', DEPLOYMENT_NAME: 'api' } });
    assert.equal(
      isManaged(single, deployment('shop', 'api', false), () => true),
      true,
      'single mode needs no annotation',
    );
    assert.equal(
      isManaged(single, deployment('shop', 'web'), () => true),
      false,
    );
  });

  it('has a stable key per install for shared node marks, the one-namespace key unchanged', () => {
    assert.equal(scopeKey(config({ NAMESPACE: 'prod' }).kubernetes), 'prod');
    assert.equal(scopeKey(loadConfig({ env: { SQS_QUEUE_URL: QUEUE, NAMESPACE: 'prod', DEPLOYMENT_NAME: 'api' } }).kubernetes), 'prod/api');
    assert.equal(scopeKey(config({ NAMESPACES: 'shop,payments' }).kubernetes), scopeKey(config({ NAMESPACES: 'payments,shop' }).kubernetes));
    assert.equal(scopeKey(config({ NAMESPACES: '*' }).kubernetes), '*');
    assert.equal(scopeKey(config({ NAMESPACE_SELECTOR: 'team = payments' }).kubernetes), '*[team=payments]');
  });

  it('is described for people', () => {
    assert.equal(describeScope({ kind: 'listed', namespaces: ['shop'] }), 'namespace shop');
    assert.equal(describeScope({ kind: 'listed', namespaces: ['shop', 'pay'] }), 'namespaces shop, pay');
    assert.equal(describeScope({ kind: 'cluster' }), 'every namespace');
    assert.equal(describeScope(namespaceScope(config({ NAMESPACE_SELECTOR: 'team=x' }).kubernetes)), 'namespaces matching team=x');
  });
});

describe('namespace scope settings', () => {
  it('refuse bad names and selectors with the reason', () => {
    assert.match(
      problemsOf({ MODE: 'namespace', NAMESPACES: 'shop,Pay_ments' }).join('\n'),
      /kubernetes\.namespaces from env NAMESPACES: got "shop,Pay_ments" \("Pay_ments" is not a namespace name/,
    );
    assert.match(problemsOf({ MODE: 'namespace', NAMESPACES: '*,shop' }).join('\n'), /"\*" already means every namespace/);
    assert.match(problemsOf({ MODE: 'namespace', NAMESPACES: ' , ' }).join('\n'), /no namespace named/);
    assert.match(
      problemsOf({ MODE: 'namespace', NAMESPACE_SELECTOR: 'team in (a' }).join('\n'),
      /kubernetes\.namespace_selector from env NAMESPACE_SELECTOR: .*unbalanced/,
    );
  });

  it('refuse combinations whose meaning a reader would have to guess', () => {
    assert.match(
      problemsOf({ MODE: 'namespace', NAMESPACE: 'shop', NAMESPACES: 'a,b' }).join('\n'),
      /kubernetes\.namespaces .*unset while kubernetes\.namespace is set/,
    );
    assert.match(
      problemsOf({ MODE: 'namespace', NAMESPACES: 'a,b', NAMESPACE_SELECTOR: 'team=x' }).join('\n'),
      /namespace_selector .*unset while kubernetes\.namespaces lists names/,
    );
    assert.match(
      problemsOf({ MODE: 'namespace', NAMESPACE: 'shop', NAMESPACE_SELECTOR: 'team=x' }).join('\n'),
      /namespace_selector .*unset while kubernetes\.namespace is set/,
    );
    assert.match(problemsOf({ DEPLOYMENT_NAME: 'api', NAMESPACES: 'a,b' }).join('\n'), /kubernetes\.namespaces .*kubernetes\.mode is "single"/);
    assert.deepEqual(problemsOf({ MODE: 'namespace', NAMESPACES: '*', NAMESPACE_SELECTOR: 'team=x' }), []);
  });

  it('need the Lease namespace named once more than one namespace is managed', () => {
    assert.match(
      problemsOf({ MODE: 'namespace', NAMESPACES: 'a,b', LEADER_ELECT: 'true' }).join('\n'),
      /controller\.lease_namespace .*more than one namespace is managed.*POD_NAMESPACE/,
    );
    assert.match(problemsOf({ MODE: 'namespace', NAMESPACES: '*', LEADER_ELECT: 'true' }).join('\n'), /controller\.lease_namespace/);
    assert.deepEqual(problemsOf({ MODE: 'namespace', NAMESPACES: '*', LEADER_ELECT: 'true', POD_NAMESPACE: 'ops' }), []);
    assert.deepEqual(problemsOf({ MODE: 'namespace', NAMESPACES: 'shop', LEADER_ELECT: 'true' }), [], 'one listed namespace holds the Lease');
    assert.equal(leaseNamespace(config({ NAMESPACES: 'shop', LEADER_ELECT: 'true' })), 'shop');
    assert.equal(leaseNamespace(config({ NAMESPACE: 'prod', LEADER_ELECT: 'true' })), 'prod');
    assert.equal(leaseNamespace(config({ NAMESPACES: '*', LEADER_ELECT: 'true', POD_NAMESPACE: 'ops' })), 'ops');
  });
});
