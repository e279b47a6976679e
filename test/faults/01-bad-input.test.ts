// Fault 1, bad input. The parser's property: whatever the body, a classified result and no throw.
// End to end: garbage, truncated, retyped, huge and SNS-wrapped-garbage bodies sent to a real queue
// in front of a running controller: it does not crash, classifies each (the malformed count in
// /metrics is exactly what the parser says), logs each once, deletes them all, and still moves the
// Deployments of the one good warning among them. Bad annotations and bad config values are named.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import fc from 'fast-check';
import { buildSpotInterruption } from '../../src/events/build.js';
import { MAX_REASON_LENGTH } from '../../src/events/fields.js';
import { classify, EVENT_KINDS, parseMessage } from '../../src/events/parse.js';
import { parseProviderId } from '../../src/events/provider-id.js';
import { queueEmpty } from '../../testground/src/aws.js';
import { awsClientConfig } from '../../testground/src/ground.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import { auditNamespace } from '../support/faults-audit.js';
import { FaultController, M, metric, scanForSecrets } from '../support/faults-controller.js';
import { createFleet, waitMoved } from '../support/faults-fleet.js';
import { FIXED_BODIES, garbageBody, hugeBodies, sqsSafe } from '../support/faults-garbage.js';
import { ScenarioLedger } from '../support/faults-ledger.js';
import { FAULTS_SEED, full } from '../support/faults-random.js';
import { eventually, testGround } from '../support/ground.js';
import { faultScenario } from '../support/scenario.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const ledger = new ScenarioLedger('bad input', 1);
const ROOT = new URL('../..', import.meta.url).pathname;

const BAD_OVERRIDES: Record<string, string> = {
  'spot-orchestrator/rollout-timeout': 'soon',
  'spot-orchestrator/verification-delay': '-5s',
  'spot-orchestrator/recovery-cooldown': '1 hour',
  'spot-orchestrator/recovery-enabled': 'maybe',
  'spot-orchestrator/allow-fargate': 'perhaps',
};

describe('fault: bad input', () => {
  const controllers: FaultController[] = [];
  // A short visibility timeout: a message not deleted would come back, and be counted twice.
  const scenario = faultScenario(t, ledger, {
    prefix: 'fbad',
    visibilityTimeoutSeconds: 3,
    controllers: () => controllers,
    teardown: async () => injector.cancel(),
  });

  it('the parser classifies every generated body and never throws (property, fast-check)', () =>
    ledger.run(async () => {
      const numRuns = full(4000, 600);
      fc.assert(
        fc.property(garbageBody, (body) => {
          const result = parseMessage(body);
          assert.ok([...EVENT_KINDS, 'malformed'].includes(classify(result)));
          if (!result.ok) {
            assert.ok(result.reason.length > 0 && result.reason.length <= MAX_REASON_LENGTH);
            // biome-ignore lint/suspicious/noControlCharactersInRegex: a reason must carry no control character
            assert.doesNotMatch(result.reason, /[\u0000-\u001f]/);
          }
        }),
        { numRuns, seed: FAULTS_SEED },
      );
      ledger.add('cases', numRuns);
      ledger.note('property runs', numRuns);
    }));

  it('a running controller classifies, logs once and deletes every bad message, and still moves the Deployments of the good one', () =>
    ledger.run(async () => {
      const { namespace, queueUrl, secrets } = scenario;
      const fleet = await createFleet(t, injector, {
        namespace,
        nodes: 1,
        deployments: 3,
        replicas: (i) => 1 + (i % 2),
        annotations: (i) => (i === 0 ? BAD_OVERRIDES : {}),
        prefix: 'fbad',
      });
      const c = await FaultController.spawn(t, secrets, { MODE: 'namespace', NAMESPACE: namespace, SQS_QUEUE_URL: queueUrl }, 'bad-input');
      controllers.push(c);
      await c.waitFor('controller started');

      const generated = fc.sample(garbageBody, { numRuns: full(200, 40), seed: FAULTS_SEED });
      const bodies = [...FIXED_BODIES, ...hugeBodies(), ...generated].map(sqsSafe);
      const expected = bodies.map((b) => classify(parseMessage(b)));
      const sqs = new SQSClient(awsClientConfig(t.ground));
      const sent = new Map<string, { body: string; kind: string }>();
      const small = bodies.map((body, i) => ({ body, kind: expected[i]! })).filter((b) => Buffer.byteLength(b.body) < 20_000);
      const large = bodies.map((body, i) => ({ body, kind: expected[i]! })).filter((b) => Buffer.byteLength(b.body) >= 20_000);
      for (let i = 0; i < small.length; i += 10) {
        const batch = small.slice(i, i + 10);
        const out = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: batch.map((b, j) => ({ Id: String(j), MessageBody: b.body })) }));
        assert.equal(out.Failed?.length ?? 0, 0, JSON.stringify(out.Failed));
        for (const ok of out.Successful ?? []) sent.set(ok.MessageId!, batch[Number(ok.Id)]!);
      }
      for (const b of large) {
        const out = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: b.body }));
        sent.set(out.MessageId!, b);
      }
      // The one good message, behind all the garbage.
      const node = await t.core.readNode({ name: fleet.nodes[0]! });
      const { instanceId, zone } = parseProviderId(node.spec?.providerID)!;
      const good = await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: buildSpotInterruption({ instanceId, zone: zone ?? undefined, time: new Date(), region: t.ground.region, account: t.ground.account }),
        }),
      );
      ledger.add('cases', bodies.length + 1);
      ledger.add('faults', bodies.length);

      const total = bodies.length + 1;
      await eventually('every message received', async () => (metric(await c.metrics(), M.received) >= total ? true : undefined), 60_000, 250);
      await eventually('the queue to be empty', async () => ((await queueEmpty(t.ground, queueUrl)) ? true : undefined), 30_000, 250);
      // Past the visibility timeout: nothing came back (each was deleted, none is handled twice).
      await new Promise((r) => setTimeout(r, 4500));
      assert.ok(c.alive, `the controller crashed: ${c.output().slice(-2000)}`);
      assert.equal((await fetch(`http://127.0.0.1:${c.p.metricsPort}/healthz`)).status, 200);

      const text = await c.metrics();
      const counts: Record<string, number> = {};
      for (const k of expected) counts[k] = (counts[k] ?? 0) + 1;
      counts.spot_interrupted = (counts.spot_interrupted ?? 0) + 1;
      for (const kind of [...EVENT_KINDS, 'malformed']) {
        assert.equal(metric(text, M.received, { kind }), counts[kind] ?? 0, `messages_received_total{kind="${kind}"}`);
      }
      assert.equal(metric(text, M.received), total, 'received once each');
      assert.equal(metric(text, M.deleted), total, 'deleted once each');
      ledger.note('malformed', counts.malformed ?? 0);
      ledger.note('unknown kind', counts.unknown ?? 0);
      ledger.note('well-formed but foreign', total - 1 - (counts.malformed ?? 0) - (counts.unknown ?? 0));

      // Logged once each: a malformed body with its message id and a reason, anything else as handled.
      const lines = c.lines();
      for (const [messageId, b] of sent) {
        const about = lines.filter((l) => l.messageId === messageId);
        if (b.kind === 'malformed') {
          const logged = about.filter((l) => l.message === 'malformed message; deleting it');
          assert.equal(logged.length, 1, `malformed ${messageId} logged ${logged.length} times`);
          assert.equal(typeof logged[0]!.reason, 'string');
          assert.ok((logged[0]!.reason as string).length <= MAX_REASON_LENGTH);
        } else {
          // Handled, or dropped unhandled (another account or Region, too old: intake/event-trust.ts), once.
          const once = about.filter((l) => l.message === 'message handled' || l.message === 'message dropped');
          assert.equal(once.length, 1, `${b.kind} ${messageId} handled or dropped once`);
        }
      }
      // No log line carries a body: the largest line stays far below the huge bodies.
      assert.ok(
        Math.max(
          ...c
            .output()
            .split('\n')
            .map((l) => l.length),
        ) < 20_000,
        'a body was logged whole',
      );
      void good;

      const moved = await waitMoved(t, fleet, 60_000);
      assert.deepEqual(moved.pending, [], 'the good message moved its Deployments');
      const { problems } = await auditNamespace(t, ledger, namespace, fleet.before, fleet.sentinels, { compareResourceVersion: true });
      assert.deepEqual(problems, []);

      // The bad annotations: reported by name and value (log line and Event), global values used.
      const bad = fleet.names[0]!;
      const events = (await t.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${bad}` })).items.filter(
        (e) => e.reason === 'InvalidOverride',
      );
      for (const [annotation, value] of Object.entries(BAD_OVERRIDES)) {
        assert.ok(
          events.some((e) => e.message?.includes(annotation) && e.message.includes(JSON.stringify(value))),
          `InvalidOverride Event for ${annotation}=${value}`,
        );
        assert.ok(
          lines.some((l) => l.annotation === annotation && l.value === value && l.deployment === `${namespace}/${bad}`),
          `log line for ${annotation}`,
        );
      }
      ledger.add('cases', Object.keys(BAD_OVERRIDES).length);
      ledger.add('faults', Object.keys(BAD_OVERRIDES).length);

      const leaks = await scanForSecrets(t, ledger, secrets, controllers, [namespace]);
      assert.deepEqual(leaks, []);
      await c.kill('SIGTERM');
      await injector.terminateNode(fleet.nodes[0]!);
    }));

  it('bad config values stop the start with the key, the layer and the value named', () =>
    ledger.run(async () => {
      const dir = mkdtempSync(join(tmpdir(), 'faults-config-'));
      const secretPath = `/services/TFAULTS/BFAULTS/faultsConfigSecret${Date.now()}`;
      const toml = (name: string, text: string) => {
        const path = join(dir, name);
        writeFileSync(path, text);
        return path;
      };
      // Every value is checked before the start fails, so one start reports several bad values; each
      // of these starts carries a few, from the environment and from config.toml.
      const cases: { env: Record<string, string>; expect: string[]; values: number; secret?: string }[] = [
        {
          env: {
            ROLLOUT_TIMEOUT: 'ten',
            HEALTH_CHECK_INTERVAL: '0s',
            MAX_CONCURRENT_PATCHES: '-3',
            METRICS_PORT: '99999',
            MODE: 'cluster',
            LOG_LEVEL: 'loud',
            RECOVERY_BACKOFF_BASE: '1h',
            RECOVERY_MAX_BACKOFF: '1m',
            ALERTS_ENABLED: 'true',
            SLACK_WEBHOOK_URL: `ftp://hooks.example.invalid${secretPath}`,
          },
          values: 8,
          secret: secretPath,
          expect: [
            'invalid configuration (8 problems)',
            'migration.rollout_timeout from env ROLLOUT_TIMEOUT: got "ten"',
            'expected a duration greater than zero',
            'monitoring.health_check_interval from env HEALTH_CHECK_INTERVAL: got "0s" (zero is not allowed here)',
            'controller.max_concurrent_patches from env MAX_CONCURRENT_PATCHES: got "-3"; expected a whole number >= 1',
            'controller.metrics_port from env METRICS_PORT: got "99999"; expected a whole number from 1 to 65535',
            'kubernetes.mode from env MODE: got "cluster"; expected one of single, namespace',
            'logging.level from env LOG_LEVEL: got "loud"',
            'recovery.max_backoff from env RECOVERY_MAX_BACKOFF: got 1m0s; expected a duration of at least recovery.backoff_base (1h0m0s from env RECOVERY_BACKOFF_BASE)',
            'alerts.slack_webhook_url from env SLACK_WEBHOOK_URL: got <redacted>',
          ],
        },
        {
          env: {
            CONFIG_FILE: toml(
              'bad.toml',
              `[migration]\nrollout_timeout = 90\nverification_delay = "5s"\n[monitoring]\nhealth_check_retrys = 3\n[alerts]\nslack_webhook_url = "not a url ${secretPath}"\n`,
            ),
            // The environment wins over the file: its bad value is the one reported.
            VERIFICATION_DELAY: 'later',
            SQS_QUEUE_URL: '',
          },
          values: 5,
          secret: secretPath,
          expect: [
            'bad.toml: got 90 (a number without a unit)',
            'migration.rollout_timeout from /',
            'bad.toml: unknown key monitoring.health_check_retrys',
            'migration.verification_delay from env VERIFICATION_DELAY: got "later"',
            'alerts.slack_webhook_url from /',
            'bad.toml: got <redacted>',
            'aws.sqs_queue_url from default: not set',
            'set env SQS_QUEUE_URL or sqs_queue_url under [aws] in config.toml',
          ],
        },
        {
          env: { ROLLOUT_TIMEOUT: '-1s' },
          values: 1,
          expect: ['invalid configuration (1 problem)', 'migration.rollout_timeout from env ROLLOUT_TIMEOUT: got "-1s"'],
        },
      ];
      const base = {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        MODE: 'namespace',
        NAMESPACE: 'faults-config',
        SQS_QUEUE_URL: 'http://127.0.0.1:9/000000000000/none',
        KUBECONFIG: t.ground.kubeconfig,
        LOG_FORMAT: 'json',
      };
      try {
        await Promise.all(
          cases.map(async (k) => {
            const { code, output } = await runCli({ ...base, ...k.env });
            const what = JSON.stringify(k.env);
            assert.equal(code, 1, `${what}: exit code ${code}\n${output}`);
            assert.match(output, /configuration error/, what);
            for (const e of k.expect) assert.ok(output.includes(e), `${what}: expected "${e}" in:\n${output}`);
            if (k.secret) assert.ok(!output.includes(k.secret) && !output.includes(k.secret.split('/').pop()!), `${what}: the webhook leaked:\n${output}`);
          }),
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const values = cases.reduce((n, k) => n + k.values, 0);
      ledger.add('cases', values);
      ledger.add('faults', values);
      ledger.note('bad config values', values);
    }));
});

/** `spot-orchestrator run` with exactly this environment; killed if it has not exited in 20 s. */
function runCli(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'run'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
