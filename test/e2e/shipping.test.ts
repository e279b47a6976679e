// What we ship, proven against real servers: the Helm chart (lint, render, server-side dry-run),
// the plain manifests (equal to the chart's rendering), the RBAC (the real controller runs under the
// chart's ServiceAccount token with RBAC enforced; a missing verb fails), the image's layout and
// signal handling, the AWS setup (script and CloudFormation, on the local SQS/EventBridge/IAM
// server: an EC2 event reaches the queue through the rule they create) and the examples.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DeleteMessageBatchCommand, GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DescribeRuleCommand, EventBridgeClient, ListTargetsByRuleCommand } from '@aws-sdk/client-eventbridge';
import {
  CoordinationV1Api,
  loadYaml,
  type KubernetesObject,
  type V1ConfigMap,
  type V1Deployment,
  type V1NetworkPolicy,
  type V1Role,
} from '@kubernetes/client-node';
import { configKeys, loadConfig } from '../../src/config/load.js';
import { isOptedIn, resolveDeploymentSettings } from '../../src/config/overrides.js';
import { requiredAccess } from '../../src/preflight/checks.js';
import { imageCommand } from '../../testground/src/image.js';
import { parseMessage } from '../../src/events/parse.js';
import { EVENT_PATTERN_FILE, ensureQueueAndRule, publishEc2Events, removeQueueAndRule } from '../../testground/src/aws.js';
import { awsClientConfig } from '../../testground/src/ground.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { newInstanceId } from '../../testground/src/nodes.js';
import { FAST_ENV } from '../support/controller.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, isPodReady, podsOf, testGround, uniqueName } from '../support/ground.js';
import { freePort } from '../../testground/src/net.js';
import { bundleController, UNBUNDLED_PACKAGES } from '../../scripts/build.js';
import { spawnController, type ControllerProcess } from '../support/process.js';
import {
  awsCliBinary,
  CHART_DIR,
  helm,
  kubectl,
  ofKind,
  parseManifests,
  PROJECT_DIR,
  renderChart,
  run,
  runOk,
  serviceAccountKubeconfig,
  tempDir,
  toManifest,
} from '../support/shipping.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const OPT_IN = { 'spot-orchestrator/enabled': 'true' };
const MANIFESTS_DIR = join(PROJECT_DIR, 'deployments/kubernetes');
const EXAMPLES_DIR = join(PROJECT_DIR, 'examples');

/** Plain objects (parseManifests builds client-node's model classes, which deepEqual tells apart). */
const plain = <T>(value: T): T => JSON.parse(JSON.stringify(value));

const configTomlOf = (objects: KubernetesObject[]): string => {
  const [cm] = ofKind<V1ConfigMap>(objects, 'ConfigMap');
  assert.ok(cm?.data?.['config.toml'], 'the chart renders a ConfigMap with config.toml');
  return cm.data['config.toml'];
};

const plainEnvOf = (objects: KubernetesObject[]): Record<string, string> => {
  const [d] = ofKind<V1Deployment>(objects, 'Deployment');
  const env: Record<string, string> = {};
  for (const e of d?.spec?.template.spec?.containers[0]?.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
  return env;
};

async function scrape(port: number): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

async function stopProcess(p: ControllerProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000): Promise<number | null> {
  if (p.child.exitCode !== null) return p.child.exitCode;
  p.child.kill(signal);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  try {
    return await p.exited;
  } finally {
    clearTimeout(timer);
  }
}

describe('the Helm chart', () => {
  it('passes helm lint in each mode and with every optional object', async () => {
    const variants: string[][] = [
      [],
      ['--set', 'config.kubernetes.mode=single', '--set', 'config.kubernetes.deployment_name=checkout', '--set', 'config.kubernetes.service_name=checkout'],
      [
        '--set',
        'serviceMonitor.enabled=true',
        '--set',
        'config.alerts.slack_webhook_url=https://hooks.slack.example/T/B/x',
        '--set',
        'replicaCount=1',
        '--set',
        'config.controller.leader_elect=false',
      ],
      ['--set', 'config.kubernetes.namespaces={shop,payments}'],
      ['--set', 'config.kubernetes.namespaces={*}'],
      ['--set-string', 'config.kubernetes.namespace_selector=team in (payments\\,shop)'],
    ];
    for (const extra of variants) {
      const out = await helm(['lint', '--strict', CHART_DIR, ...extra]);
      assert.equal(out.code, 0, `helm lint ${extra.join(' ')}\n${out.stdout}${out.stderr}`);
      assert.match(out.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it("grants exactly the resource verbs the controller's code calls", async () => {
    // Across the scopes: the namespaces verbs exist only for a selector.
    const granted = new Set<string>();
    for (const set of [{}, { 'config.kubernetes.namespace_selector': 'team=payments' }] as Record<string, string>[]) {
      const objects = parseManifests(await renderChart('sfo', 'ops', set));
      for (const role of [...ofKind<V1Role>(objects, 'Role'), ...ofKind<V1Role>(objects, 'ClusterRole')]) {
        for (const rule of role.rules ?? []) for (const r of rule.resources ?? []) for (const v of rule.verbs) granted.add(`${r}:${v}`);
      }
    }
    assert.deepEqual([...granted].sort(), kubeCallsOfTheController(), 'chart RBAC vs the API calls in the code `run` loads');
  });

  it('the preflight (doctor, and the check at start) asks for exactly the verbs the controller calls', () => {
    const asked = new Set<string>();
    for (const env of [{ NAMESPACE: 'shop', LEADER_ELECT: 'true' }, { NAMESPACE_SELECTOR: 'team=payments' }, { MODE: 'single', DEPLOYMENT_NAME: 'web' }]) {
      const config = loadConfig({ env: { SQS_QUEUE_URL: 'http://localhost:9324/000000000000/q', MODE: 'namespace', ...env } });
      for (const need of requiredAccess(config, 'ops')) asked.add(`${need.resource}:${need.verb}`);
    }
    assert.deepEqual([...asked].sort(), kubeCallsOfTheController(), 'preflight/checks.ts requiredAccess vs the API calls in the code `run` loads');
  });

  it('renders RBAC to match the scope: a Role per listed namespace, a ClusterRole for "*" or a selector', async () => {
    const workloadRoles = (objects: KubernetesObject[]) =>
      [...ofKind<V1Role>(objects, 'Role'), ...ofKind<V1Role>(objects, 'ClusterRole')].filter((r) =>
        r.rules?.some((rule) => rule.resources?.includes('deployments')),
      );
    const where = (objects: KubernetesObject[]) => workloadRoles(objects).map((r) => `${r.kind}:${r.metadata?.namespace ?? '(cluster)'}`);
    const listed = parseManifests(await renderChart('sfo', 'ops', { 'config.kubernetes.namespaces': ['shop', 'payments'] }));
    assert.deepEqual(where(listed), ['Role:shop', 'Role:payments']);
    assert.deepEqual(
      ofKind(listed, 'RoleBinding').map((b) => b.metadata?.namespace),
      ['shop', 'payments', 'default', 'ops', 'ops'],
      'bound in each, plus node events, the Lease and the restore-record key',
    );
    const listedConfig = loadConfig({ env: plainEnvOf(listed), tomlText: configTomlOf(listed) });
    assert.deepEqual(listedConfig.kubernetes.namespaces, ['shop', 'payments']);
    assert.equal(listedConfig.controller.lease_namespace, 'ops');

    const all = parseManifests(await renderChart('sfo', 'ops', { 'config.kubernetes.namespaces': ['*'] }));
    assert.deepEqual(where(all), ['ClusterRole:(cluster)']);
    assert.equal(loadConfig({ env: plainEnvOf(all), tomlText: configTomlOf(all) }).kubernetes.namespaces, '*');
    assert.ok(
      !ofKind<V1Role>(all, 'ClusterRole').some((r) => r.rules?.some((rule) => rule.resources?.includes('namespaces'))),
      'no Namespace reads without a selector',
    );

    const selected = parseManifests(await renderChart('sfo', 'ops', { 'config.kubernetes.namespace_selector': 'team in (payments,shop)' }));
    assert.deepEqual(where(selected), ['ClusterRole:(cluster)']);
    const [workloads] = workloadRoles(selected);
    assert.ok(workloads!.rules!.some((rule) => rule.resources?.includes('namespaces') && rule.verbs.join() === 'list,watch'));
    const selectedConfig = loadConfig({ env: plainEnvOf(selected), tomlText: configTomlOf(selected) });
    assert.equal(selectedConfig.kubernetes.namespace_selector?.text, 'team in (payments,shop)');
    assert.equal(ofKind(selected, 'Role').filter((r) => r.metadata?.name?.endsWith('-node-events')).length, 0, 'the ClusterRole covers node events');

    for (const [set, message] of [
      [['--set', 'config.kubernetes.namespaces={*,shop}'], /"\*" already means every namespace/],
      [['--set', 'config.kubernetes.namespace=shop', '--set', 'config.kubernetes.namespaces={a}'], /not both/],
      [['--set', 'config.kubernetes.namespaces={a}', '--set', 'config.kubernetes.namespace_selector=t=x'], /namespaces empty or \["\*"\]/],
      [['--set', 'config.kubernetes.mode=single', '--set', 'config.kubernetes.deployment_name=a', '--set', 'config.kubernetes.namespaces={b}'], /single mode/],
    ] as const) {
      const out = await helm(['template', 'x', CHART_DIR, ...set]);
      assert.notEqual(out.code, 0, set.join(' '));
      assert.match(out.stderr, message);
    }
  });

  it('refuses two replicas without leader election, and single mode without a Deployment name', async () => {
    const noElection = await helm(['template', 'x', CHART_DIR, '--set', 'config.controller.leader_elect=false']);
    assert.notEqual(noElection.code, 0);
    assert.match(noElection.stderr, /leader_elect/);
    const noName = await helm(['template', 'x', CHART_DIR, '--set', 'config.kubernetes.mode=single']);
    assert.notEqual(noName.code, 0);
    assert.match(noName.stderr, /deployment_name is required/);
  });

  it('keeps the controller off spot capacity (all three label conventions), its replicas apart, at system-cluster-critical, with memory request equal to limit', async () => {
    const podSpecOf = (objects: KubernetesObject[]) => ofKind<V1Deployment>(objects, 'Deployment')[0]!.spec!;
    const avoidSpot = (computeKey: string, spotValue: string) => [
      { key: 'eks.amazonaws.com/capacityType', operator: 'NotIn', values: ['SPOT'] },
      { key: 'karpenter.sh/capacity-type', operator: 'NotIn', values: ['spot'] },
      { key: computeKey, operator: 'NotIn', values: [spotValue] },
    ];
    const spec = plain(podSpecOf(parseManifests(await renderChart('sfo', 'ops'))));
    const pod = spec.template.spec!;
    assert.deepEqual(pod.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms, [
      { matchExpressions: avoidSpot('compute-type', 'spot') },
    ]);
    assert.equal(pod.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution, undefined, 'a rule, not a preference');
    assert.deepEqual(pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution, [
      { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: spec.selector.matchLabels } },
    ]);
    assert.deepEqual(pod.topologySpreadConstraints, [
      {
        maxSkew: 1,
        topologyKey: 'topology.kubernetes.io/zone',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: spec.selector.matchLabels },
      },
    ]);
    assert.deepEqual(spec.strategy?.rollingUpdate, { maxSurge: 0, maxUnavailable: 1 }, 'a surge pod would need a third eligible node');
    assert.equal(pod.priorityClassName, 'system-cluster-critical');
    const resources = pod.containers[0]!.resources!;
    assert.equal(resources.requests?.memory, resources.limits?.memory, 'memory request equal to limit');
    const mebibytes = (q: string) => Number(/^(\d+)Mi$/.exec(q)?.[1] ?? Number.NaN);
    assert.ok(
      mebibytes(resources.limits!.memory!) >= 667 * 1.1,
      `the limit covers the peak measured at 5000 Deployments (667 MiB) with room: ${resources.limits!.memory}`,
    );
    const values = readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8');
    assert.match(values, /Sizing rule: peak RSS is about 150 MiB \+ 105 MiB per 1000 Deployments/, 'values.yaml states the sizing rule');

    // The project's own spot label follows config.compute; a required term of the user's gets the rule ANDed in.
    const custom = plain(
      podSpecOf(
        parseManifests(
          await renderChart('sfo', 'ops', {
            'config.compute.compute_label_key': 'node-pool',
            'config.compute.spot_label': 'cheap',
            'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key': 'eks.amazonaws.com/nodegroup',
            'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator': 'In',
            'affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]': 'system',
            priorityClassName: 'platform-critical',
          }),
        ),
      ),
    ).template.spec!;
    assert.deepEqual(custom.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms, [
      { matchExpressions: [{ key: 'eks.amazonaws.com/nodegroup', operator: 'In', values: ['system'] }, ...avoidSpot('node-pool', 'cheap')] },
    ]);
    assert.equal(custom.priorityClassName, 'platform-critical');
    const none = podSpecOf(parseManifests(await renderChart('sfo', 'ops', { priorityClassName: '' }))).template.spec!;
    assert.equal(none.priorityClassName, undefined);

    // One replica: nothing to keep apart, and the update surges.
    const single = plain(podSpecOf(parseManifests(await renderChart('sfo', 'ops', { replicaCount: 1, 'config.controller.leader_elect': false }))));
    assert.equal(single.template.spec!.affinity?.podAntiAffinity, undefined);
    assert.equal(single.template.spec!.topologySpreadConstraints, undefined);
    assert.deepEqual(single.strategy?.rollingUpdate, { maxSurge: 1, maxUnavailable: 0 });
    assert.ok(single.template.spec!.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution, 'still off spot');
    const bad = await helm(['template', 'x', CHART_DIR, '--set', 'placement.zoneSpread=Sometimes']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /placement\.zoneSpread/);
  });

  it('turns off the AWS SDK fallback to the instance metadata service, in the chart and in the image', async () => {
    assert.equal(plainEnvOf(parseManifests(await renderChart('sfo', 'ops'))).AWS_EC2_METADATA_DISABLED, 'true');
    assert.equal(plainEnvOf(parseManifests(await renderChart('sfo', 'ops', { 'aws.disableInstanceMetadata': false }))).AWS_EC2_METADATA_DISABLED, 'false');
    assert.match(readFileSync(join(PROJECT_DIR, 'Dockerfile'), 'utf8'), /^ENV AWS_EC2_METADATA_DISABLED=true$/m);
  });

  it('hands rbac.nodeEventsNamespace to the controller, where its RBAC grants the Events, and refuses a different node_events_namespace', async () => {
    const objects = parseManifests(await renderChart('sfo', 'ops', { 'rbac.nodeEventsNamespace': 'kube-system' }));
    const config = loadConfig({ env: plainEnvOf(objects), tomlText: configTomlOf(objects), tomlPath: 'config.toml' });
    assert.equal(config.controller.node_events_namespace, 'kube-system');
    const eventRoles = ofKind<V1Role>(objects, 'Role').filter((r) => r.rules?.some((rule) => rule.resources?.includes('events')));
    assert.ok(
      eventRoles.some((r) => r.metadata?.namespace === 'kube-system'),
      'events granted in that namespace',
    );
    // The API server takes Events about a Node in default and kube-system only.
    const elsewhere = await helm(['template', 'x', CHART_DIR, '--set', 'rbac.nodeEventsNamespace=node-events']);
    assert.notEqual(elsewhere.code, 0);
    assert.match(elsewhere.stderr, /rbac\.nodeEventsNamespace: default or kube-system, got "node-events"/);
    const defaults = parseManifests(await renderChart('sfo', 'ops'));
    assert.equal(
      loadConfig({ env: plainEnvOf(defaults), tomlText: configTomlOf(defaults), tomlPath: 'config.toml' }).controller.node_events_namespace,
      'default',
    );
    const differs = await helm([
      'template',
      'x',
      CHART_DIR,
      '--set',
      'rbac.nodeEventsNamespace=kube-system',
      '--set',
      'config.controller.node_events_namespace=default',
    ]);
    assert.notEqual(differs.code, 0);
    assert.match(differs.stderr, /config\.controller\.node_events_namespace \(default\) differs from rbac\.nodeEventsNamespace \(kube-system\)/);
  });

  it('renders a NetworkPolicy that admits only the named peers to the metrics port, when enabled (off by default)', async () => {
    assert.deepEqual(ofKind(parseManifests(await renderChart('sfo', 'ops')), 'NetworkPolicy'), []);
    const [policy] = ofKind<V1NetworkPolicy>(
      parseManifests(
        await renderChart('sfo', 'ops', {
          'networkPolicy.enabled': true,
          'networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name': 'monitoring',
        }),
      ),
      'NetworkPolicy',
    );
    assert.deepEqual(policy?.spec?.policyTypes, ['Ingress']);
    assert.equal(policy?.spec?.ingress?.length, 1);
    // client-node's model calls `from` _from.
    assert.deepEqual(plain(policy!.spec!.ingress![0]!.ports), [{ port: 'metrics', protocol: 'TCP' }]);
    assert.deepEqual(plain(policy!.spec!.ingress![0]!._from), [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
    const [closed] = ofKind<V1NetworkPolicy>(parseManifests(await renderChart('sfo', 'ops', { 'networkPolicy.enabled': true })), 'NetworkPolicy');
    assert.deepEqual(closed?.spec?.ingress, [], 'enabled with no peers: nothing may connect');
  });

  it('has a value for every config key, and renders a config.toml the controller loads in each mode', async () => {
    const values = loadYaml<{ config: Record<string, Record<string, unknown>> }>(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'));
    const keys = Object.entries(values.config).flatMap(([section, settings]) => Object.keys(settings).map((k) => `${section}.${k}`));
    assert.deepEqual([...keys].sort(), [...configKeys()].sort(), 'values.yaml config.* mirrors src/config/config.ts exactly');

    const modes: [string, Record<string, string | boolean | number>][] = [
      ['namespace', {}],
      ['single', { 'config.kubernetes.mode': 'single', 'config.kubernetes.deployment_name': 'checkout', 'config.kubernetes.service_name': 'checkout' }],
    ];
    for (const [mode, set] of modes) {
      const objects = parseManifests(await renderChart('sfo', 'ops', { ...set, 'config.alerts.slack_webhook_url': 'https://hooks.slack.example/T/B/secret' }));
      const toml = configTomlOf(objects);
      assert.doesNotMatch(toml, /slack|\/T\/B\/secret/i, 'the webhook never lands in the ConfigMap');
      const config = loadConfig({ env: plainEnvOf(objects), tomlText: toml, tomlPath: 'config.toml' });
      assert.equal(config.kubernetes.mode, mode);
      assert.equal(config.kubernetes.namespace, 'ops', 'the watched namespace defaults to the release namespace');
      assert.equal(config.controller.lease_namespace, 'ops');
      assert.equal(config.controller.leader_elect, true);
      const [d] = ofKind<V1Deployment>(objects, 'Deployment');
      const container = d!.spec!.template.spec!.containers[0]!;
      assert.equal(container.ports?.[0]?.containerPort, config.controller.metrics_port);
      assert.equal(container.livenessProbe?.httpGet?.path, '/healthz');
      assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
      assert.equal(container.env?.find((e) => e.name === 'SLACK_WEBHOOK_URL')?.valueFrom?.secretKeyRef?.name, 'sfo-spot-fargate-orchestrator-slack');
      assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
      assert.deepEqual(container.securityContext?.capabilities?.drop, ['ALL']);
      assert.equal(d!.spec!.template.spec!.securityContext?.runAsNonRoot, true);
      assert.equal(d!.spec!.template.spec!.securityContext?.seccompProfile?.type, 'RuntimeDefault');
      const roles = ofKind<V1Role>(objects, 'Role');
      const deploymentRules = roles.flatMap((r) => r.rules ?? []).filter((r) => r.resources?.includes('deployments'));
      if (mode === 'single') {
        assert.deepEqual(deploymentRules.find((r) => r.verbs.includes('patch'))?.resourceNames, ['checkout'], 'single mode may change only its Deployment');
      } else {
        assert.equal(deploymentRules.find((r) => r.verbs.includes('patch'))?.resourceNames, undefined);
      }
    }
  });

  describe('server-side dry-run on the local API server', () => {
    let namespace: string;
    let createdCrd = false;
    before(async () => {
      namespace = await createNamespace(t, 'ship-dry');
      // The Prometheus Operator is not on the ground: a ServiceMonitor CRD with the fields the chart uses.
      const existing = await kubectl(t, ['get', 'crd', 'servicemonitors.monitoring.coreos.com']);
      if (existing.code !== 0) {
        await runOk(t.ground.kubectl, ['--kubeconfig', t.ground.kubeconfig, 'apply', '-f', '-'], { input: JSON.stringify(SERVICE_MONITOR_CRD) });
        createdCrd = true;
        await runOk(t.ground.kubectl, [
          '--kubeconfig',
          t.ground.kubeconfig,
          'wait',
          '--for=condition=Established',
          '--timeout=30s',
          'crd/servicemonitors.monitoring.coreos.com',
        ]);
      }
    });
    after(async () => {
      await deleteNamespace(t, namespace);
      if (createdCrd) await kubectl(t, ['delete', 'crd', 'servicemonitors.monitoring.coreos.com', '--ignore-not-found']);
    });

    const variants: [string, Record<string, string | number | boolean>][] = [
      ['default values', {}],
      [
        'single mode, ServiceMonitor, Slack Secret, one replica, NetworkPolicy',
        {
          'config.kubernetes.mode': 'single',
          'config.kubernetes.deployment_name': 'checkout',
          'serviceMonitor.enabled': true,
          'config.alerts.slack_webhook_url': 'https://hooks.slack.example/T/B/x',
          replicaCount: 1,
          'config.controller.leader_elect': false,
          'networkPolicy.enabled': true,
          'networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name': 'monitoring',
        },
      ],
    ];
    for (const [name, set] of variants) {
      it(`accepts every rendered object (${name})`, async () => {
        const text = await renderChart(uniqueName('dry'), namespace, set);
        const objects = parseManifests(text);
        const kinds = new Set(objects.map((o) => o.kind));
        for (const kind of [
          'ServiceAccount',
          'ClusterRole',
          'ClusterRoleBinding',
          'Role',
          'RoleBinding',
          'ConfigMap',
          'Deployment',
          'Service',
          'FlowSchema',
          'PriorityLevelConfiguration',
        ]) {
          assert.ok(kinds.has(kind), `renders a ${kind}`);
        }
        if (set.replicaCount === undefined) assert.ok(kinds.has('PodDisruptionBudget'));
        if (set['serviceMonitor.enabled']) assert.ok(kinds.has('ServiceMonitor') && kinds.has('Secret'));
        if (set['networkPolicy.enabled']) assert.ok(kinds.has('NetworkPolicy'));
        const out = await kubectl(t, ['apply', '--dry-run=server', '--validate=strict', '-f', '-'], text);
        assert.equal(out.code, 0, `${out.stdout}\n${out.stderr}`);
        assert.equal(out.stdout.trim().split('\n').length, objects.length, out.stdout);
        assert.match(out.stdout, /\(server dry run\)/);
      });
    }

    it('deployments/kubernetes is the chart rendered with its default values, and applies with kubectl apply -f (as the original documents) and -k', async () => {
      const dir = tempDir('manifests');
      await runOk('bash', [join(PROJECT_DIR, 'scripts/generate-manifests.sh'), dir]);
      for (const file of readdirSync(dir)) {
        assert.equal(
          readFileSync(join(MANIFESTS_DIR, file), 'utf8'),
          readFileSync(join(dir, file), 'utf8'),
          `deployments/kubernetes/${file} is stale: run scripts/generate-manifests.sh`,
        );
      }
      // The manifests' own namespace must exist for a dry run of what lives in it.
      const ns = 'spot-fargate-orchestrator';
      const created = (await kubectl(t, ['get', 'namespace', ns])).code !== 0;
      if (created) await runOk(t.ground.kubectl, ['--kubeconfig', t.ground.kubeconfig, 'create', 'namespace', ns]);
      try {
        for (const how of [
          ['-f', `${MANIFESTS_DIR}/`],
          ['-k', join(MANIFESTS_DIR, '..')],
        ]) {
          const out = await kubectl(t, ['apply', '--dry-run=server', '--validate=strict', ...how]);
          assert.equal(out.code, 0, `kubectl apply ${how.join(' ')}:\n${out.stdout}\n${out.stderr}`);
          assert.match(out.stdout, /deployment.apps\/spot-fargate-orchestrator (created|configured|unchanged) \(server dry run\)/);
        }
      } finally {
        if (created) await kubectl(t, ['delete', 'namespace', ns, '--wait=true', '--timeout=60s']);
      }
    });
  });
});

describe("the chart's pods on the local test ground: placement, priority and Pod Security", () => {
  let namespace: string | undefined;
  after(async () => {
    if (namespace) await deleteNamespace(t, namespace);
  });

  it('schedules the replicas off spot nodes, on different hosts, at system-cluster-critical, in a namespace that enforces the restricted profile', async () => {
    // The labels deployments/kubernetes/namespace.yaml gives the controller's namespace.
    const [nsManifest] = parseManifests(readFileSync(join(MANIFESTS_DIR, 'namespace.yaml'), 'utf8'));
    const labels = nsManifest!.metadata!.labels!;
    assert.equal(labels['pod-security.kubernetes.io/enforce'], 'restricted');
    namespace = uniqueName('ship-place');
    await t.core.createNamespace({ body: { metadata: { name: namespace, labels } } });

    const release = uniqueName('place');
    const objects = parseManifests(await renderChart(release, namespace)).filter((o) => ['ServiceAccount', 'ConfigMap', 'Deployment'].includes(o.kind!));
    const applied = await kubectl(t, ['apply', '-f', '-'], toManifest(objects));
    assert.equal(applied.code, 0, applied.stderr);
    const name = `${release}-spot-fargate-orchestrator`;
    const pods = await eventually(
      'both replicas scheduled and Ready',
      async () => {
        const list = (await t.core.listNamespacedPod({ namespace: namespace!, labelSelector: `app.kubernetes.io/instance=${release}` })).items;
        return list.length === 2 && list.every((p) => p.spec?.nodeName && isPodReady(p)) ? list : undefined;
      },
      60_000,
    );
    const rs = await t.apps.listNamespacedReplicaSet({ namespace, labelSelector: `app.kubernetes.io/instance=${release}` });
    assert.ok(
      rs.items.every((r) => !r.status?.conditions?.some((c) => c.type === 'ReplicaFailure')),
      'Pod Security admitted the pods',
    );
    const nodes = await Promise.all(pods.map((p) => t.core.readNode({ name: p.spec!.nodeName! })));
    for (const node of nodes) {
      const l = node.metadata?.labels ?? {};
      assert.notEqual(l['eks.amazonaws.com/capacityType'], 'SPOT', node.metadata?.name);
      assert.notEqual(l['karpenter.sh/capacity-type'], 'spot', node.metadata?.name);
      assert.notEqual(l['compute-type'], 'spot', node.metadata?.name);
    }
    assert.notEqual(nodes[0]!.metadata!.name, nodes[1]!.metadata!.name, 'one replica per host');
    for (const p of pods) {
      assert.equal(p.spec?.priorityClassName, 'system-cluster-critical');
      assert.equal(p.spec?.priority, 2_000_000_000);
    }
    const spotNodes = (await t.core.listNode({ labelSelector: 'eks.amazonaws.com/capacityType=SPOT' })).items.filter((n) => !n.spec?.unschedulable);
    assert.ok(spotNodes.length > 0, 'spot nodes were there to be avoided');
    const d = await t.apps.readNamespacedDeployment({ name, namespace });
    assert.equal(d.spec?.template.spec?.containers[0]?.resources?.limits?.memory, d.spec?.template.spec?.containers[0]?.resources?.requests?.memory);
  });
});

describe("the container's AWS credentials: no fallback to the node's instance role", () => {
  const probe = join(PROJECT_DIR, 'test/support/aws-credentials-probe.ts');
  let chartEnv: Record<string, string>;
  before(async () => {
    chartEnv = plainEnvOf(parseManifests(await renderChart('sfo', 'ops')));
  });

  /** A stand-in HTTP server that counts requests and answers each with `reply`. */
  async function server(reply: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; hits: () => number; close: () => void }> {
    let hits = 0;
    const srv = createServer((req, res) => {
      hits++;
      reply(req, res);
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const { port } = srv.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, hits: () => hits, close: () => srv.close() };
  }

  async function resolveCredentials(env: Record<string, string>): Promise<{ ok: boolean; accessKeyId?: string; error?: string }> {
    const home = tempDir('aws-home');
    const out = await runOk(process.execPath, ['--import', 'tsx', probe], {
      env: { PATH: process.env.PATH, HOME: home, AWS_CONFIG_FILE: join(home, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(home, 'none'), ...env },
    });
    return JSON.parse(out.stdout.trim().split('\n').pop()!);
  }

  it('IMDS is never asked with the chart environment, while IRSA and Pod Identity still work', async () => {
    const imds = await server((_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    const containerCredentials = await server((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify(
          req.headers.authorization === 'pod-identity-token'
            ? { AccessKeyId: 'ASIAPODIDENTITY', SecretAccessKey: 's', Token: 't', Expiration: new Date(Date.now() + 3_600_000).toISOString() }
            : {},
        ),
      );
    });
    try {
      const base: Record<string, string> = { ...chartEnv, AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url };
      assert.equal(base.AWS_EC2_METADATA_DISABLED, 'true');

      const noRole = await resolveCredentials(base);
      assert.equal(noRole.ok, false, 'no credentials at all: the SDK fails');
      assert.equal(imds.hits(), 0, 'and never asked the instance metadata service');

      // The control: without the variable the SDK does go to IMDS (what the chart prevents).
      const { AWS_EC2_METADATA_DISABLED: _, ...withoutIt } = base;
      await resolveCredentials(withoutIt);
      assert.ok(imds.hits() > 0, 'without AWS_EC2_METADATA_DISABLED the SDK asks IMDS');
      const before = imds.hits();

      // EKS Pod Identity: the container credentials endpoint, with the agent's token.
      const podIdentity = await resolveCredentials({
        ...base,
        AWS_CONTAINER_CREDENTIALS_FULL_URI: `${containerCredentials.url}/v1/credentials`,
        AWS_CONTAINER_AUTHORIZATION_TOKEN: 'pod-identity-token',
      });
      assert.deepEqual(podIdentity, { ok: true, accessKeyId: 'ASIAPODIDENTITY' });

      // IRSA: the projected web identity token, exchanged with STS (the ground's local server).
      const tokenFile = join(tempDir('irsa'), 'token');
      writeFileSync(tokenFile, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6b3BzOnNmbyJ9.c2ln');
      const irsa = await resolveCredentials({
        ...base,
        AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
        AWS_ROLE_ARN: `arn:aws:iam::${t.ground.account}:role/spot-fargate-orchestrator`,
        AWS_ROLE_SESSION_NAME: 'sfo',
        AWS_ENDPOINT_URL_STS: t.ground.sqsEndpoint,
      });
      assert.equal(irsa.ok, true, JSON.stringify(irsa));
      assert.equal(imds.hits(), before, 'neither touched IMDS');
    } finally {
      imds.close();
      containerCredentials.close();
    }
  });
});

interface RbacRun {
  appNamespace: string;
  controllerNamespace: string;
  nodeEventsNamespace: string;
  deployment: string;
  /** Every opted-in Deployment on the pool, with whether the chart's scope manages its namespace. */
  placed: { namespace: string; name: string; inScope: boolean }[];
  nodes: string[];
  process: ControllerProcess;
  metricsPort: number;
  release: string;
  /** The label that puts a namespace in a selector scope. */
  scopeLabel?: { key: string; value: string };
  cleanup(): Promise<void>;
}

/**
 * What the chart is told to manage. one: config.kubernetes.namespace (a Role there). two-listed:
 * config.kubernetes.namespaces with two namespaces (a Role in each). selector: a namespace_selector
 * (a ClusterRole); the second namespace gets its label only once the controller runs. Beside the
 * managed ones, the scoped variants put an opted-in Deployment in a namespace outside the scope.
 */
type ChartScope = 'one' | 'two-listed' | 'selector';

/**
 * Installs the chart's ServiceAccount and RBAC objects (optionally with one verb removed), and
 * starts the real controller (`node --import tsx src/cli.ts run`) authenticated by that
 * ServiceAccount's token, configured by the chart's config.toml, with opted-in Deployments on a
 * fresh spot pool.
 */
async function startUnderServiceAccount(options: { drop?: { resource: string; verb: string }; scope?: ChartScope } = {}): Promise<RbacRun> {
  const { drop, scope = 'one' } = options;
  const appNamespace = await createNamespace(t, 'ship-app');
  const secondNamespace = scope === 'one' ? undefined : await createNamespace(t, 'ship-app2');
  const outsideNamespace = scope === 'one' ? undefined : await createNamespace(t, 'ship-out');
  const controllerNamespace = await createNamespace(t, 'ship-ctl');
  // Node Events go to kube-system, not default (the other namespace the API server accepts them
  // in): the RBAC grants them there, and the controller must write them there, as new-style Events
  // (config.toml from the chart).
  const nodeEventsNamespace = 'kube-system';
  const release = uniqueName('ship');
  const queueName = uniqueName('shipq');
  const { queueUrl } = await ensureQueueAndRule(t.ground, queueName);
  const scopeLabel = scope === 'selector' ? { key: 'spot-test/team', value: uniqueName('team') } : undefined;
  if (scopeLabel) await labelNamespace(appNamespace, scopeLabel);
  const scopeValues: Record<string, string | string[]> =
    scope === 'one'
      ? { 'config.kubernetes.namespace': appNamespace }
      : scope === 'two-listed'
        ? { 'config.kubernetes.namespaces': [appNamespace, secondNamespace!] }
        : { 'config.kubernetes.namespace_selector': `${scopeLabel!.key}=${scopeLabel!.value}` };
  const objects = parseManifests(
    await renderChart(release, controllerNamespace, {
      ...scopeValues,
      'config.aws.sqs_queue_url': queueUrl,
      'config.aws.region': t.ground.region,
      'rbac.nodeEventsNamespace': nodeEventsNamespace,
    }),
  );
  const rbac = objects.filter((o) =>
    ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'FlowSchema', 'PriorityLevelConfiguration'].includes(o.kind!),
  );
  if (drop) {
    let dropped = false;
    for (const role of [...ofKind<V1Role>(rbac, 'Role'), ...ofKind<V1Role>(rbac, 'ClusterRole')]) {
      for (const rule of role.rules ?? []) {
        if (rule.resources?.includes(drop.resource) && rule.verbs.includes(drop.verb)) {
          rule.verbs = rule.verbs.filter((v) => v !== drop.verb);
          dropped = true;
        }
      }
    }
    assert.ok(dropped, `the chart grants ${drop.verb} on ${drop.resource}`);
  }
  const applied = await kubectl(t, ['apply', '-f', '-'], toManifest(rbac));
  assert.equal(applied.code, 0, applied.stderr);
  const clusterScoped = toManifest(
    rbac.filter(
      (o) =>
        o.kind!.startsWith('Cluster') ||
        o.kind === 'FlowSchema' ||
        o.kind === 'PriorityLevelConfiguration' ||
        o.metadata?.namespace === 'default' ||
        o.metadata?.namespace === 'kube-system',
    ),
  );

  const [sa] = ofKind(rbac, 'ServiceAccount');
  const kubeconfig = await serviceAccountKubeconfig(t, controllerNamespace, sa!.metadata!.name!);
  const configFile = join(tempDir('config'), 'config.toml');
  writeFileSync(configFile, configTomlOf(objects));

  const pool = uniqueName('shippool');
  const nodes = await injector.addSpotNodes(2, { name: pool, suffix: '' });
  const deployment = uniqueName('web');
  const placed = [
    { namespace: appNamespace, name: deployment, inScope: true },
    ...(secondNamespace ? [{ namespace: secondNamespace, name: uniqueName('api'), inScope: true }] : []),
    ...(outsideNamespace ? [{ namespace: outsideNamespace, name: uniqueName('other'), inScope: false }] : []),
  ];
  for (const p of placed) {
    await t.apps.createNamespacedDeployment({
      namespace: p.namespace,
      body: appDeployment({
        namespace: p.namespace,
        name: p.name,
        replicas: 2,
        annotations: OPT_IN,
        nodeSelector: { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool },
      }),
    });
    await t.core.createNamespacedService({
      namespace: p.namespace,
      body: { metadata: { name: p.name }, spec: { selector: { app: p.name }, ports: [{ port: 80, targetPort: 8080 }] } },
    });
  }
  await eventually(
    'the Deployments ready on spot',
    async () => {
      for (const p of placed) {
        const d = await t.apps.readNamespacedDeployment({ name: p.name, namespace: p.namespace });
        if ((d.status?.readyReplicas ?? 0) < 2) return undefined;
      }
      return true;
    },
    60_000,
  );

  const metricsPort = await freePort();
  const process = await spawnController(t, {
    KUBECONFIG: kubeconfig,
    CONFIG_FILE: configFile,
    MODE: 'namespace',
    // The chart's config.toml names the scope; the one-namespace run also sets it the Go original's way.
    ...(scope === 'one' ? { NAMESPACE: appNamespace } : {}),
    SQS_QUEUE_URL: queueUrl,
    METRICS_PORT: String(metricsPort),
    POD_NAME: `${release}-0`,
    ...FAST_ENV,
  });
  return {
    appNamespace,
    controllerNamespace,
    nodeEventsNamespace,
    deployment,
    placed,
    nodes,
    process,
    metricsPort,
    release,
    scopeLabel,
    async cleanup() {
      await stopProcess(process, 'SIGKILL');
      await removeQueueAndRule(t.ground, queueName, queueUrl).catch(() => undefined);
      await kubectl(t, ['delete', '--ignore-not-found', '-f', '-'], clusterScoped);
      for (const name of nodes) await t.core.deleteNode({ name }).catch(() => undefined);
      for (const ns of [appNamespace, secondNamespace, outsideNamespace, controllerNamespace]) if (ns) await deleteNamespace(t, ns);
    },
  };
}

async function labelNamespace(name: string, label: { key: string; value: string }): Promise<void> {
  const out = await kubectl(t, ['label', 'namespace', name, `${label.key}=${label.value}`, '--overwrite']);
  assert.equal(out.code, 0, out.stderr);
}

/** Waits until each in-scope Deployment is settled on Fargate, and checks those outside were left alone. */
async function assertMovedExactlyTheScope(r: RbacRun): Promise<void> {
  for (const p of r.placed.filter((p) => p.inScope)) {
    await eventually(
      `${p.namespace}/${p.name} healthy on Fargate`,
      async () => {
        const d = await t.apps.readNamespacedDeployment({ name: p.name, namespace: p.namespace });
        const a = d.metadata?.annotations ?? {};
        if (a['spot-orchestrator/state'] !== 'fargate' || a['spot-orchestrator/phase']) return undefined;
        const pods = (await podsOf(t, p.namespace, p.name)).filter((pod) => !pod.metadata?.deletionTimestamp);
        return pods.length === 2 && pods.every((pod) => isPodReady(pod) && /^fargate-ip-/.test(pod.spec?.nodeName ?? '')) ? true : undefined;
      },
      60_000,
    );
  }
  for (const p of r.placed.filter((p) => !p.inScope)) {
    const d = await t.apps.readNamespacedDeployment({ name: p.name, namespace: p.namespace });
    assert.equal(d.metadata?.annotations?.['spot-orchestrator/state'], undefined, `${p.namespace}/${p.name} is outside the scope and was not touched`);
    assert.equal(d.spec?.template.spec?.nodeSelector?.['compute-type'], 'spot', 'still on the spot template');
  }
}

describe("RBAC: the real controller under the chart's ServiceAccount, RBAC enforced", () => {
  const runs: RbacRun[] = [];
  after(async () => {
    injector.cancel();
    for (const r of runs) await r.cleanup();
  });

  it('moves an opted-in Deployment to Fargate with nothing forbidden, then drains on SIGTERM', async () => {
    const r = await startUnderServiceAccount();
    runs.push(r);
    const out = r.process.output;
    await eventually('the controller to lead and act', async () => (out().includes('controller started') ? true : undefined), 30_000);
    const ready = await eventually(
      '/readyz to answer 200',
      async () => ((await fetch(`http://127.0.0.1:${r.metricsPort}/readyz`)).status === 200 ? true : undefined),
      30_000,
    );
    assert.ok(ready);

    const interruption = await injector.interrupt(r.nodes);
    const d = await eventually(
      'the Deployment healthy on Fargate',
      async () => {
        const d = await t.apps.readNamespacedDeployment({ name: r.deployment, namespace: r.appNamespace });
        const a = d.metadata?.annotations ?? {};
        if (a['spot-orchestrator/state'] !== 'fargate' || a['spot-orchestrator/phase']) return undefined;
        const pods = (await podsOf(t, r.appNamespace, r.deployment)).filter((p) => !p.metadata?.deletionTimestamp);
        return pods.length === 2 && pods.every((p) => isPodReady(p) && /^fargate-ip-/.test(p.spec?.nodeName ?? '')) ? d : undefined;
      },
      60_000,
    );
    assert.equal(d.spec?.template.metadata?.labels?.['compute-type'], 'fargate');
    await interruption.terminated;

    // Events on the Deployment (its namespace) and on the Nodes (rbac.nodeEventsNamespace) were written.
    const deploymentEvents = await eventually('a MigratedToFargate Event', async () => {
      const list = await t.core.listNamespacedEvent({ namespace: r.appNamespace, fieldSelector: `involvedObject.name=${r.deployment}` });
      return list.items.some((e) => e.reason === 'MigratedToFargate') ? list.items : undefined;
    });
    assert.ok(deploymentEvents.length > 0);
    await eventually(`a SpotInterruption Event on a Node, in rbac.nodeEventsNamespace (${r.nodeEventsNamespace})`, async () => {
      const list = await t.core.listNamespacedEvent({ namespace: r.nodeEventsNamespace, fieldSelector: `involvedObject.name=${r.nodes[0]}` });
      return list.items.some((e) => e.reason === 'SpotInterruption') ? true : undefined;
    });
    const inDefault = await t.core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=${r.nodes[0]}` });
    assert.ok(!inDefault.items.some((e) => e.reason === 'SpotInterruption'), 'none in default');
    // Leader election ran on the chart's Lease.
    const lease = await t.kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: `${r.release}-spot-fargate-orchestrator`, namespace: r.controllerNamespace });
    assert.equal(lease.spec?.holderIdentity, `${r.release}-0`);
    // Its requests ran under the chart's own API Priority and Fairness level.
    const fullname = `${r.release}-spot-fargate-orchestrator`;
    const apiMetrics = await kubectl(t, ['get', '--raw', '/metrics']);
    const dispatched = apiMetrics.stdout
      .split('\n')
      .filter((l) => l.startsWith('apiserver_flowcontrol_dispatched_requests_total{') && l.includes(`flow_schema="${fullname}"`));
    assert.ok(dispatched.length > 0, 'requests dispatched under the FlowSchema');
    assert.ok(
      dispatched.every((l) => l.includes(`priority_level="${fullname}"`)),
      dispatched.join('\n'),
    );

    assert.doesNotMatch(await scrape(r.metricsPort), /spot_orchestrator_kube_api_errors_total\{[^}]*code="403"/, 'no 403 counted');
    const code = await stopProcess(r.process, 'SIGTERM');
    assert.equal(code, 0, 'SIGTERM: drained and exited 0');
    assert.match(out(), /draining in-flight work and stopping/);
    assert.doesNotMatch(out(), /forbidden/i, 'no API call was refused');
  });

  it('fails with 403 Forbidden when the Role lacks one verb the controller uses (deployments patch)', async () => {
    const r = await startUnderServiceAccount({ drop: { resource: 'deployments', verb: 'patch' } });
    runs.push(r);
    const out = r.process.output;
    await eventually('the controller to lead and act', async () => (out().includes('controller started') ? true : undefined), 30_000);
    await injector.interrupt(r.nodes);
    await eventually(
      'a forbidden patch in the log',
      async () => (/forbidden/i.test(out()) && /cannot patch resource \\?"deployments\\?"/.test(out()) ? true : undefined),
      60_000,
    );
    const metrics = await scrape(r.metricsPort);
    assert.match(metrics, /spot_orchestrator_kube_api_errors_total\{verb="patch",code="403"\} [1-9]/, 'the 403 is counted');
    const d = await t.apps.readNamespacedDeployment({ name: r.deployment, namespace: r.appNamespace });
    assert.notEqual(d.metadata?.annotations?.['spot-orchestrator/state'], 'fargate', 'nothing moved without the verb');
  });

  it('with two listed namespaces (a Role in each), one interruption moves a Deployment of each, and none of a third', async () => {
    const r = await startUnderServiceAccount({ scope: 'two-listed' });
    runs.push(r);
    const out = r.process.output;
    await eventually('the controller to lead and act', async () => (out().includes('controller started') ? true : undefined), 30_000);
    assert.match(out(), new RegExp(`"scope":"namespaces ${r.placed[0]!.namespace}, ${r.placed[1]!.namespace}"`));
    const interruption = await injector.interrupt(r.nodes);
    await assertMovedExactlyTheScope(r);
    await interruption.terminated;
    assert.doesNotMatch(out(), /forbidden/i, 'no API call was refused');
  });

  it('with a namespace selector (a ClusterRole), moves the namespaces labelled to match, also one labelled after the start', async () => {
    const r = await startUnderServiceAccount({ scope: 'selector' });
    runs.push(r);
    const out = r.process.output;
    await eventually('the controller to lead and act', async () => (out().includes('controller started') ? true : undefined), 30_000);
    // The second namespace joins the scope while the controller runs: the Namespace watch sees it.
    await labelNamespace(r.placed[1]!.namespace, r.scopeLabel!);
    await eventually('the second namespace to join the scope', async () =>
      out().includes(`"namespace":"${r.placed[1]!.namespace}"`) && out().includes('namespace joined the scope') ? true : undefined,
    );
    const interruption = await injector.interrupt(r.nodes);
    await assertMovedExactlyTheScope(r);
    await interruption.terminated;
    assert.doesNotMatch(out(), /forbidden/i, 'no API call was refused');
  });
});

describe('the container image layout', () => {
  it('runs from dist/src and production dependencies alone, and exits 0 after draining on SIGTERM', async () => {
    const dockerfile = readFileSync(join(PROJECT_DIR, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^FROM \$\{NODE_IMAGE\} AS deps$/m);
    const imageNodeMajor = /^ARG NODE_IMAGE=node:(\d+)-bookworm-slim$/m.exec(dockerfile)?.[1];
    assert.equal(imageNodeMajor, '24', 'the image is on Node 24 LTS');
    assert.match(dockerfile, /^USER 65532:65532$/m);
    assert.match(dockerfile, /apt-get install -y --no-install-recommends tini/);
    const image = imageCommand(dockerfile);
    assert.deepEqual(image.init, ['/usr/bin/tini', '--'], 'an init is PID 1, so SIGTERM reaches node');
    assert.deepEqual(image.nodeFlags, ['--max-semi-space-size=16'], 'the young generation as on Node 20 (see the Dockerfile)');
    assert.deepEqual(
      Object.entries(image.env).filter(([name]) => name.startsWith('MALLOC_')),
      [
        ['MALLOC_ARENA_MAX', '2'],
        ['MALLOC_MMAP_THRESHOLD_', '131072'],
        ['MALLOC_TRIM_THRESHOLD_', '131072'],
      ],
      "glibc's allocator gives freed memory back (see the Dockerfile)",
    );
    assert.deepEqual([image.script, ...image.cmd], ['dist/src/cli.js', 'run']);
    const entrypoint = ['node', ...image.nodeFlags, image.script];
    const cmd = image.cmd;
    // The layout below runs on the node the tests run on; it must be the image's major version.
    const localNode = await run('node', ['-p', 'process.versions.node'], { env: { PATH: process.env.PATH } });
    assert.equal(localNode.stdout.trim().split('.')[0], imageNodeMajor, `the layout runs on node ${localNode.stdout.trim()}, the image on ${imageNodeMajor}`);

    // What the Dockerfile's stages do, without Docker: production dependencies, the build, the layout.
    const app = tempDir('image');
    for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(PROJECT_DIR, f), join(app, f));
    await runOk('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app });
    assert.ok(!existsSync(join(app, 'node_modules/typescript')) && !existsSync(join(app, 'node_modules/tsx')), 'no dev dependency in the image');
    // Then only what the bundle loads from node_modules stays, pruned by Node itself (no tsx there).
    const prune = /^RUN npm ci --omit=dev [^\n]*&& node scripts\/prune-deps\.ts ([\w@/ -]+?) && npm cache clean --force$/m.exec(dockerfile);
    assert.ok(prune, 'the deps stage prunes node_modules');
    assert.deepEqual(prune[1]!.split(' '), [...UNBUNDLED_PACKAGES], 'down to the packages the bundle leaves out');
    assert.match(dockerfile, /^COPY scripts\/prune-deps\.ts \.\/scripts\/$/m);
    mkdirSync(join(app, 'scripts'));
    copyFileSync(join(PROJECT_DIR, 'scripts/prune-deps.ts'), join(app, 'scripts/prune-deps.ts'));
    await runOk('node', ['scripts/prune-deps.ts', ...UNBUNDLED_PACKAGES], { cwd: app, env: { PATH: process.env.PATH } });
    rmSync(join(app, 'scripts'), { recursive: true });
    for (const gone of ['@kubernetes', '@aws-sdk', 'undici', 'prom-client'])
      assert.ok(!existsSync(join(app, 'node_modules', gone)), `${gone} is in the bundle, not in the image's node_modules`);
    assert.match(dockerfile, /^RUN npm run build$/m);
    assert.equal(
      JSON.parse(readFileSync(join(PROJECT_DIR, 'package.json'), 'utf8')).scripts.build,
      'tsc -p tsconfig.build.json && node --import tsx scripts/build.ts',
    );
    await bundleController(join(app, 'dist'));
    assert.deepEqual(readdirSync(join(app, 'dist')), ['src'], 'the build holds the controller only');
    assert.deepEqual(readdirSync(join(app, 'dist/src')).sort(), ['cli.js', 'cli.js.LEGAL.txt', 'cli.js.map'], 'one bundle, its source map and its licences');
    for (const name of UNBUNDLED_PACKAGES)
      assert.ok(existsSync(join(app, 'node_modules', name)), `${name}, left out of the bundle, is a production dependency`);

    const help = await run('node', [...entrypoint.slice(1), ...cmd, '--help'], { cwd: app, env: { PATH: process.env.PATH, NODE_ENV: 'production' } });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /usage: spot-orchestrator/);

    // The console format runs pino-pretty in a worker thread that loads it by name from node_modules.
    const consoleRun = spawn('node', [...entrypoint.slice(1), 'run'], {
      cwd: app,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        LOG_FORMAT: 'console',
        KUBECONFIG: t.ground.kubeconfig,
        MODE: 'namespace',
        NAMESPACE: 'default',
        SQS_QUEUE_URL: 'http://127.0.0.1:9/000000000000/none',
        AWS_REGION: t.ground.region,
        METRICS_PORT: String(await freePort()),
        ALERTS_ENABLED: 'false',
      },
    });
    let consoleOutput = '';
    consoleRun.stdout.on('data', (c: Buffer) => (consoleOutput += c.toString()));
    consoleRun.stderr.on('data', (c: Buffer) => (consoleOutput += c.toString()));
    try {
      await eventually(
        'a coloured log line from pino-pretty',
        async () => (consoleOutput.includes(`${String.fromCharCode(27)}[32mINFO`) ? true : undefined),
        30_000,
      );
    } finally {
      consoleRun.kill('SIGKILL');
    }

    const namespace = await createNamespace(t, 'ship-img');
    const queueName = uniqueName('imgq');
    const { queueUrl } = await ensureQueueAndRule(t.ground, queueName);
    const port = await freePort();
    const child = spawn('node', [...entrypoint.slice(1), ...cmd], {
      cwd: app,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        // As the image runs it: its ENV (production, no instance metadata, the glibc tunables).
        ...image.env,
        PATH: process.env.PATH,
        KUBECONFIG: t.ground.kubeconfig,
        MODE: 'namespace',
        NAMESPACE: namespace,
        SQS_QUEUE_URL: queueUrl,
        AWS_REGION: t.ground.region,
        AWS_ENDPOINT_URL_SQS: t.ground.sqsEndpoint,
        AWS_ACCESS_KEY_ID: 'testground',
        AWS_SECRET_ACCESS_KEY: 'testground',
        METRICS_PORT: String(port),
        ALERTS_ENABLED: 'false',
      },
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await eventually('/readyz to answer 200', async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 ? true : undefined), 30_000);
      assert.match(
        output,
        /^\{"level":"info","time":"[^"]+Z",.*"message":"controller started"/m,
        "JSON logs in the Go original's shape when stdout is not a terminal",
      );
      const stoppedAt = Date.now();
      child.kill('SIGTERM');
      assert.equal(await exited, 0, output);
      assert.ok(Date.now() - stoppedAt < 25_000, 'SIGTERM ends a long poll within its wait');
      assert.match(output, /"signal":"SIGTERM".*draining in-flight work and stopping/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await removeQueueAndRule(t.ground, queueName, queueUrl).catch(() => undefined);
      await deleteNamespace(t, namespace);
    }
  });
});

/** The files `run` loads to act: the controller and leader election, and everything they import. */
function controllerSources(): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(/from\s+'(\.{1,2}\/[^']+)\.js'/g)) visit(join(file, '..', `${m[1]}.ts`));
  };
  visit(join(PROJECT_DIR, 'src/manager.ts'));
  visit(join(PROJECT_DIR, 'src/kube/leader-election.ts'));
  return [...seen];
}

/**
 * "resource:verb" for every Kubernetes API call in that code (client-node method names: listNode,
 * patchNamespacedDeployment, ...). A list feeds an informer, which also watches.
 */
function kubeCallsOfTheController(): string[] {
  const verbs: Record<string, string[]> = {
    list: ['list', 'watch'],
    read: ['get'],
    patch: ['patch'],
    create: ['create'],
    replace: ['update'],
    delete: ['delete'],
  };
  const calls = new Set<string>();
  for (const file of controllerSources()) {
    for (const m of readFileSync(file, 'utf8').matchAll(
      /\b(?:core|apps|discovery|api)\.(list|read|patch|create|replace|delete)(?:Namespaced)?([A-Z]\w*?)(?:ForAllNamespaces)?\(/g,
    )) {
      for (const verb of verbs[m[1]!]!) calls.add(`${m[2]!.toLowerCase()}s:${verb}`);
    }
  }
  return [...calls].sort();
}

/** SQS API calls the controller makes: every *Command from @aws-sdk/client-sqs in the code `run` loads. */
function sqsCallsOfTheController(): string[] {
  const calls = new Set<string>();
  for (const file of controllerSources()) {
    for (const m of readFileSync(file, 'utf8').matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'@aws-sdk\/client-sqs'/g)) {
      for (const name of m[1]!.split(',').map((n) => n.trim())) if (/^[A-Z]\w*Command$/.test(name)) calls.add(name.replace(/Command$/, ''));
    }
  }
  return [...calls].sort();
}

/** IAM authorizes SQS batch calls with the single call's action. */
const iamActionsFor = (calls: string[]) => [...new Set(calls.map((c) => `sqs:${c.replace(/Batch$/, '')}`))].sort();

describe('AWS setup', () => {
  let aws: string;
  let env: NodeJS.ProcessEnv;
  const sqs = new SQSClient(awsClientConfig(t.ground));
  const events = new EventBridgeClient(awsClientConfig(t.ground));
  before(async () => {
    aws = await awsCliBinary();
    env = {
      ...process.env,
      AWS_CLI: aws,
      AWS_ENDPOINT_URL: t.ground.sqsEndpoint,
      AWS_ACCESS_KEY_ID: 'testground',
      AWS_SECRET_ACCESS_KEY: 'testground',
      AWS_REGION: t.ground.region,
      AWS_DEFAULT_REGION: t.ground.region,
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    };
  });
  const awsJson = async (args: string[]) =>
    JSON.parse((await runOk(aws, ['--endpoint-url', t.ground.sqsEndpoint, '--output', 'json', ...args], { env })).stdout);

  /** Publishes a spot interruption warning for a made-up instance and waits for it in the queue. */
  async function eventReaches(queueUrl: string): Promise<void> {
    const instanceId = newInstanceId();
    await publishEc2Events(t.ground, [
      { detailType: 'EC2 Spot Instance Interruption Warning', instanceId, zone: 'us-east-1a', detail: { 'instance-action': 'terminate' }, time: new Date() },
    ]);
    await eventually(
      `the warning for ${instanceId} in ${queueUrl}`,
      async () => {
        const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
        for (const m of out.Messages ?? []) {
          const parsed = parseMessage(m.Body ?? '');
          await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: [{ Id: '0', ReceiptHandle: m.ReceiptHandle! }] }));
          if (parsed.ok && parsed.event.kind === 'spot_interrupted' && parsed.event.instanceIds.includes(instanceId)) return true;
          if (parsed.ok && parsed.event.instanceIds.includes(instanceId)) throw new Error(`parsed as ${parsed.event.kind}`);
        }
        return undefined;
      },
      20_000,
    );
  }

  it('the rule forwards state changes to stopping, stopped, shutting-down and terminated, and not pending or running', async () => {
    const queueName = uniqueName('stateq');
    const { queueUrl } = await ensureQueueAndRule(t.ground, queueName);
    try {
      const ids = Object.fromEntries(['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'].map((state) => [state, newInstanceId()]));
      // One batch, the acted-on states last: moto delivers a batch in order, so once they are in
      // the queue, a pending or running event let through would be there too.
      await publishEc2Events(
        t.ground,
        Object.entries(ids).map(([state, instanceId]) => ({
          detailType: 'EC2 Instance State-change Notification' as const,
          instanceId,
          zone: 'us-east-1a',
          detail: { state },
          time: new Date(),
        })),
      );
      const seen = new Set<string>();
      await eventually(
        'the four acted-on state changes in the queue',
        async () => {
          const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
          for (const m of out.Messages ?? []) {
            const parsed = parseMessage(m.Body ?? '');
            await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: [{ Id: '0', ReceiptHandle: m.ReceiptHandle! }] }));
            if (parsed.ok && parsed.event.kind === 'state_change') seen.add(parsed.event.state);
          }
          return ['stopping', 'stopped', 'shutting-down', 'terminated'].every((state) => seen.has(state)) ? true : undefined;
        },
        20_000,
      );
      const rest = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      for (const m of rest.Messages ?? []) {
        const parsed = parseMessage(m.Body ?? '');
        if (parsed.ok && parsed.event.kind === 'state_change') seen.add(parsed.event.state);
      }
      assert.deepEqual([...seen].sort(), ['shutting-down', 'stopped', 'stopping', 'terminated']);
      // The other kinds still pass the rule.
      await eventReaches(queueUrl);
    } finally {
      await removeQueueAndRule(t.ground, queueName, queueUrl).catch(() => undefined);
    }
  });

  it('grants exactly the SQS actions the controller calls', () => {
    const calls = sqsCallsOfTheController();
    assert.ok(calls.includes('ReceiveMessage'), `found ${calls.join(', ')}`);
    const script = readFileSync(join(PROJECT_DIR, 'deploy/aws/aws-setup.sh'), 'utf8');
    const policy = /"Action": (\[[^\]]*\])/.exec(script);
    assert.deepEqual((JSON.parse(policy![1]!) as string[]).sort(), iamActionsFor(calls), `the controller calls ${calls.join(', ')}`);
  });

  const SETUP = join(PROJECT_DIR, 'deploy/aws/aws-setup.sh');
  const outputsOf = (stdout: string): Record<string, string> =>
    Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]),
    );
  /** The trust policy of a role, as the CLI shows it (decoded) or as the server keeps it (URL-encoded). */
  const trustOf = async (roleName: string) => {
    const role = await awsJson(['iam', 'get-role', '--role-name', roleName]);
    const doc = role.Role.AssumeRolePolicyDocument;
    return typeof doc === 'string' ? JSON.parse(decodeURIComponent(doc)) : doc;
  };
  interface PolicyStatement {
    Sid?: string;
    Effect: string;
    Principal: unknown;
    Action: string;
    Resource: string;
    Condition?: Record<string, Record<string, string>>;
  }
  const queuePolicyOf = async (queueUrl: string) =>
    JSON.parse((await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['Policy'] }))).Attributes!.Policy!) as {
      Statement: PolicyStatement[];
    };
  /**
   * Only the rule may send: an Allow for EventBridge from the rule, and a Deny of sqs:SendMessage (and
   * nothing else, so the account keeps administering the queue) for any sender that is not the rule.
   * The local server does not enforce queue policies (a direct SendMessage is accepted there), so this
   * checks the document; AWS evaluates it.
   */
  const assertOnlyTheRuleSends = (policy: { Statement: PolicyStatement[] }, queueArn: string, ruleArn: string) => {
    const allow = policy.Statement.find((x) => x.Effect === 'Allow')!;
    assert.deepEqual(allow.Principal, { Service: 'events.amazonaws.com' });
    assert.equal(allow.Action, 'sqs:SendMessage');
    assert.equal(allow.Condition?.ArnEquals?.['aws:SourceArn'], ruleArn, 'only our rule may send');
    const deny = policy.Statement.filter((x) => x.Effect === 'Deny' && x.Condition?.ArnNotEquals !== undefined);
    assert.deepEqual(deny, [
      {
        Sid: 'DenySendersOtherThanTheRule',
        Effect: 'Deny',
        Principal: '*',
        Action: 'sqs:SendMessage',
        Resource: queueArn,
        Condition: { ArnNotEquals: { 'aws:SourceArn': ruleArn } },
      },
    ]);
  };

  it('aws-setup.sh creates the queue, DLQ, policy, rule, target and IRSA role named after the cluster and Region; an EC2 event reaches the queue; re-runs; --delete removes it all', async () => {
    const cluster = uniqueName('setup');
    const name = `spot-fargate-orchestrator-${cluster}-${t.ground.region}`;
    const policyFile = join(tempDir('iam'), 'policy.json');
    const issuer = 'oidc.eks.us-east-1.amazonaws.com/id/TESTGROUND';
    const setup = () =>
      runOk('bash', [SETUP, '--cluster-name', cluster, '--oidc-issuer', `https://${issuer}`, '--namespace', 'ops', '--policy-file', policyFile], { env });
    const first = await setup();
    const outputs = outputsOf(first.stdout);
    try {
      assert.equal(outputs.QUEUE_ARN, `arn:aws:sqs:${t.ground.region}:${t.ground.account}:${name}`);
      assert.equal(outputs.DLQ_ARN, `arn:aws:sqs:${t.ground.region}:${t.ground.account}:${name}-dlq`);
      assert.equal(outputs.RULE_ARN, `arn:aws:events:${t.ground.region}:${t.ground.account}:rule/${name}`);
      assert.equal(outputs.POLICY_ARN, `arn:aws:iam::${t.ground.account}:policy/${name}`);
      assert.equal(outputs.ROLE_ARN, `arn:aws:iam::${t.ground.account}:role/${name}`);
      const attrs = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: outputs.QUEUE_URL, AttributeNames: ['All'] }))).Attributes!;
      assert.equal(attrs.MessageRetentionPeriod, '300');
      assert.equal(attrs.VisibilityTimeout, '30');
      assert.equal(attrs.ReceiveMessageWaitTimeSeconds, '20');
      const redrive = JSON.parse(attrs.RedrivePolicy!) as { deadLetterTargetArn: string; maxReceiveCount: number | string };
      assert.equal(redrive.deadLetterTargetArn, outputs.DLQ_ARN);
      assert.equal(Number(redrive.maxReceiveCount), 5);
      assertOnlyTheRuleSends(JSON.parse(attrs.Policy!), outputs.QUEUE_ARN!, outputs.RULE_ARN!);
      const dlq = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: outputs.DLQ_URL, AttributeNames: ['MessageRetentionPeriod'] }))).Attributes!;
      assert.ok(Number(dlq.MessageRetentionPeriod) > 300, 'the dead-letter queue keeps messages longer than the queue');

      const rule = await events.send(new DescribeRuleCommand({ Name: name }));
      assert.equal(rule.Arn, outputs.RULE_ARN);
      assert.equal(rule.State, 'ENABLED');
      assert.deepEqual(JSON.parse(rule.EventPattern!), JSON.parse(readFileSync(EVENT_PATTERN_FILE, 'utf8')));
      const targets = await events.send(new ListTargetsByRuleCommand({ Rule: name }));
      assert.deepEqual(
        targets.Targets?.map((x) => x.Arn),
        [outputs.QUEUE_ARN],
      );

      const policyDoc = JSON.parse(readFileSync(policyFile, 'utf8')) as { Statement: { Action: string[]; Resource: string | string[] }[] };
      assert.deepEqual(policyDoc.Statement[0]!.Action.sort(), iamActionsFor(sqsCallsOfTheController()));
      assert.equal(policyDoc.Statement[0]!.Resource, outputs.QUEUE_ARN);
      // The preflight's read of this cluster's Fargate profiles, and no other cluster's.
      assert.deepEqual(policyDoc.Statement[1]!.Action.sort(), ['eks:DescribeFargateProfile', 'eks:ListFargateProfiles']);
      assert.ok(
        (policyDoc.Statement[1]!.Resource as string[]).every((r) => r.includes(`/${cluster}`)),
        JSON.stringify(policyDoc.Statement[1]),
      );
      const attached = await awsJson(['iam', 'list-attached-role-policies', '--role-name', name]);
      assert.deepEqual(
        attached.AttachedPolicies.map((p: { PolicyArn: string }) => p.PolicyArn),
        [outputs.POLICY_ARN],
      );
      const trust = await trustOf(name);
      assert.equal(trust.Statement[0].Condition.StringEquals[`${issuer}:sub`], 'system:serviceaccount:ops:spot-fargate-orchestrator');

      await eventReaches(outputs.QUEUE_URL!);

      const again = await setup();
      assert.equal(again.stdout, first.stdout, 're-running changes nothing it reports');
      await eventReaches(outputs.QUEUE_URL!);
    } finally {
      await runOk('bash', [SETUP, '--cluster-name', cluster, '--oidc-issuer', `https://${issuer}`, '--delete'], { env });
    }
    await assert.rejects(sqs.send(new GetQueueUrlCommand({ QueueName: name })));
    await assert.rejects(sqs.send(new GetQueueUrlCommand({ QueueName: `${name}-dlq` })));
    await assert.rejects(events.send(new DescribeRuleCommand({ Name: name })));
    assert.notEqual((await run(aws, ['--endpoint-url', t.ground.sqsEndpoint, 'iam', 'get-role', '--role-name', name], { env })).code, 0);
  });

  it('aws-setup.sh gives two clusters distinct names (a long cluster name shortened with its hash, within the 64-character limit), and both keep their queue, rule and role', async () => {
    const short = uniqueName('east');
    // Longer than 23 characters: written as its first 14, "-", and 8 hex digits of its SHA-256.
    const long = `${uniqueName('payments-production')}-blue-green`;
    const issuers = { [short]: 'oidc.eks.us-east-1.amazonaws.com/id/SHORT', [long]: 'oidc.eks.us-east-1.amazonaws.com/id/LONG' };
    const setup = async (cluster: string) =>
      outputsOf((await runOk('bash', [SETUP, '--cluster-name', cluster, '--oidc-issuer', `https://${issuers[cluster]}`], { env })).stdout);
    const names = async (cluster: string) => outputsOf((await runOk('bash', [SETUP, '--cluster-name', cluster, '--print-names'], { env })).stdout);
    const a = await setup(short);
    try {
      const b = await setup(long);
      try {
        const longNames = await names(long);
        const hash = createHash('sha256').update(long).digest('hex').slice(0, 8);
        assert.equal(longNames.NAME_TOKEN, `${long.slice(0, 14)}-${hash}`);
        assert.equal(longNames.NAME, `spot-fargate-orchestrator-${long.slice(0, 14)}-${hash}-${t.ground.region}`);
        assert.ok(longNames.NAME!.length <= 64);
        assert.equal((await names(long)).NAME, longNames.NAME, 'deterministic');
        assert.equal((await names(short)).NAME, `spot-fargate-orchestrator-${short}-${t.ground.region}`);
        assert.equal(b.QUEUE_ARN!.split(':').pop(), longNames.NAME);
        for (const key of ['QUEUE_URL', 'DLQ_URL', 'RULE_ARN', 'POLICY_ARN', 'ROLE_ARN']) assert.notEqual(a[key], b[key], key);

        // The second setup left the first alone: its role trusts its own cluster, its queue its own rule.
        for (const [cluster, out] of [
          [short, a],
          [long, b],
        ] as const) {
          const trust = await trustOf(out.ROLE_ARN!.split('/').pop()!);
          assert.equal(trust.Statement[0].Principal.Federated, `arn:aws:iam::${t.ground.account}:oidc-provider/${issuers[cluster]}`, cluster);
          assertOnlyTheRuleSends(await queuePolicyOf(out.QUEUE_URL!), out.QUEUE_ARN!, out.RULE_ARN!);
          // EventBridge fans every event out to each rule: both queues get it.
          await eventReaches(out.QUEUE_URL!);
        }
      } finally {
        await runOk('bash', [SETUP, '--cluster-name', long, '--oidc-issuer', `https://${issuers[long]}`, '--delete'], { env });
      }
      await eventReaches(a.QUEUE_URL!);
    } finally {
      await runOk('bash', [SETUP, '--cluster-name', short, '--oidc-issuer', `https://${issuers[short]}`, '--delete'], { env });
    }
  });

  it("aws-setup.sh refuses, changing nothing, to take over a role whose trust names another cluster's OIDC provider", async () => {
    const cluster = uniqueName('taken');
    const name = `spot-fargate-orchestrator-${cluster}-${t.ground.region}`;
    const theirs = 'oidc.eks.us-east-1.amazonaws.com/id/THEIRS';
    const trustFile = join(tempDir('trust'), 'trust.json');
    writeFileSync(
      trustFile,
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Federated: `arn:aws:iam::${t.ground.account}:oidc-provider/${theirs}` },
            Action: 'sts:AssumeRoleWithWebIdentity',
            Condition: { StringEquals: { [`${theirs}:sub`]: 'system:serviceaccount:ops:spot-fargate-orchestrator' } },
          },
        ],
      }),
    );
    // Another installation's role, of the very name this cluster's would have.
    await awsJson(['iam', 'create-role', '--role-name', name, '--assume-role-policy-document', `file://${trustFile}`]);
    try {
      const refused = await run('bash', [SETUP, '--cluster-name', cluster, '--oidc-issuer', 'https://oidc.eks.us-east-1.amazonaws.com/id/OURS'], { env });
      assert.equal(refused.code, 3, refused.stderr);
      assert.equal(refused.stdout, '', 'no outputs: nothing was made');
      assert.match(refused.stderr, new RegExp(`refusing to change IAM role ${name}: its trust policy names the OIDC provider`));
      assert.match(refused.stderr, new RegExp(`${theirs.replaceAll('/', '\\/')}\\n`));
      assert.match(refused.stderr, /Nothing was changed/);
      assert.equal((await trustOf(name)).Statement[0].Principal.Federated, `arn:aws:iam::${t.ground.account}:oidc-provider/${theirs}`, 'trust unchanged');
      const attached = await awsJson(['iam', 'list-attached-role-policies', '--role-name', name]);
      assert.deepEqual(attached.AttachedPolicies, []);
      await assert.rejects(sqs.send(new GetQueueUrlCommand({ QueueName: name })), 'no queue created');
      await assert.rejects(sqs.send(new GetQueueUrlCommand({ QueueName: `${name}-dlq` })), 'no dead-letter queue created');
      await assert.rejects(events.send(new DescribeRuleCommand({ Name: name })), 'no rule created');
      assert.notEqual(
        (
          await run(aws, ['--endpoint-url', t.ground.sqsEndpoint, 'iam', 'get-policy', '--policy-arn', `arn:aws:iam::${t.ground.account}:policy/${name}`], {
            env,
          })
        ).code,
        0,
        'no IAM policy created',
      );
    } finally {
      await run(aws, ['--endpoint-url', t.ground.sqsEndpoint, 'iam', 'delete-role', '--role-name', name], { env });
    }
  });

  it('cloudformation.yaml passes cfn-lint, matches the script, and deploys on the local server with an event reaching its queue', async () => {
    const template = join(PROJECT_DIR, 'deploy/aws/cloudformation.yaml');
    const { stdout: motoVenv } = await runOk('bash', ['-c', 'source testground/scripts/lib.sh && echo "$MOTO_VENV"']);
    const venv = motoVenv.trim();
    const lint = await run(join(venv, 'bin/cfn-lint'), [template]);
    assert.equal(lint.code, 0, `${lint.stdout}${lint.stderr}`);

    // YAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub ...) as JSON, by PyYAML from moto's venv.
    const toJson = `import json, sys, yaml
class L(yaml.SafeLoader): pass
def tag(loader, suffix, node):
    name = 'Ref' if suffix == 'Ref' else 'Fn::' + suffix
    if isinstance(node, yaml.ScalarNode):
        v = loader.construct_scalar(node)
        if suffix == 'GetAtt': v = v.split('.', 1)
    elif isinstance(node, yaml.SequenceNode): v = loader.construct_sequence(node, deep=True)
    else: v = loader.construct_mapping(node, deep=True)
    return {name: v}
L.add_multi_constructor('!', tag)
print(json.dumps(yaml.load(open(sys.argv[1]), Loader=L)))`;
    const cfn = JSON.parse((await runOk(join(venv, 'bin/python'), ['-c', toJson, template])).stdout) as {
      Resources: Record<string, { Type: string; Properties: Record<string, any> }>;
      Parameters: Record<string, { Default?: unknown }>;
    };
    const types = Object.values(cfn.Resources)
      .map((r) => r.Type)
      .sort();
    assert.deepEqual(types, ['AWS::Events::Rule', 'AWS::IAM::ManagedPolicy', 'AWS::IAM::Role', 'AWS::SQS::Queue', 'AWS::SQS::Queue', 'AWS::SQS::QueuePolicy']);
    assert.deepEqual(
      cfn.Resources.InterruptionRule!.Properties.EventPattern,
      JSON.parse(readFileSync(EVENT_PATTERN_FILE, 'utf8')),
      'the same pattern as event-pattern.json',
    );
    assert.equal(cfn.Parameters.MessageRetentionPeriod!.Default, 300);
    assert.equal(cfn.Parameters.VisibilityTimeout!.Default, 30);
    assert.equal(cfn.Parameters.MaxReceiveCount!.Default, 5);
    assert.deepEqual(cfn.Resources.ControllerPolicy!.Properties.PolicyDocument.Statement[0].Action.sort(), iamActionsFor(sqsCallsOfTheController()));
    const ruleArn = { 'Fn::GetAtt': ['InterruptionRule', 'Arn'] };
    assert.deepEqual(
      cfn.Resources.InterruptionQueuePolicy!.Properties.PolicyDocument.Statement.find((x: { Sid: string }) => x.Sid === 'DenySendersOtherThanTheRule'),
      {
        Sid: 'DenySendersOtherThanTheRule',
        Effect: 'Deny',
        Principal: '*',
        Action: 'sqs:SendMessage',
        Resource: { 'Fn::GetAtt': ['InterruptionQueue', 'Arn'] },
        Condition: { ArnNotEquals: { 'aws:SourceArn': ruleArn } },
      },
      'senders other than the rule are denied, and only sending',
    );

    // The stack's ClusterName is the cluster; every name is the one aws-setup.sh derives for it.
    const stack = uniqueName('cfn');
    const { NAME: name } = outputsOf((await runOk('bash', [SETUP, '--cluster-name', stack, '--print-names'], { env })).stdout);
    assert.equal(name, `spot-fargate-orchestrator-${stack}-${t.ground.region}`);
    await runOk(
      aws,
      [
        '--endpoint-url',
        t.ground.sqsEndpoint,
        'cloudformation',
        'create-stack',
        '--stack-name',
        stack,
        '--template-body',
        `file://${template}`,
        '--capabilities',
        'CAPABILITY_NAMED_IAM',
        '--parameters',
        `ParameterKey=ClusterName,ParameterValue=${stack}`,
        `ParameterKey=OidcProvider,ParameterValue=oidc.eks.us-east-1.amazonaws.com/id/TESTGROUND`,
      ],
      { env },
    );
    try {
      const outputs = await eventually(
        'the stack created',
        async () => {
          const described = await awsJson(['cloudformation', 'describe-stacks', '--stack-name', stack]);
          const s = described.Stacks[0];
          if (/FAILED|ROLLBACK/.test(s.StackStatus)) throw new Error(`stack ${s.StackStatus}: ${s.StackStatusReason}`);
          return s.StackStatus === 'CREATE_COMPLETE'
            ? Object.fromEntries(s.Outputs.map((o: { OutputKey: string; OutputValue: string }) => [o.OutputKey, o.OutputValue]))
            : undefined;
        },
        60_000,
        500,
      );
      assert.equal(outputs.RoleArn, `arn:aws:iam::${t.ground.account}:role/${name}`);
      assert.equal(outputs.RuleArn, `arn:aws:events:${t.ground.region}:${t.ground.account}:rule/${name}`);
      assert.equal(outputs.PolicyArn, `arn:aws:iam::${t.ground.account}:policy/${name}`);
      const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
      await sqs.send(new GetQueueUrlCommand({ QueueName: `${name}-dlq` }));
      const attrs = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] }))).Attributes!;
      assert.equal(attrs.MessageRetentionPeriod, '300');
      assert.equal(Number((JSON.parse(attrs.RedrivePolicy!) as { maxReceiveCount: number }).maxReceiveCount), 5);
      await eventReaches(QueueUrl!);
    } finally {
      await runOk(aws, ['--endpoint-url', t.ground.sqsEndpoint, 'cloudformation', 'delete-stack', '--stack-name', stack], { env });
      await eventually(
        'the stack deleted',
        async () =>
          (await sqs.send(new GetQueueUrlCommand({ QueueName: name })).then(
            () => false,
            () => true,
          ))
            ? true
            : undefined,
        30_000,
        500,
      );
      // The local server's stack deletion leaves the managed policy behind (AWS deletes it).
      await run(aws, ['--endpoint-url', t.ground.sqsEndpoint, 'iam', 'delete-policy', '--policy-arn', `arn:aws:iam::${t.ground.account}:policy/${name}`], {
        env,
      });
    }
  });
});

describe('examples', () => {
  it('every config example loads, and config-namespace.toml names every setting but the secret and single-mode ones', async () => {
    const files = readdirSync(EXAMPLES_DIR)
      .filter((f) => f.endsWith('.toml'))
      .sort();
    assert.deepEqual(files, ['config-minimal.toml', 'config-namespace.toml', 'config-single.toml']);
    for (const file of files) {
      const tomlText = readFileSync(join(EXAMPLES_DIR, file), 'utf8');
      const config = loadConfig({ env: {}, tomlText, tomlPath: file });
      assert.equal(config.kubernetes.mode, file === 'config-single.toml' ? 'single' : 'namespace', file);
    }
    const { parse } = await import('smol-toml');
    const full = parse(readFileSync(join(EXAMPLES_DIR, 'config-namespace.toml'), 'utf8')) as Record<string, Record<string, unknown>>;
    const named = Object.entries(full).flatMap(([s, kv]) => Object.keys(kv).map((k) => `${s}.${k}`));
    // The wider scopes exclude kubernetes.namespace, which the example sets: they are shown as comments.
    const omitted = [
      'alerts.slack_webhook_url',
      'aws.endpoint_url',
      'kubernetes.deployment_name',
      'kubernetes.service_name',
      'kubernetes.namespaces',
      'kubernetes.namespace_selector',
    ];
    const example = readFileSync(join(EXAMPLES_DIR, 'config-namespace.toml'), 'utf8');
    assert.match(example, /^# namespaces = \["production", "payments"\]$/m);
    assert.match(example, /^# namespace_selector = "/m);
    assert.deepEqual(
      named.sort(),
      configKeys()
        .filter((k) => !omitted.includes(k))
        .sort(),
    );
  });

  describe('YAML examples applied to the API server', () => {
    let namespace: string;
    before(async () => {
      namespace = await createNamespace(t, 'ship-ex');
    });
    after(async () => {
      await deleteNamespace(t, namespace);
    });

    for (const file of ['deployment-with-opt-in.yaml', 'per-deployment-config-example.yaml']) {
      it(`${file} applies (server-side) and every Deployment in it is opted in with valid overrides`, async () => {
        const path = join(EXAMPLES_DIR, file);
        const out = await kubectl(t, ['apply', '--server-side', '--field-manager=shipping-test', '-n', namespace, '-f', path]);
        assert.equal(out.code, 0, `${out.stdout}\n${out.stderr}`);
        const config = loadConfig({ env: { MODE: 'namespace', NAMESPACE: namespace, SQS_QUEUE_URL: 'http://127.0.0.1:1/q' } });
        const deployments = ofKind<V1Deployment>(parseManifests(readFileSync(path, 'utf8')), 'Deployment');
        assert.ok(deployments.length > 0);
        for (const example of deployments) {
          const live = await t.apps.readNamespacedDeployment({ name: example.metadata!.name!, namespace });
          assert.ok(isOptedIn(config, live.metadata?.annotations), `${live.metadata?.name} opted in`);
          const { invalid } = resolveDeploymentSettings(config, live.metadata?.annotations);
          assert.deepEqual(invalid, [], `${live.metadata?.name}: every override parses`);
        }
      });
    }
  });
});

const SERVICE_MONITOR_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'servicemonitors.monitoring.coreos.com' },
  spec: {
    group: 'monitoring.coreos.com',
    names: { kind: 'ServiceMonitor', listKind: 'ServiceMonitorList', plural: 'servicemonitors', singular: 'servicemonitor' },
    scope: 'Namespaced',
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                required: ['selector', 'endpoints'],
                properties: {
                  selector: { type: 'object', properties: { matchLabels: { type: 'object', additionalProperties: { type: 'string' } } } },
                  namespaceSelector: { type: 'object', properties: { any: { type: 'boolean' }, matchNames: { type: 'array', items: { type: 'string' } } } },
                  endpoints: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: { port: { type: 'string' }, path: { type: 'string' }, interval: { type: 'string' }, scrapeTimeout: { type: 'string' } },
                    },
                  },
                },
              },
            },
          },
        },
      },
    ],
  },
};
