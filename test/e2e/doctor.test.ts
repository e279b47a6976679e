// The preflight, `spot-orchestrator doctor`, against the ground and moto's EKS: it passes under the
// chart's own RBAC with a Fargate profile that selects the namespace; it fails naming the namespace a
// profile does not select, and naming the verb the RBAC lacks; it skips the Fargate check, saying
// why, where EKS cannot be asked. The controller runs the same checks at start and logs them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CreateClusterCommand, CreateFargateProfileCommand, DeleteClusterCommand, DeleteFargateProfileCommand, EKSClient } from '@aws-sdk/client-eks';
import type { KubernetesObject, V1ConfigMap, V1Role } from '@kubernetes/client-node';
import { ensureQueueAndRule, removeQueueAndRule } from '../../testground/src/aws.js';
import { awsClientConfig } from '../../testground/src/ground.js';
import { freePort } from '../../testground/src/net.js';
import { createNamespace, deleteNamespace, eventually, testGround, uniqueName } from '../support/ground.js';
import { spawnController } from '../support/process.js';
import { kubectl, ofKind, parseManifests, renderChart, serviceAccountKubeconfig, tempDir, toManifest } from '../support/shipping.js';

const t = testGround();
const exec = promisify(execFile);
const ACCOUNT_ROLE = 'arn:aws:iam::123456789012:role/eks';

describe('spot-orchestrator doctor', () => {
  const eks = new EKSClient(awsClientConfig(t.ground));
  const cluster = uniqueName('eks');
  let controllerNamespace: string;
  let app: string;
  let other: string;
  let queueName: string;
  let queueUrl: string;
  let rbac: KubernetesObject[] = [];
  let saKubeconfig: string;
  let configFile: string;

  /** doctor as an operator runs it; never throws, so the exit code is asserted. */
  const doctor = (env: NodeJS.ProcessEnv, kubeconfig = saKubeconfig) =>
    exec(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'doctor'], {
      cwd: new URL('../..', import.meta.url).pathname,
      env: { ...process.env, ...baseEnv(kubeconfig), ...env },
    }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
  const baseEnv = (kubeconfig: string): NodeJS.ProcessEnv => ({
    KUBECONFIG: kubeconfig,
    CONFIG_FILE: configFile,
    // What the chart's Deployment sets from the downward API.
    POD_NAMESPACE: controllerNamespace,
    AWS_REGION: t.ground.region,
    AWS_ENDPOINT_URL_SQS: t.ground.sqsEndpoint,
    // The SDK's own variable for the EKS endpoint: how a user points it at another endpoint too.
    AWS_ENDPOINT_URL_EKS: t.ground.sqsEndpoint,
    AWS_ACCESS_KEY_ID: 'testground',
    AWS_SECRET_ACCESS_KEY: 'testground',
    CLUSTER_NAME: cluster,
    LOG_FORMAT: 'json',
  });

  before(async () => {
    controllerNamespace = await createNamespace(t, 'doc-ctl');
    app = await createNamespace(t, 'doc-app');
    other = await createNamespace(t, 'doc-other');
    queueName = uniqueName('docq');
    ({ queueUrl } = await ensureQueueAndRule(t.ground, queueName));
    await eks.send(new CreateClusterCommand({ name: cluster, roleArn: ACCOUNT_ROLE, resourcesVpcConfig: { subnetIds: ['subnet-0a', 'subnet-0b'] } }));
    await eks.send(
      new CreateFargateProfileCommand({
        clusterName: cluster,
        fargateProfileName: 'spot-fallback',
        podExecutionRoleArn: 'arn:aws:iam::123456789012:role/pod-execution',
        subnets: ['subnet-0a', 'subnet-0b'],
        selectors: [{ namespace: app, labels: { 'compute-type': 'fargate' } }],
      }),
    );
    // The chart's own RBAC, ServiceAccount and config.toml, for the app namespace.
    const objects = parseManifests(
      await renderChart(uniqueName('doc'), controllerNamespace, {
        'config.kubernetes.namespace': app,
        'config.aws.sqs_queue_url': queueUrl,
        'config.aws.region': t.ground.region,
      }),
    );
    rbac = objects.filter((o) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(o.kind!));
    const applied = await kubectl(t, ['apply', '-f', '-'], toManifest(rbac));
    assert.equal(applied.code, 0, applied.stderr);
    const [sa] = ofKind(rbac, 'ServiceAccount');
    saKubeconfig = await serviceAccountKubeconfig(t, controllerNamespace, sa!.metadata!.name!);
    configFile = join(tempDir('doctor'), 'config.toml');
    writeFileSync(configFile, ofKind<V1ConfigMap>(objects, 'ConfigMap')[0]!.data!['config.toml']!);
  });
  after(async () => {
    // Cluster-scoped objects and the node-events Role in default outlive the namespaces.
    const outside = rbac.filter((o) => o.kind!.startsWith('Cluster') || o.metadata?.namespace === 'default');
    if (outside.length > 0) await kubectl(t, ['delete', '--ignore-not-found', '-f', '-'], toManifest(outside));
    await eks.send(new DeleteFargateProfileCommand({ clusterName: cluster, fargateProfileName: 'spot-fallback' })).catch(() => undefined);
    await eks.send(new DeleteClusterCommand({ name: cluster })).catch(() => undefined);
    await removeQueueAndRule(t.ground, queueName, queueUrl).catch(() => undefined);
    for (const ns of [controllerNamespace, app, other]) await deleteNamespace(t, ns);
  });

  it("passes under the chart's RBAC, with a Fargate profile that selects the namespace and a reachable queue", async () => {
    const out = await doctor({});
    assert.equal(out.code, 0, out.stdout + out.stderr);
    assert.match(
      out.stdout,
      new RegExp(
        `^ok {6}fargate profile: namespace ${app}: profile spot-fallback \\(ACTIVE\\) of cluster ${cluster} selects pods labelled compute-type=fargate$`,
        'm',
      ),
    );
    assert.match(out.stdout, new RegExp(`^ok {6}queue: ${queueUrl.replaceAll('.', '\\.')}: reachable: arn:aws:sqs:`, 'm'));
    assert.match(out.stdout, new RegExp(`^ok {6}rbac: namespace ${app}: allowed: .*patch deployments\\.apps`, 'm'));
    assert.match(out.stdout, /^ok {6}rbac: cluster-wide: allowed: get nodes, list nodes, watch nodes, patch nodes$/m);
    assert.match(
      out.stdout,
      new RegExp(`^ok {6}rbac: namespace ${controllerNamespace}: allowed: create secrets, get secrets/[a-z0-9-]+-record-key, create leases`, 'm'),
    );
    assert.match(out.stdout, /^all checks passed$/m);
  });

  it('fails naming the namespace no profile selects', async () => {
    // The admin's kubeconfig and no config file (it names one namespace): only the profile is wrong here.
    const out = await doctor({ CONFIG_FILE: '', MODE: 'namespace', NAMESPACES: `${app},${other}`, SQS_QUEUE_URL: queueUrl }, t.ground.kubeconfig);
    assert.equal(out.code, 1, out.stdout + out.stderr);
    assert.match(out.stdout, new RegExp(`^ok {6}fargate profile: namespace ${app}: `, 'm'));
    assert.match(
      out.stdout,
      new RegExp(
        `^FAILED {2}fargate profile: namespace ${other}: no ACTIVE Fargate profile of cluster ${cluster} selects pods labelled compute-type=fargate in ${other}`,
        'm',
      ),
    );
    assert.doesNotMatch(out.stdout, /^FAILED {2}(rbac|queue)/m);
    assert.match(out.stdout, /^1 check\(s\) FAILED$/m);
  });

  it('skips the Fargate check, saying why, without a cluster name or a reachable EKS endpoint', async () => {
    const unnamed = await doctor({ CLUSTER_NAME: '' });
    assert.equal(unnamed.code, 0, 'a skip is no failure');
    assert.match(unnamed.stdout, /^skipped fargate profile: cluster: aws\.cluster_name \(CLUSTER_NAME\) is not set/m);
    const away = await doctor({ AWS_ENDPOINT_URL_EKS: `http://127.0.0.1:${await freePort()}` });
    assert.equal(away.code, 0);
    assert.match(
      away.stdout,
      new RegExp(`^skipped fargate profile: cluster: the AWS endpoint for EKS cluster ${cluster} in ${t.ground.region} is unreachable`, 'm'),
    );
  });

  it('fails naming the verb the RBAC lacks; the controller logs the same at start and keeps running', async () => {
    const roles = ofKind<V1Role>(rbac, 'Role').filter((r) => r.metadata?.namespace === app);
    let dropped = false;
    for (const role of roles)
      for (const rule of role.rules ?? [])
        if (rule.resources?.includes('deployments') && rule.verbs.includes('patch')) {
          rule.verbs = rule.verbs.filter((v) => v !== 'patch');
          dropped = true;
        }
    assert.ok(dropped, 'the chart grants patch on deployments');
    assert.equal((await kubectl(t, ['apply', '-f', '-'], toManifest(roles))).code, 0);
    const out = await eventually('the narrower Role in force', async () => {
      const r = await doctor({});
      return r.code === 1 ? r : undefined;
    });
    assert.match(out.stdout, new RegExp(`^FAILED {2}rbac: namespace ${app}: not allowed: patch deployments\\.apps`, 'm'));
    assert.doesNotMatch(out.stdout, new RegExp(`^FAILED {2}rbac: namespace ${app}: not allowed: .*(get|list|watch) deployments`, 'm'));

    const controller = await spawnController(t, { ...(baseEnv(saKubeconfig) as Record<string, string>), LEADER_ELECT: 'false', LOG_LEVEL: 'info' });
    try {
      const line = await eventually(
        'the preflight failure in the log',
        async () =>
          controller
            .output()
            .split('\n')
            .find((l) => l.includes('"message":"preflight check failed"') && l.includes('"check":"rbac"')),
        60_000,
      );
      assert.match(JSON.parse(line).detail, /not allowed: patch deployments\.apps/);
      assert.ok(
        controller.output().includes('"message":"preflight check passed"') && controller.output().includes('"check":"fargate profile"'),
        'the Fargate profile check passed at start too',
      );
      await eventually('the queue check at start', async () => (controller.output().includes('"check":"queue"') ? true : undefined), 40_000);
      assert.equal(controller.child.exitCode, null, 'a failed check stops nothing');
    } finally {
      controller.child.kill('SIGTERM');
      await controller.exited;
    }
  });
});
