// The spot-orchestrator command line against the local ground: config check, state get/set,
// simulate interruption, and the specific error of a bad configuration.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { sampleAlerts } from '../../src/alerts/samples.js';
import { parseMessage } from '../../src/events/parse.js';
import { ensureQueueAndRule, removeQueueAndRule } from '../../testground/src/aws.js';
import { awsClientConfig } from '../../testground/src/ground.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const run = promisify(execFile);

describe('spot-orchestrator CLI', () => {
  let namespace: string;
  let queueName: string;
  let queueUrl: string;
  let env: NodeJS.ProcessEnv;
  /** The CLI with this suite's environment plus `extra` (an empty value unsets a setting). */
  const cliWith = (extra: NodeJS.ProcessEnv, ...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { env: { ...env, ...extra }, cwd: new URL('../..', import.meta.url).pathname });
  const cli = (...args: string[]) => cliWith({}, ...args);

  before(async () => {
    namespace = await createNamespace(t, 'cli');
    queueName = uniqueName('q');
    ({ queueUrl } = await ensureQueueAndRule(t.ground, queueName));
    env = {
      ...process.env,
      KUBECONFIG: t.ground.kubeconfig,
      MODE: 'namespace',
      NAMESPACE: namespace,
      SQS_QUEUE_URL: queueUrl,
      AWS_ENDPOINT_URL_SQS: t.ground.sqsEndpoint,
      AWS_ACCESS_KEY_ID: 'testground',
      AWS_SECRET_ACCESS_KEY: 'testground',
      LOG_FORMAT: 'json',
      CONFIG_FILE: '',
    };
    await t.apps.createNamespacedDeployment({
      namespace,
      body: appDeployment({
        namespace,
        name: 'web',
        replicas: 0,
        annotations: { 'spot-orchestrator/enabled': 'true', 'spot-orchestrator/rollout-timeout': '90s', 'spot-orchestrator/recovery-cooldown': 'later' },
      }),
    });
  });
  after(async () => {
    await removeQueueAndRule(t.ground, queueName, queueUrl);
    await deleteNamespace(t, namespace);
  });

  it('config check shows every value with its source and each managed Deployment', async () => {
    const { stdout } = await cli('config', 'check');
    assert.match(stdout, /kubernetes\.mode = namespace\s+\[env MODE\]/);
    assert.match(stdout, /migration\.rollout_timeout = 2m0s\s+\[default\]/);
    assert.match(stdout, /managed Deployments in .* \(namespace mode\): 1/);
    assert.match(stdout, /rolloutTimeout = 1m30s\s+\[annotation spot-orchestrator\/rollout-timeout\]/);
    assert.match(stdout, /INVALID OVERRIDE: .*recovery-cooldown/);
  });

  it('refuses a bad configuration naming key, layer, value and what is expected', async () => {
    env = { ...env, ROLLOUT_TIMEOUT: 'soon' };
    const err = await cli('run').then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    env = { ...env, ROLLOUT_TIMEOUT: '' };
    assert.ok(err, 'exits non-zero');
    assert.equal(err.code, 1);
    assert.match(err.stderr, /migration\.rollout_timeout from env ROLLOUT_TIMEOUT: got "soon".*expected a duration/);
  });

  it('state set and get read and write the state annotations', async () => {
    await cli('state', 'set', 'web', '--state', 'fargate', '--reason', 'manual');
    const d = await t.apps.readNamespacedDeployment({ name: 'web', namespace });
    assert.equal(d.metadata?.annotations?.['spot-orchestrator/state'], 'fargate');
    assert.equal(d.metadata?.annotations?.['spot-orchestrator/reason'], 'manual');
    const { stdout } = await cli('state', 'get', 'web');
    assert.match(stdout, /spot-orchestrator\/state=fargate/);
    await assert.rejects(cli('state', 'set', 'web', '--state', 'moon'), /--state must be one of spot\|fargate/);
  });

  it('simulate interruption --node publishes the EventBridge format to the queue', async () => {
    const [name] = await new InterruptionInjector(t.ground, t).addSpotNodes(1, { name: uniqueName('cli') });
    const node = await t.core.readNode({ name: name! });
    const { stdout } = await cli('simulate', 'interruption', '--node', node.metadata!.name!);
    assert.match(stdout, /sent interruption for i-[0-9a-f]+/);
    const sqs = new SQSClient(awsClientConfig(t.ground));
    const body = await eventually('the simulated message', async () => {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      return out.Messages?.map((m) => m.Body!).find((b) => b.includes('"source": "aws.ec2"') && b.includes(node.spec!.providerID!.split('/').pop()!));
    });
    const parsed = parseMessage(body);
    assert.ok(parsed.ok && parsed.event.kind === 'spot_interrupted');
    await t.core.deleteNode({ name: name! });
  });

  it('simulate rebalance --instance publishes a rebalance recommendation', async () => {
    const { stdout } = await cli('simulate', 'rebalance', '--instance', 'i-0123456789abcdef0');
    assert.match(stdout, /sent rebalance for i-0123456789abcdef0/);
    const sqs = new SQSClient(awsClientConfig(t.ground));
    const body = await eventually('the rebalance message', async () => {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      return out.Messages?.map((m) => m.Body!).find((b) => b.includes('i-0123456789abcdef0'));
    });
    const parsed = parseMessage(body);
    assert.ok(parsed.ok && parsed.event.kind === 'rebalance_recommendation');
  });

  it('test-eventbridge puts a spot warning on the bus, and the rule delivers it to the queue', async () => {
    const instanceId = 'i-0eb0eb0eb0eb0eb01';
    // The SDK's own variable for the EventBridge endpoint: the same one a user points at a local server.
    const { stdout } = await cliWith({ AWS_ENDPOINT_URL_EVENTBRIDGE: t.ground.sqsEndpoint }, 'test-eventbridge', '--instance', instanceId);
    assert.match(stdout, new RegExp(`put EC2 Spot Instance Interruption Warning for ${instanceId} on bus default \\(source aws\\.ec2\\) as event \\S+`));
    const sqs = new SQSClient(awsClientConfig(t.ground));
    const body = await eventually('the warning routed by the rule', async () => {
      const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      return out.Messages?.map((m) => m.Body!).find((b) => b.includes(instanceId));
    });
    const parsed = parseMessage(body);
    assert.ok(parsed.ok && parsed.event.kind === 'spot_interrupted', body);
    assert.deepEqual(parsed.event.instanceIds, [instanceId]);
  });

  it("deployment-state get and set <state> <reason>, with the original's syntax, work on DEPLOYMENT_NAME", async () => {
    const original = { DEPLOYMENT_NAME: 'web', SQS_QUEUE_URL: '' };
    const set = await cliWith(original, 'deployment-state', 'set', 'spot', 'rollback');
    assert.match(set.stdout, new RegExp(`${namespace}/web: state=spot reason=rollback`));
    const d = await t.apps.readNamespacedDeployment({ name: 'web', namespace });
    assert.equal(d.metadata?.annotations?.['spot-orchestrator/state'], 'spot');
    assert.equal(d.metadata?.annotations?.['spot-orchestrator/reason'], 'rollback');
    const { stdout } = await cliWith(original, 'deployment-state', 'get');
    assert.match(stdout, /spot-orchestrator\/state=spot/);
    assert.match(stdout, /spot-orchestrator\/reason=rollback/);
    await assert.rejects(cli('deployment-state', 'set', 'moon', 'manual', '--deployment', 'web'), /--state must be one of spot\|fargate/);
  });

  it('state get needs neither SQS_QUEUE_URL nor DEPLOYMENT_NAME', async () => {
    // Single mode (the default) with no Deployment name and no queue: nothing state get uses.
    const { stdout } = await cliWith({ MODE: '', SQS_QUEUE_URL: '', DEPLOYMENT_NAME: '' }, 'state', 'get', 'web', '-n', namespace);
    assert.match(stdout, new RegExp(`^${namespace}/web\\n`));
  });

  it('alerts test sends one sample of each alert to the webhook, never printing its URL', async () => {
    const received: { text?: string; blocks?: unknown[] }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const secret = 'T000/B000/s3cr3tW3bh00kT0k3n';
    try {
      const saved = env;
      env = { ...env, SLACK_WEBHOOK_URL: `http://127.0.0.1:${port}/services/${secret}`, ALERTS_ENABLED: 'true' };
      const { stdout, stderr } = await cli('alerts', 'test');
      env = saved;
      assert.equal(received.length, sampleAlerts().length, 'one message per alert kind');
      for (const message of received) assert.ok(message.text && Array.isArray(message.blocks) && message.blocks.length > 0);
      assert.ok(!stdout.includes(secret) && !stderr.includes(secret), 'the webhook URL never appears in the output');
    } finally {
      server.close();
    }
  });
});
