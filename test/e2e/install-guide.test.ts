// docs/install.md, followed literally on the local test ground: the AWS setup (deploy/aws/aws-setup.sh
// against the ground's SQS/EventBridge/IAM/EKS server), the helm install, the Pod Security label, the
// install check (doctor under the chart's ServiceAccount), an interruption survived, and the
// uninstall section step by step, after which nothing of the controller is left in the cluster or on
// AWS.
//
// The commands are the guide's own: every shell block marked `<!-- walkthrough: NAME -->` in
// docs/install.md is read from the file and run with bash, so a changed or broken command fails here.
// Only placeholders are replaced (SUBSTITUTIONS below says which, and why).
//
// What the ground cannot do, and what stands in for it:
// - KWOK runs no containers. The chart's Deployment is installed and its pods are scheduled (off spot,
//   as the chart's affinity requires) and reported Ready, but no controller process runs in them. The
//   controller runs instead as a local process, the guide's "from a checkout" path: under the chart's
//   ServiceAccount token (the kubeconfig the guide's install check builds), on the chart's config.toml
//   from the release's ConfigMap, as one of those pods would.
// - For the same reason the uninstall Job (whose image would run `recover --all --now`) cannot run:
//   its manifest is applied as a server-side dry run (the API server admits it in the namespace that
//   enforces the restricted profile), and the guide's "run it locally" form of the command does the work.
// - moto's EventBridge delivers events to SQS without their `account` field (AWS delivers the whole
//   event), and the controller drops an event that names no account. After the script has made the
//   rule and its target, the target is given EventBridge's whole-event template
//   (<aws.events.event.json>), which is what AWS delivers anyway; the rule, its pattern and the
//   target's queue stay the script's.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DescribeRuleCommand, EventBridgeClient, ListTargetsByRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { CoordinationV1Api, type V1Deployment, type V1Job, type V1Node } from '@kubernetes/client-node';
import { EXCLUDE_FROM_LB_LABEL, INTERRUPTED_TAINT_KEY, MANAGED_ANNOTATIONS, NODE_ANNOTATIONS, USER_ANNOTATIONS } from '../../src/state/annotations.js';
import { awsClientConfig } from '../../testground/src/ground.js';
import { InterruptionInjector, type Interruption } from '../../testground/src/injector.js';
import { eventually, isPodReady, podsOf, testGround, uniqueName } from '../support/ground.js';
import { spawnController, type ControllerProcess } from '../support/process.js';
import {
  awsCliBinary,
  helmBinary,
  kubectl,
  ofKind,
  PROJECT_DIR,
  parseManifests,
  type RunResult,
  run,
  runOk,
  tempDir,
  toManifest,
} from '../support/shipping.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const GUIDE = join(PROJECT_DIR, 'docs/install.md');
const EXAMPLE = join(PROJECT_DIR, 'examples/deployment-with-opt-in.yaml');

/** The names the guide uses for the release, its namespace and its objects: kept as they are. */
const RELEASE = 'spot-fargate-orchestrator';
const RELEASE_NAMESPACE = 'spot-fargate-orchestrator';
const INSTANCE_LABEL = `app.kubernetes.io/instance=${RELEASE}`;

/** The shell blocks the walkthrough runs, in the order it runs them. */
const BLOCKS = [
  'aws-setup',
  'fargate-profile',
  'helm-install',
  'pod-security',
  'check-install',
  'uninstall-stop',
  'uninstall-job',
  'uninstall-recover-local',
  'uninstall-kubernetes',
  'uninstall-aws',
] as const;
type BlockName = (typeof BLOCKS)[number];

/** Every `<!-- walkthrough: NAME -->` followed by a fenced block (indented in a list item or not). */
function walkthroughBlocks(markdown: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const m of markdown.matchAll(/^([ \t]*)<!-- walkthrough: ([\w-]+) -->\n\1```sh\n([\s\S]*?)\n\1```$/gm)) {
    const indent = m[1]!;
    assert.ok(!blocks.has(m[2]!), `docs/install.md marks two blocks "${m[2]}"`);
    blocks.set(
      m[2]!,
      m[3]!
        .split('\n')
        .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
        .join('\n'),
    );
  }
  return blocks;
}

/** What one walkthrough needs to fill the guide's placeholders. */
interface Values {
  region: string;
  account: string;
  cluster: string;
  appNamespace: string;
  registry: string;
  work: string;
  queueUrl?: string;
}

/**
 * The placeholders of the guide's commands and what the walkthrough puts in their place. Nothing else
 * in a command is changed. Each must be used by some block (so this table cannot go stale).
 */
const SUBSTITUTIONS: { placeholder: RegExp; value: (v: Values) => string; why: string; afterSetup?: true }[] = [
  { placeholder: /<registry>/g, value: (v) => v.registry, why: 'the registry the image was pushed to; KWOK pulls nothing' },
  { placeholder: /<account>/g, value: (v) => v.account, why: "the ground's AWS account (moto's)" },
  { placeholder: /<cluster>/g, value: (v) => v.cluster, why: 'the EKS cluster: a fresh one on the local server per run' },
  { placeholder: /\bmy-cluster\b/g, value: (v) => v.cluster, why: 'the example cluster name' },
  { placeholder: /\bus-east-1\b/g, value: (v) => v.region, why: "the example Region: the ground's" },
  { placeholder: /\bproduction\b/g, value: (v) => v.appNamespace, why: 'the namespace whose Deployments are managed: a fresh one per run' },
  { placeholder: /<pod execution role>/g, value: () => 'eks-fargate-pod-execution', why: "the cluster's Fargate pod execution role" },
  { placeholder: /<private-a>/g, value: () => '0a', why: "the cluster's private subnets" },
  { placeholder: /<private-b>/g, value: () => '0b', why: "the cluster's private subnets" },
  // The guide's files are written to the working directory, which must be the checkout for
  // `npx tsx src/cli.ts`: they go to a scratch directory instead.
  { placeholder: /(?<=[\s=>])config\.toml\b/g, value: (v) => join(v.work, 'config.toml'), why: 'config.toml, written to a scratch directory' },
  { placeholder: /(?<=[\s=>])sfo\.kubeconfig\b/g, value: (v) => join(v.work, 'sfo.kubeconfig'), why: 'sfo.kubeconfig, written to a scratch directory' },
  // The queue URL the guide writes is AWS's form; the local server's differs in scheme and host
  // only (the test checks that account and queue name are the ones the script printed).
  {
    placeholder: /https:\/\/sqs\.[a-z0-9-]+\.amazonaws\.com\/\d+\/[\w-]+/g,
    value: (v) => v.queueUrl!,
    why: 'the QUEUE_URL aws-setup.sh printed (the local server is not sqs.<region>.amazonaws.com)',
    afterSetup: true,
  },
];

const usedSubstitutions = new Set<number>();

function fill(block: string, v: Values): string {
  let out = block;
  for (const [i, s] of SUBSTITUTIONS.entries()) {
    if (s.afterSetup && v.queueUrl === undefined) continue;
    if (out.search(s.placeholder) !== -1) usedSubstitutions.add(i);
    out = out.replace(s.placeholder, () => s.value(v));
  }
  const left = /<[a-z][\w -]*>/.exec(out);
  assert.equal(left, null, `a placeholder left unfilled in:\n${out}`);
  return out;
}

const outputsOf = (stdout: string): Record<string, string> =>
  Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]),
  );

const managedKeys = (annotations: Record<string, string> | undefined) =>
  Object.keys(annotations ?? {}).filter(
    (k) => (k.startsWith('spot-orchestrator/') || k.startsWith('spot-orchestrator.io/')) && !(Object.values(USER_ANNOTATIONS) as string[]).includes(k),
  );
const nodeMarks = (n: V1Node) => Object.keys(n.metadata?.annotations ?? {}).filter((k) => k.startsWith('spot-orchestrator/'));
const isSpot = (n: V1Node) => {
  const l = n.metadata?.labels ?? {};
  return l['eks.amazonaws.com/capacityType'] === 'SPOT' || l['karpenter.sh/capacity-type'] === 'spot' || l['compute-type'] === 'spot';
};

describe('docs/install.md, followed literally on the local test ground', () => {
  const blocks = walkthroughBlocks(readFileSync(GUIDE, 'utf8'));
  const v: Values = {
    region: t.ground.region,
    account: t.ground.account,
    cluster: uniqueName('guide'),
    appNamespace: uniqueName('guide-app'),
    registry: 'registry.example',
    work: tempDir('guide'),
  };
  const pool = uniqueName('guide-spot');
  const poolNodes: string[] = [];
  let aws: string;
  /** The operator's shell: the tools on PATH, the admin kubeconfig, AWS credentials for the local server. */
  let env: NodeJS.ProcessEnv;
  let setupOut: Record<string, string> = {};
  let controller: ControllerProcess | undefined;
  let interruption: Interruption | undefined;
  let oidcProviderArn: string | undefined;
  const sqs = new SQSClient(awsClientConfig(t.ground));
  const events = new EventBridgeClient(awsClientConfig(t.ground));
  const name = () => `spot-fargate-orchestrator-${v.cluster}-${v.region}`;

  /** Runs the guide's block NAME with its placeholders filled, in the checkout, as the operator. */
  async function runBlock(block: BlockName, edit: (script: string) => string = (s) => s): Promise<RunResult> {
    const text = blocks.get(block);
    assert.ok(text, `docs/install.md has no block marked <!-- walkthrough: ${block} -->`);
    const script = edit(fill(text, v));
    const out = await run('bash', ['-e', '-o', 'pipefail', '-c', script], { env, cwd: PROJECT_DIR });
    writeFileSync(join(v.work, `${block}.log`), `$ ${script}\n--- stdout\n${out.stdout}\n--- stderr\n${out.stderr}\n--- exit ${out.code}\n`);
    return out;
  }
  const runBlockOk = async (block: BlockName, edit?: (script: string) => string) => {
    const out = await runBlock(block, edit);
    assert.equal(out.code, 0, `the guide's "${block}" block failed:\n--- stdout\n${out.stdout}\n--- stderr\n${out.stderr}`);
    return out;
  };
  const awsArgs = () => ['--endpoint-url', t.ground.sqsEndpoint, '--region', v.region];
  const awsJson = async (args: string[]) => JSON.parse((await runOk(aws, [...awsArgs(), '--output', 'json', ...args], { env })).stdout || '{}');
  const awsFails = async (args: string[]) => (await run(aws, [...awsArgs(), ...args], { env })).code !== 0;
  const readWeb = () => t.apps.readNamespacedDeployment({ name: 'web', namespace: v.appNamespace });

  before(async () => {
    aws = await awsCliBinary();
    // The operator's tools, by the names the guide calls them.
    const bin = join(v.work, 'bin');
    mkdirSync(bin);
    symlinkSync(t.ground.kubectl, join(bin, 'kubectl'));
    symlinkSync(await helmBinary(), join(bin, 'helm'));
    symlinkSync(aws, join(bin, 'aws'));
    env = {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: process.env.HOME,
      KUBECONFIG: t.ground.kubeconfig,
      AWS_ENDPOINT_URL: t.ground.sqsEndpoint,
      AWS_ACCESS_KEY_ID: 'testground',
      AWS_SECRET_ACCESS_KEY: 'testground',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_PAGER: '',
    };
    // What the guide takes as given: an EKS cluster with its IAM OIDC provider registered (IRSA), the
    // namespace the controller is to manage, and spot nodes (a node group of the test's own, so the
    // interruption kills nothing another test relies on).
    const cluster = await awsJson([
      'eks',
      'create-cluster',
      '--name',
      v.cluster,
      '--role-arn',
      `arn:aws:iam::${v.account}:role/eks-cluster`,
      '--resources-vpc-config',
      'subnetIds=subnet-0a,subnet-0b',
    ]);
    const issuer: string = cluster.cluster.identity.oidc.issuer;
    oidcProviderArn = (
      await awsJson([
        'iam',
        'create-open-id-connect-provider',
        '--url',
        issuer,
        '--client-id-list',
        'sts.amazonaws.com',
        '--thumbprint-list',
        '9e99a48a9960b14926bb7f3b02e22da2b0ab7280',
      ])
    ).OpenIDConnectProviderArn;
    await t.core.createNamespace({ body: { metadata: { name: v.appNamespace } } });
    poolNodes.push(...(await injector.addSpotNodes(2, { name: pool, suffix: '' })));
  });

  after(async () => {
    injector.cancel();
    if (controller && controller.child.exitCode === null) controller.child.kill('SIGKILL');
    // Whatever an earlier failure left: the release, its namespace, the AWS side, the fixtures.
    await run(await helmBinary(), ['uninstall', RELEASE, '-n', RELEASE_NAMESPACE], { env: { ...env, KUBECONFIG: t.ground.kubeconfig } });
    await t.core.deleteNamespace({ name: RELEASE_NAMESPACE }).catch(() => undefined);
    await t.core.deleteNamespace({ name: v.appNamespace }).catch(() => undefined);
    await run('bash', [join(PROJECT_DIR, 'deploy/aws/aws-setup.sh'), '--region', v.region, '--cluster-name', v.cluster, '--delete'], { env });
    if (oidcProviderArn) await run(aws, [...awsArgs(), 'iam', 'delete-open-id-connect-provider', '--open-id-connect-provider-arn', oidcProviderArn], { env });
    await run(aws, [...awsArgs(), 'eks', 'delete-fargate-profile', '--cluster-name', v.cluster, '--fargate-profile-name', 'spot-fallback'], { env });
    await run(aws, [...awsArgs(), 'eks', 'delete-cluster', '--name', v.cluster], { env });
    for (const n of poolNodes) await t.core.deleteNode({ name: n }).catch(() => undefined);
  });

  it('marks every block the walkthrough runs, once', () => {
    assert.deepEqual([...blocks.keys()].sort(), [...BLOCKS].sort());
  });

  it('AWS setup: aws-setup.sh, as the guide writes it, makes the queue, rule, policy and IRSA role it names', async () => {
    const out = await runBlockOk('aws-setup');
    setupOut = outputsOf(out.stdout);
    assert.equal(setupOut.QUEUE_ARN, `arn:aws:sqs:${v.region}:${v.account}:${name()}`);
    assert.equal(setupOut.RULE_ARN, `arn:aws:events:${v.region}:${v.account}:rule/${name()}`);
    assert.equal(setupOut.ROLE_ARN, `arn:aws:iam::${v.account}:role/${name()}`, 'the role: its trust comes from eks describe-cluster');
    assert.equal(setupOut.POLICY_ARN, `arn:aws:iam::${v.account}:policy/${name()}`);
    assert.doesNotMatch(out.stderr, /warning/i, 'the OIDC provider is registered, so no warning');
    // The helm install line the guide writes names the same queue (account and name) and role.
    const helmLine = fill(blocks.get('helm-install')!, v);
    const guideQueue = /config\.aws\.sqs_queue_url=(\S+)/.exec(helmLine)?.[1];
    assert.ok(guideQueue, helmLine);
    assert.equal(new URL(guideQueue).pathname, new URL(setupOut.QUEUE_URL!).pathname, "the guide's queue URL names the queue the script made");
    assert.match(
      helmLine,
      new RegExp(`serviceAccount\\.roleArn=${setupOut.ROLE_ARN!.replaceAll('.', '\\.')}(\\s|$)`),
      "the guide's role ARN is the one the script made",
    );
    v.queueUrl = setupOut.QUEUE_URL;

    // The rule's target is the queue, as the script made it; then moto's delivery gets the whole event (see the top).
    const targets = (await events.send(new ListTargetsByRuleCommand({ Rule: name() }))).Targets ?? [];
    assert.deepEqual(
      targets.map((x) => ({ Id: x.Id, Arn: x.Arn })),
      [{ Id: 'interruption-queue', Arn: setupOut.QUEUE_ARN }],
    );
    await events.send(
      new PutTargetsCommand({
        Rule: name(),
        Targets: [{ Id: 'interruption-queue', Arn: setupOut.QUEUE_ARN, InputTransformer: { InputPathsMap: {}, InputTemplate: '<aws.events.event.json>' } }],
      }),
    );
  });

  it("the Fargate profile: the guide's command makes one that selects the managed namespace's moved pods", async () => {
    await runBlockOk('fargate-profile');
    const profile = (await awsJson(['eks', 'describe-fargate-profile', '--cluster-name', v.cluster, '--fargate-profile-name', 'spot-fallback'])).fargateProfile;
    assert.deepEqual(profile.selectors, [{ namespace: v.appNamespace, labels: { 'compute-type': 'fargate' } }]);
  });

  it("Install with Helm: the guide's helm install applies every object, RBAC included; the controller's pods are scheduled off spot", async () => {
    await runBlockOk('helm-install');
    const status = JSON.parse((await runOk(await helmBinary(), ['status', RELEASE, '-n', RELEASE_NAMESPACE, '-o', 'json'], { env })).stdout);
    assert.equal(status.info.status, 'deployed');
    const manifest = (await runOk(await helmBinary(), ['get', 'manifest', RELEASE, '-n', RELEASE_NAMESPACE], { env })).stdout;
    const objects = parseManifests(manifest);
    const onServer = await kubectl(t, ['get', '-f', '-', '-o', 'name'], manifest);
    assert.equal(onServer.code, 0, onServer.stderr);
    assert.equal(onServer.stdout.trim().split('\n').length, objects.length, `every object of the release exists:\n${onServer.stdout}`);
    const where = (kind: string) => ofKind(objects, kind).map((o) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name}`);
    assert.deepEqual(where('ClusterRole'), [`/${RELEASE}`]);
    assert.deepEqual(where('ClusterRoleBinding'), [`/${RELEASE}`]);
    assert.ok(where('Role').includes(`${v.appNamespace}/${RELEASE}`), `a Role in the managed namespace: ${where('Role')}`);
    assert.ok(where('Role').includes(`default/${RELEASE}-node-events`), `a Role for Node Events in default: ${where('Role')}`);
    assert.ok(where('RoleBinding').includes(`${v.appNamespace}/${RELEASE}`));
    const cm = await t.core.readNamespacedConfigMap({ name: RELEASE, namespace: RELEASE_NAMESPACE });
    assert.match(cm.data?.['config.toml'] ?? '', new RegExp(`^cluster_name = "${v.cluster}"$`, 'm'), 'doctor and the preflight can ask EKS');
    const [sa] = ofKind(objects, 'ServiceAccount');
    assert.equal(sa?.metadata?.annotations?.['eks.amazonaws.com/role-arn'], setupOut.ROLE_ARN);

    // KWOK runs no containers: the pods are scheduled and marked Ready, but no controller runs in them.
    const pods = await eventually(
      "the chart's two replicas scheduled",
      async () => {
        const list = (await t.core.listNamespacedPod({ namespace: RELEASE_NAMESPACE, labelSelector: INSTANCE_LABEL })).items;
        return list.length === 2 && list.every((p) => p.spec?.nodeName && isPodReady(p)) ? list : undefined;
      },
      60_000,
    );
    const nodes = await Promise.all(pods.map((p) => t.core.readNode({ name: p.spec!.nodeName! })));
    for (const n of nodes) assert.ok(!isSpot(n), `${n.metadata?.name} is spot capacity`);
    assert.notEqual(nodes[0]!.metadata?.name, nodes[1]!.metadata?.name, 'one replica per host');
    const image = (await t.apps.readNamespacedDeployment({ name: RELEASE, namespace: RELEASE_NAMESPACE })).spec?.template.spec?.containers[0]?.image;
    assert.equal(image, `${v.registry}/spot-fargate-orchestrator:0.1.0`);
  });

  it("Pod Security: the guide's label enforces the restricted profile, and the running pods meet it", async () => {
    const out = await runBlockOk('pod-security');
    assert.doesNotMatch(out.stderr, /violate/i, 'no existing pod violates the restricted profile');
    const ns = await t.core.readNamespace({ name: RELEASE_NAMESPACE });
    assert.equal(ns.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
  });

  it("Checking the install: doctor under the chart's ServiceAccount passes", async () => {
    const out = await runBlockOk('check-install');
    assert.match(out.stdout, new RegExp(`^ok {6}queue: ${v.queueUrl!.replaceAll('.', '\\.')}: reachable`, 'm'), out.stdout);
    assert.match(out.stdout, new RegExp(`^ok {6}rbac: namespace ${v.appNamespace}: allowed: .*patch deployments\\.apps`, 'm'), out.stdout);
    assert.match(out.stdout, /^ok {6}rbac: cluster-wide: allowed: get nodes, list nodes, watch nodes, patch nodes$/m);
    assert.match(
      out.stdout,
      new RegExp(
        `^ok {6}fargate profile: namespace ${v.appNamespace}: profile spot-fallback \\(ACTIVE\\) of cluster ${v.cluster} selects pods labelled compute-type=fargate$`,
        'm',
      ),
      out.stdout,
    );
    assert.match(out.stdout, /^all checks passed$/m, out.stdout);
    // What the block wrote: the release's config.toml and a kubeconfig with the ServiceAccount's token.
    const cm = await t.core.readNamespacedConfigMap({ name: RELEASE, namespace: RELEASE_NAMESPACE });
    assert.equal(readFileSync(join(v.work, 'config.toml'), 'utf8').trim(), cm.data?.['config.toml']?.trim());
    const whoami = await kubectl(t, ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], undefined, join(v.work, 'sfo.kubeconfig'));
    assert.equal(whoami.stdout, `system:serviceaccount:${RELEASE_NAMESPACE}:${RELEASE}`, whoami.stderr);
  });

  it('survives an interruption: the example Deployment, warned through the rule the setup made, ends healthy on Fargate', async () => {
    // The controller, as one of the chart's pods would run it: its ServiceAccount (the guide's
    // sfo.kubeconfig), the release's config.toml, its pod name as the leader identity, the
    // container's environment. Nothing of the test's own speed-ups: the chart's timings.
    const [pod] = (await t.core.listNamespacedPod({ namespace: RELEASE_NAMESPACE, labelSelector: INSTANCE_LABEL })).items;
    const chartEnv = Object.fromEntries(
      ((await t.apps.readNamespacedDeployment({ name: RELEASE, namespace: RELEASE_NAMESPACE })).spec?.template.spec?.containers[0]?.env ?? [])
        .filter((e) => e.value !== undefined && e.name !== 'CONFIG_FILE')
        .map((e) => [e.name, e.value!]),
    );
    assert.equal(chartEnv.AWS_EC2_METADATA_DISABLED, 'true');
    controller = await spawnController(
      t,
      {
        ...chartEnv,
        KUBECONFIG: join(v.work, 'sfo.kubeconfig'),
        CONFIG_FILE: join(v.work, 'config.toml'),
        POD_NAME: pod!.metadata!.name!,
        POD_NAMESPACE: RELEASE_NAMESPACE,
        // The preflight at start asks EKS for the Fargate profiles (config.aws.cluster_name): the
        // ground's, as the SQS endpoint is.
        AWS_ENDPOINT_URL_EKS: t.ground.sqsEndpoint,
      },
      { bare: true },
    );
    const out = controller.output;
    await eventually('the controller to lead', async () => (out().includes('controller started') ? true : undefined), 60_000);
    await eventually(
      '/readyz to answer 200',
      async () => ((await fetch(`http://127.0.0.1:${controller!.metricsPort}/readyz`)).status === 200 ? true : undefined),
      30_000,
    );

    // examples/deployment-with-opt-in.yaml, as its own comment says to apply it, pinned to this
    // test's spot node group (the example selects any spot node; the ground's others serve other tests).
    const example = parseManifests(readFileSync(EXAMPLE, 'utf8'));
    const [web] = ofKind<V1Deployment>(example, 'Deployment');
    assert.equal(web?.metadata?.annotations?.['spot-orchestrator/enabled'], 'true', 'the example opts in');
    web!.spec!.template.spec!.nodeSelector = { ...web!.spec!.template.spec!.nodeSelector, 'eks.amazonaws.com/nodegroup': pool };
    const applied = await kubectl(t, ['apply', '-n', v.appNamespace, '-f', '-'], toManifest(example));
    assert.equal(applied.code, 0, applied.stderr);
    const onSpot = await eventually(
      'the example ready on spot',
      async () => {
        const pods = (await podsOf(t, v.appNamespace, 'web')).filter((p) => isPodReady(p));
        return pods.length === 3 && pods.every((p) => poolNodes.includes(p.spec!.nodeName!)) ? pods : undefined;
      },
      60_000,
    );
    assert.equal(onSpot.length, 3);

    // The warning goes through EventBridge: the rule aws-setup.sh made routes it to its queue. The
    // first instance is reclaimed when its two minutes (scaled) are over; the second survives its
    // warning, so the uninstall has a sealed node to clear.
    const [doomed, survivor] = poolNodes as [string, string];
    interruption = await injector.interrupt([doomed]);
    await injector.interrupt([survivor], { windowMs: 3_600_000, terminate: false });
    const moved = await eventually(
      'the example healthy on Fargate',
      async () => {
        const d = await readWeb();
        const a = d.metadata?.annotations ?? {};
        if (a[MANAGED_ANNOTATIONS.state] !== 'fargate' || a[MANAGED_ANNOTATIONS.phase]) return undefined;
        const pods = (await podsOf(t, v.appNamespace, 'web')).filter((p) => !p.metadata?.deletionTimestamp);
        return pods.length === 3 && pods.every((p) => isPodReady(p) && /^fargate-ip-/.test(p.spec?.nodeName ?? '')) ? d : undefined;
      },
      90_000,
    );
    assert.equal(moved.spec?.template.metadata?.labels?.['compute-type'], 'fargate');
    assert.equal(moved.status?.readyReplicas, 3);
    await interruption.terminated;
    assert.equal((await readWeb()).status?.readyReplicas, 3, 'still whole after the instance died');
    const sealed = await t.core.readNode({ name: survivor });
    assert.equal(sealed.spec?.unschedulable, true, 'the surviving node is sealed off');
    assert.ok(sealed.metadata?.annotations?.[NODE_ANNOTATIONS.sealed]);
    assert.doesNotMatch(out(), /forbidden/i, "no API call was refused under the chart's RBAC");
    assert.doesNotMatch(out(), /preflight check failed/, 'every preflight check at start passed or was skipped');
  });

  it('Uninstalling, step by step: the controller stopped, the example back on spot, the release and the AWS side gone; nothing left', async () => {
    // Spot capacity that fits the example's spot template again.
    poolNodes.push(...(await injector.addSpotNodes(1, { name: pool })));

    // 1. Stop the controller. Scaling to 0 would stop it in its pod; here it is the local process.
    await runBlockOk('uninstall-stop');
    assert.equal((await t.core.listNamespacedPod({ namespace: RELEASE_NAMESPACE, labelSelector: INSTANCE_LABEL })).items.length, 0, 'no controller pod left');
    controller!.child.kill('SIGTERM');
    assert.equal(await controller!.exited, 0, 'the controller drained and exited 0');
    const lease = await t.kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: RELEASE, namespace: RELEASE_NAMESPACE });
    assert.ok(!lease.spec?.holderIdentity, `the Lease was handed back (holder ${lease.spec?.holderIdentity})`);

    // 2. The Job's manifest: the API server admits it (server-side dry run; KWOK would not run its
    // container), with the release's image, ServiceAccount and ConfigMap.
    const job = await runBlockOk('uninstall-job', (script) => {
      const apply = script.slice(0, script.indexOf('\nYAML\n') + '\nYAML\n'.length);
      assert.match(apply, /^kubectl apply -n \S+ -f - <<'YAML'\n/);
      return apply.replace(/^kubectl apply /, 'kubectl apply --dry-run=server -o json ');
    });
    const jobObject = JSON.parse(job.stdout) as V1Job;
    const jobPod = jobObject.spec!.template.spec!;
    const release = await t.apps.readNamespacedDeployment({ name: RELEASE, namespace: RELEASE_NAMESPACE });
    assert.equal(jobPod.containers[0]!.image, release.spec?.template.spec?.containers[0]?.image, "the Job runs the release's image");
    assert.equal(jobPod.serviceAccountName, release.spec?.template.spec?.serviceAccountName);
    assert.deepEqual(jobPod.containers[0]!.args, ['recover', '--all', '--now']);
    assert.doesNotMatch(job.stderr, /violate|warning/i, 'the restricted profile admits it');
    //    ... and the guide's local form of the same command does the work.
    const recover = await runBlockOk('uninstall-recover-local');
    assert.match(recover.stdout, new RegExp(`${v.appNamespace}/web: back on spot`), recover.stdout);
    assert.doesNotMatch(recover.stdout, /LEFT ON FARGATE|NOT DONE/, recover.stdout);
    assert.match(recover.stdout, new RegExp(`${poolNodes[1]}: removed annotations .*; taint ${INTERRUPTED_TAINT_KEY}.*; cordon`), recover.stdout);

    // 3. The Kubernetes side, in two parts: up to the namespace's deletion, which is for a namespace
    // that "holds nothing else", so first what it holds by then is checked: nothing of the controller.
    const deleteNamespaceLine = /^kubectl delete namespace .*$/m;
    assert.match(blocks.get('uninstall-kubernetes')!, deleteNamespaceLine);
    await runBlockOk('uninstall-kubernetes', (script) => script.replace(deleteNamespaceLine, ''));
    const held = await kubectl(t, [
      'get',
      'all,configmaps,secrets,serviceaccounts,roles,rolebindings,leases,poddisruptionbudgets,networkpolicies',
      '-n',
      RELEASE_NAMESPACE,
      '-o',
      'name',
    ]);
    assert.equal(held.code, 0, held.stderr);
    const kept = held.stdout
      .trim()
      .split('\n')
      .filter((line) => line && !['configmap/kube-root-ca.crt', 'serviceaccount/default'].includes(line));
    assert.deepEqual(kept, [], `the release namespace still holds objects of the controller`);
    await runBlockOk('uninstall-kubernetes', (script) => deleteNamespaceLine.exec(script)![0]);
    // 4. The AWS side.
    await runBlockOk('uninstall-aws');

    // Nothing of the controller is left in the cluster.
    const labelled = async (kinds: string, ...scope: string[]) => {
      const r = await kubectl(t, ['get', kinds, ...scope, '-l', INSTANCE_LABEL, '-o', 'name']);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    assert.equal(
      await labelled('all,configmaps,secrets,serviceaccounts,roles,rolebindings,leases,poddisruptionbudgets,networkpolicies', '-A'),
      '',
      'namespaced objects of the release',
    );
    assert.equal(await labelled('clusterroles,clusterrolebindings,flowschemas,prioritylevelconfigurations'), '', 'cluster-scoped objects of the release');
    assert.equal((await kubectl(t, ['get', 'namespace', RELEASE_NAMESPACE])).code, 1, 'the release namespace is gone');
    assert.equal((await kubectl(t, ['get', 'role', `${RELEASE}-node-events`, '-n', 'default'])).code, 1);
    assert.equal((await kubectl(t, ['get', 'role', RELEASE, '-n', v.appNamespace])).code, 1);
    assert.equal((await kubectl(t, ['get', 'clusterrole', RELEASE])).code, 1);
    for (const n of (await t.core.listNode()).items) {
      assert.deepEqual(nodeMarks(n), [], `${n.metadata?.name} keeps the controller's annotations`);
      assert.ok(!(n.spec?.taints ?? []).some((x) => x.key === INTERRUPTED_TAINT_KEY), `${n.metadata?.name} keeps the controller's taint`);
    }
    const survivor = await t.core.readNode({ name: poolNodes[1]! });
    assert.equal(survivor.spec?.unschedulable, undefined, 'the cordon it added is gone');
    assert.equal(survivor.metadata?.labels?.[EXCLUDE_FROM_LB_LABEL], undefined, 'the label it added is gone');
    // The example is back on spot, as it was written, with nothing of the controller on it.
    const web = await readWeb();
    assert.deepEqual(managedKeys(web.metadata?.annotations), [], 'controller annotations left on the Deployment');
    assert.equal(web.spec?.template.metadata?.labels?.['compute-type'], undefined, 'the Fargate label is gone');
    assert.deepEqual(web.spec?.template.spec?.nodeSelector, { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool });
    const pods = (await podsOf(t, v.appNamespace, 'web')).filter((p) => !p.metadata?.deletionTimestamp);
    assert.equal(pods.length, 3);
    for (const p of pods) assert.ok(isPodReady(p) && poolNodes.includes(p.spec?.nodeName ?? ''), `${p.metadata?.name} on ${p.spec?.nodeName}`);

    // Nothing is left on AWS.
    await assert.rejects(sqs.send(new GetQueueUrlCommand({ QueueName: name() })), 'the queue');
    await assert.rejects(sqs.send(new GetQueueUrlCommand({ QueueName: `${name()}-dlq` })), 'the dead-letter queue');
    await assert.rejects(events.send(new DescribeRuleCommand({ Name: name() })), 'the rule');
    assert.ok(await awsFails(['iam', 'get-role', '--role-name', name()]), 'the role');
    assert.ok(await awsFails(['iam', 'get-policy', '--policy-arn', setupOut.POLICY_ARN!]), 'the policy');
    const policies = await awsJson(['iam', 'list-policies', '--scope', 'Local']);
    assert.ok(!policies.Policies.some((p: { PolicyName: string }) => p.PolicyName === name()));
  });

  it('used every substitution of its table', () => {
    const unused = SUBSTITUTIONS.filter((_, i) => !usedSubstitutions.has(i)).map((s) => String(s.placeholder));
    assert.deepEqual(unused, []);
  });
});
