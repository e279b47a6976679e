// A user of the Go original switching over: the controller started from the original's documented
// sample config.toml (test/fixtures/go-original/config.toml), with only SQS_QUEUE_URL set.
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ensureQueueAndRule, removeQueueAndRule } from '../../testground/src/aws.js';
import { eventually, testGround, uniqueName } from '../support/ground.js';
import { spawnController, type ControllerProcess } from '../support/process.js';

const t = testGround();
const SAMPLE = new URL('../fixtures/go-original/config.toml', import.meta.url).pathname;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function jsonLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("the Go original's sample config.toml", () => {
  let queueName: string;
  let queueUrl: string;
  const scratch = mkdtempSync(join(tmpdir(), 'sfo-go-original-'));
  const processes: ControllerProcess[] = [];

  before(async () => {
    queueName = uniqueName('goq');
    ({ queueUrl } = await ensureQueueAndRule(t.ground, queueName));
  });
  after(async () => {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await removeQueueAndRule(t.ground, queueName, queueUrl);
    rmSync(scratch, { recursive: true, force: true });
  });

  /** Runs the controller until /readyz answers 200, then stops it with SIGTERM; returns its output. */
  async function runUntilReady(configFile: string): Promise<string> {
    // Besides SQS_QUEUE_URL, only the ground's wiring: where the cluster and the local SQS are, and a
    // free metrics port (the sample's default 8080 may be taken on a shared machine).
    const p = await spawnController(t, { CONFIG_FILE: configFile, SQS_QUEUE_URL: queueUrl }, { bare: true });
    processes.push(p);
    await eventually(
      '/readyz to answer 200',
      async () => {
        if (p.child.exitCode !== null) throw new Error(`the controller exited with ${p.child.exitCode}:\n${p.output()}`);
        const res = await fetch(`http://127.0.0.1:${p.metricsPort}/readyz`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      },
      60_000,
    );
    p.child.kill('SIGTERM');
    assert.equal(await p.exited, 0, p.output());
    return p.output();
  }

  it('starts the controller with only SQS_QUEUE_URL set, to /readyz, alerts off with a warning, logs in the original shape', async () => {
    const output = await runUntilReady(SAMPLE);
    assert.doesNotMatch(output, /configuration error/);
    const lines = jsonLines(output);
    const started = lines.find((l) => l.message === 'controller started');
    assert.ok(started, `no "controller started" line in:\n${output}`);
    assert.equal(started.level, 'info');
    assert.match(String(started.time), RFC3339);
    assert.ok(!('msg' in started), 'message, not msg');
    const alerts = lines.find((l) => l.message === 'alerts enabled but alerts.slack_webhook_url is not set: no alert will be sent');
    assert.equal(alerts?.level, 'warn', 'alerts enabled with an empty webhook: a warning, not a failure');
  });

  it('warns about an unknown key, naming it and the file, and starts all the same', async () => {
    const file = join(scratch, 'config.toml');
    copyFileSync(SAMPLE, file);
    appendFileSync(file, '\n[extras]\nretired_setting = "on"\n');
    const lines = jsonLines(await runUntilReady(file));
    const warning = lines.find((l) => l.message === 'unknown config.toml key ignored');
    assert.equal(warning?.level, 'warn');
    assert.equal(warning?.key, 'extras');
    assert.equal(warning?.file, file);
  });
});
