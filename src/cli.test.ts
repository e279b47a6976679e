// The command line as a user runs it, where no cluster is needed: the installed names, per-command
// configuration, the offline tools, and what a failure prints.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { createServer as createHttpServer } from 'node:http';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { configCheck, describeFailure, testEventBridge } from './cli.js';
import { SECRET_PATH, startReceiver } from './alerts/test-support.js';
import { sampleAlerts } from './alerts/index.js';

const ROOT = new URL('..', import.meta.url).pathname;
const CLI = join(ROOT, 'src/cli.ts');
const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'sfo-cli-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with exactly this environment (plus PATH), from a directory with no config.toml. */
async function cli(args: string[], env: Record<string, string> = {}, script = CLI): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', import.meta.resolve('tsx'), script, ...args], {
      cwd: scratch,
      env: { PATH: process.env.PATH, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function writeScratch(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

describe('installed command names', () => {
  it('installs spot-orchestrator, keeping spot-fargate-orchestrator as an alias, both the built cli', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    assert.deepEqual(pkg.bin, { 'spot-orchestrator': 'dist/src/cli.js', 'spot-fargate-orchestrator': 'dist/src/cli.js' });
    // tsc compiles <rootDir>/src/cli.ts to <outDir>/src/cli.js.
    const { compilerOptions } = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string; rootDir: string } };
    assert.deepEqual([compilerOptions.outDir, compilerOptions.rootDir], ['dist', '.']);
    assert.ok(readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n'), 'npm links the bin as an executable script');
  });

  it('runs when invoked through a symlink, as npm links bin entries', async () => {
    const link = join(scratch, 'spot-orchestrator');
    symlinkSync(CLI, link);
    const { code, stdout } = await cli(['--help'], {}, link);
    assert.equal(code, 0);
    assert.match(stdout, /^usage: spot-orchestrator <command>/);
  });
});

describe('each command needs only the configuration it uses', () => {
  it('test-alerts and alerts test send the samples with no SQS_QUEUE_URL and no DEPLOYMENT_NAME', async () => {
    const slack = await startReceiver();
    try {
      for (const args of [['test-alerts'], ['alerts', 'test']]) {
        const before = slack.requests.length;
        const { code, stdout, stderr } = await cli(args, { SLACK_WEBHOOK_URL: slack.url, LOG_FORMAT: 'json' });
        assert.equal(code, 0, stderr);
        assert.equal(slack.requests.length - before, sampleAlerts().length, `${args.join(' ')}: one message per sample`);
        assert.ok(!stdout.includes(SECRET_PATH) && !stderr.includes(SECRET_PATH), 'the webhook never appears');
      }
    } finally {
      await slack.close();
    }
  });

  it('deployment-state, like the original, works on DEPLOYMENT_NAME and says so when it is missing', async () => {
    const { code, stderr } = await cli(['deployment-state', 'get'], { MODE: 'namespace' });
    assert.equal(code, 2);
    assert.match(stderr, /deployment-state works on DEPLOYMENT_NAME/);
    assert.doesNotMatch(stderr, /SQS_QUEUE_URL/);
  });

  it('a bad value in a section the command does not use is not its business', async () => {
    const { code, stderr } = await cli(['test-alerts'], { ALERTS_ENABLED: 'f', ROLLOUT_TIMEOUT: 'soon' });
    assert.equal(code, 2, 'refused for alerts being off, not for ROLLOUT_TIMEOUT');
    assert.match(stderr, /alerts are disabled/);
  });
});

describe('test-per-deployment-config (offline)', () => {
  it("prints each Deployment's resolved settings and their sources from a manifest, with no cluster and no queue", async () => {
    const config = writeScratch('per-deployment.toml', '[kubernetes]\nmode = "namespace"\nnamespace = "production"\n[recovery]\ncooldown = "30m"\n');
    const { code, stdout, stderr } = await cli(['test-per-deployment-config', join(ROOT, 'examples/per-deployment-config-example.yaml')], {
      CONFIG_FILE: config,
      ROLLOUT_TIMEOUT: '90s',
      KUBECONFIG: '/nonexistent',
    });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^production\/api \(.*per-deployment-config-example\.yaml\):$/m);
    assert.match(stdout, /^ {2}managed = yes {2}\[namespace mode: spot-orchestrator\/enabled: "true" in namespace production\]$/m);
    assert.match(stdout, /^ {2}rolloutTimeout = 1m40s {2}\[annotation spot-orchestrator\/rollout-timeout\]$/m);
    assert.match(stdout, /^ {2}recoveryCooldown = 20m0s {2}\[annotation spot-orchestrator\/recovery-cooldown\]$/m);
    // A Deployment of the same file without its own rollout timeout gets the global one, with its source.
    assert.match(stdout, /rolloutTimeout = 1m30s {2}\[env ROLLOUT_TIMEOUT\]/);
  });

  it('flags an override that does not parse, and the fallback used', async () => {
    const manifest = writeScratch(
      'bad.yaml',
      'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations:\n    spot-orchestrator/recovery-cooldown: later\nspec: {}\n',
    );
    const { code, stdout } = await cli(['test-per-deployment-config', manifest], { MODE: 'namespace' });
    assert.equal(code, 0);
    assert.match(stdout, /^default\/web/m);
    assert.match(stdout, /managed = no {2}\[namespace mode: needs spot-orchestrator\/enabled: "true" in namespace default\]/);
    assert.match(stdout, /recoveryCooldown = 45m0s {2}\[default\] {2}INVALID OVERRIDE: ignoring annotation spot-orchestrator\/recovery-cooldown="later"/);
  });
});

describe('test-eventbridge', () => {
  /** A stand-in for the EventBridge API that keeps each PutEvents body and answers with `reply`. */
  async function eventBridge(reply: object): Promise<{ client: EventBridgeClient; bodies: { Entries: Record<string, unknown>[] }[]; close(): void }> {
    const bodies: { Entries: Record<string, unknown>[] }[] = [];
    const server = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        assert.equal(req.headers['x-amz-target'], 'AWSEvents.PutEvents');
        bodies.push(JSON.parse(body) as { Entries: Record<string, unknown>[] });
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(reply));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const client = new EventBridgeClient({
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'k', secretAccessKey: 's' },
    });
    return { client, bodies, close: () => server.close() };
  }

  it('puts the exact EC2 spot warning on the default bus, as EC2 would', async () => {
    const eb = await eventBridge({ FailedEntryCount: 0, Entries: [{ EventId: 'e-1' }] });
    try {
      const lines: string[] = [];
      const id = await testEventBridge(
        { aws: { region: 'eu-west-1', sqs_queue_url: 'unused', visibility_timeout: 30_000, keep_foreign_messages: false, max_event_age: 600_000 } },
        { instance: 'i-0123456789abcdef0' },
        (l) => lines.push(l),
        eb.client,
      );
      assert.equal(id, 'e-1');
      const [entry] = eb.bodies[0]!.Entries;
      assert.equal(entry!.Source, 'aws.ec2');
      assert.equal(entry!.DetailType, 'EC2 Spot Instance Interruption Warning');
      assert.equal(entry!.EventBusName, 'default');
      assert.deepEqual(JSON.parse(String(entry!.Detail)), { 'instance-id': 'i-0123456789abcdef0', 'instance-action': 'terminate' });
      assert.deepEqual(entry!.Resources, ['arn:aws:ec2:eu-west-1a:instance/i-0123456789abcdef0']);
      assert.deepEqual(lines, ['put EC2 Spot Instance Interruption Warning for i-0123456789abcdef0 on bus default (source aws.ec2) as event e-1']);
    } finally {
      eb.close();
    }
  });

  it('says why AWS refused the event (its own aws. sources), and takes --source and --bus', async () => {
    const eb = await eventBridge({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'NotAuthorizedForSourceException', ErrorMessage: 'Not authorized for the source.' }],
    });
    try {
      await assert.rejects(
        testEventBridge(
          { aws: { region: 'eu-west-1', sqs_queue_url: 'unused', visibility_timeout: 30_000, keep_foreign_messages: false, max_event_age: 600_000 } },
          { instance: 'i-0123456789abcdef0', source: 'test.spot', bus: 'ops' },
          () => undefined,
          eb.client,
        ),
        /EventBridge refused the event: NotAuthorizedForSourceException: Not authorized for the source\. \(AWS reserves "aws\." sources for itself; see --source\)/,
      );
      const [entry] = eb.bodies[0]!.Entries;
      assert.deepEqual([entry!.Source, entry!.EventBusName], ['test.spot', 'ops']);
    } finally {
      eb.close();
    }
  });
});

describe('config check', () => {
  it('prints a TOML syntax error with its line and column', async () => {
    const file = writeScratch('broken.toml', '[migration]\nrollout_timeout = "120s"\nverification_delay = \n');
    const lines: string[] = [];
    assert.equal(await configCheck({ CONFIG_FILE: file, SQS_QUEUE_URL: 'http://127.0.0.1:1/q', MODE: 'namespace' }, (line) => lines.push(line)), false);
    const text = lines.join('\n');
    assert.match(text, /1 problem; fix them before running:\n {2}- .*broken\.toml: .+ \(line 3, column \d+\)$/m);
  });

  it('shows an unknown key as a warning and goes on', async () => {
    const file = writeScratch('unknown.toml', '[migration]\nrollout_timout = "5m"\n');
    const { stdout } = await cli(['config', 'check'], {
      CONFIG_FILE: file,
      MODE: 'namespace',
      SQS_QUEUE_URL: 'http://127.0.0.1:1/q',
      KUBECONFIG: '/nonexistent',
    });
    assert.match(stdout, /WARNING: .*unknown\.toml: unknown key migration\.rollout_timout, ignored/);
    assert.doesNotMatch(stdout, /problem/);
  });
});

describe('a failure prints its root cause', () => {
  it('follows the cause chain, and AggregateErrors, down to the root', () => {
    const root = Object.assign(new Error('listen EADDRINUSE: address already in use 0.0.0.0:8080'), { code: 'EADDRINUSE' });
    const text = describeFailure(new Error('starting the controller', { cause: new Error('starting ops server on 0.0.0.0:8080', { cause: root }) }));
    assert.equal(
      text,
      [
        'spot-orchestrator: starting the controller',
        '  caused by: starting ops server on 0.0.0.0:8080',
        '    caused by: listen EADDRINUSE: address already in use 0.0.0.0:8080',
      ].join('\n'),
    );
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
    assert.match(
      describeFailure(new Error('fetch failed', { cause: new AggregateError([refused], 'all attempts failed') })),
      /caused by: all attempts failed\n {4}caused by: connect ECONNREFUSED 127\.0\.0\.1:6443$/,
    );
    const quoted = new Error('loading the kubeconfig: ENOENT: no such file', { cause: new Error('ENOENT: no such file') });
    assert.equal(
      describeFailure(quoted),
      'spot-orchestrator: loading the kubeconfig: ENOENT: no such file',
      'a cause the message already quotes is not repeated',
    );
  });

  it('run with METRICS_PORT taken stops with EADDRINUSE, and a missing CONFIG_FILE with ENOENT', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '0.0.0.0', resolve));
    const { port } = blocker.address() as { port: number };
    const kubeconfig = writeScratch(
      'kubeconfig',
      'apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n',
    );
    try {
      const env = {
        KUBECONFIG: kubeconfig,
        MODE: 'namespace',
        SQS_QUEUE_URL: 'http://127.0.0.1:1/000000000000/q',
        METRICS_PORT: String(port),
        LOG_FORMAT: 'json',
        ALERTS_ENABLED: 'false',
      };
      const taken = await cli(['run'], env);
      assert.equal(taken.code, 1);
      assert.match(
        taken.stderr,
        new RegExp(`starting ops server on 0\\.0\\.0\\.0:${port}\\n\\s+caused by: listen EADDRINUSE: address already in use 0\\.0\\.0\\.0:${port}`),
      );
      const missing = await cli(['run'], { ...env, CONFIG_FILE: join(scratch, 'nowhere.toml') });
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /reading config file .*nowhere\.toml \(from env CONFIG_FILE\)\n\s+caused by: ENOENT: no such file or directory/);
    } finally {
      blocker.close();
    }
  });
});
