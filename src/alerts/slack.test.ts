import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, afterEach, describe, it } from 'node:test';

import type { Alert, DeploymentOutcome, DeploymentRef } from './alert.js';
import { sampleAlerts } from './samples.js';
import { parseRetryAfter, SlackAlerter, type SlackAlerterOptions } from './slack.js';
import { allText, assertWithinSlackLimits, captureLogs, SECRET_PATH, startReceiver, type Receiver, type Reply } from './test-support.js';

/** Every log line of every test here: none may hold the webhook's secret path. */
const everyLogLine: string[] = [];
const receivers: Receiver[] = [];

after(() => {
  assert.ok(everyLogLine.length > 20, 'the tests logged enough to make the secret check meaningful');
  for (const line of everyLogLine) {
    assert.ok(!line.includes(SECRET_PATH), `a log line holds the webhook path: ${line}`);
    assert.ok(!line.includes('xsecret-webhook-token'), `a log line holds the webhook token: ${line}`);
  }
});

afterEach(async () => {
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function receiver(reply?: (index: number) => Reply): Promise<Receiver> {
  const r = await startReceiver(reply);
  receivers.push(r);
  return r;
}

/** An alerter on the receiver whose retry delays are recorded, not waited for. */
function alerterFor(url: string, options: Partial<SlackAlerterOptions> = {}) {
  const logs = captureLogs(everyLogLine);
  const delays: number[] = [];
  const alerter = new SlackAlerter({
    webhookUrl: url,
    logger: logs.logger,
    clusterName: 'test-cluster',
    clock: {
      now: () => new Date(),
      sleep: async (ms) => {
        delays.push(ms);
      },
    },
    ...options,
  });
  return { alerter, logs, delays };
}

const completed = (i: number): Alert => ({
  kind: 'recovery_completed',
  deployment: { namespace: 'shop', name: `svc-${i}` },
  durationMs: 1000 + i,
});

describe('SlackAlerter against a local webhook', () => {
  it('posts every kind, in order, as JSON with blocks and a text fallback', async () => {
    const slack = await receiver();
    const { alerter, logs } = alerterFor(slack.url);
    const now = new Date();
    const alerts = sampleAlerts(now);
    for (const alert of alerts) alerter.notify(alert);
    await alerter.flush(5000);

    assert.equal(slack.requests.length, alerts.length);
    for (const request of slack.requests) {
      assert.equal(request.method, 'POST');
      assert.equal(request.path, SECRET_PATH);
      assert.match(String(request.headers['content-type']), /^application\/json/);
    }
    const messages = slack.messages();
    messages.forEach(assertWithinSlackLimits);
    for (const m of messages) {
      assert.equal(m.blocks[0]?.type, 'header');
      assert.ok(m.blocks.some((b) => b.type === 'section'));
      assert.equal(m.blocks.at(-1)?.type, 'context');
      assert.match(m.text, /^\[test-cluster\] /);
    }

    // Key facts per kind, in the order sampleAlerts gives them.
    const byKind = new Map(alerts.map((a, i) => [a.kind, messages[i]!]));
    const expectFacts = (kind: Alert['kind'], facts: (string | RegExp)[]) => {
      const m = byKind.get(kind);
      assert.ok(m, kind);
      for (const fact of facts) {
        if (typeof fact === 'string') assert.ok(m.text.includes(fact), `${kind} text lacks "${fact}": ${m.text}`);
        else assert.match(m.text, fact, kind);
      }
    };
    expectFacts('interruption_detected', [
      'i-0a1b2c3d4e5f60718',
      'ip-10-0-47-201.eu-west-1.compute.internal',
      new Date(now.getTime() + 110_000).toISOString(),
      /\(1(09|10) s left\)/,
      '4 Deployments affected',
    ]);
    expectFacts('migration_started', ['4 Deployments to Fargate', 'shop/checkout-api', 'ops/report-renderer']);
    expectFacts('health_check_failed', ['catalog/search', 'attempt 2 of 3', 'readiness probe failed']);
    expectFacts('migration_failed', ['catalog/search', 'rollout did not complete within 2m0s']);
    expectFacts('rollback', ['catalog/search', 'to spot nodes', 'failed its health checks']);
    expectFacts('template_reverted', ['shop/order-worker', 'compute-type=spot', 're-applied once', 'docs/gitops.md']);
    expectFacts('migration_summary', ['2 migrated, 1 skipped, 1 failed of 4 Deployments', 'Failed: catalog/search']);
    expectFacts('recovery_started', ['2 Deployments back to spot', 'shop/order-worker']);
    expectFacts('recovery_completed', ['shop/checkout-api is back on spot', '52.3 s']);
    expectFacts('recovery_failed', ['shop/order-worker', 'after 2 attempts', 'Insufficient cpu', 'next attempt at', '(in 30 min)']);
    assert.match(allText(byKind.get('migration_summary')!), /migrated in 41\.2 s/);

    assert.deepEqual(alerter.stats, { sent: alerts.length, failed: 0, dropped: 0, pending: 0 });
    assert.deepEqual(logs.warnings(), []);
  });

  it('sends a 200-Deployment summary as one message with the long tail folded, within Slack limits', async () => {
    const slack = await receiver();
    const { alerter } = alerterFor(slack.url);
    const outcomes = Array.from({ length: 200 }, (_, i): DeploymentRef & DeploymentOutcome =>
      i % 20 === 0
        ? { namespace: 'apps', name: `app-${i}`, result: 'skipped', reason: 'fargate_incompatible', detail: 'daemon-like' }
        : { namespace: 'apps', name: `app-${i}`, result: 'migrated', durationMs: 3000 + i * 10 },
    );
    alerter.notify({ kind: 'migration_summary', eventId: 'evt-200', instances: [{ instanceId: 'i-1' }], outcomes, durationMs: 80_000 });
    await alerter.flush(5000);

    assert.equal(slack.requests.length, 1);
    const [message] = slack.messages();
    assert.ok(message);
    assertWithinSlackLimits(message);
    assert.match(message.text, /190 migrated, 10 skipped, 0 failed of 200 Deployments/);
    const body = allText(message);
    assert.match(body, /…and 180 more \(180 migrated\)/);
    assert.equal((body.match(/`apps\/app-\d+` (migrated|skipped)/g) ?? []).length, 20, 'lists 20 Deployments');
    assert.ok(slack.requests[0]!.body.length < 10_000, `payload is ${slack.requests[0]!.body.length} bytes`);
  });

  it('honours Retry-After on 429, then sends', async () => {
    const slack = await receiver((i) => (i === 0 ? { status: 429, headers: { 'retry-after': '3' }, body: 'rate_limited' } : {}));
    const { alerter, delays, logs } = alerterFor(slack.url);
    alerter.notify(completed(1));
    await alerter.flush(5000);

    assert.deepEqual(delays, [3000], 'waits the 3 s Slack asked for');
    assert.equal(slack.requests.length, 2);
    assert.equal(slack.requests[1]!.body, slack.requests[0]!.body, 'the same message again');
    assert.deepEqual(alerter.stats, { sent: 1, failed: 0, dropped: 0, pending: 0 });
    const retry = logs.records().find((r) => r.msg.includes('retrying'));
    assert.equal(retry?.delayMs, 3000);
    assert.match(String(retry?.why), /HTTP 429: rate_limited/);
  });

  it('really waits out Retry-After with the default sleep', async () => {
    const slack = await receiver((i) => (i === 0 ? { status: 429, headers: { 'retry-after': '0.3' } } : {}));
    const logs = captureLogs(everyLogLine);
    const alerter = new SlackAlerter({ webhookUrl: slack.url, logger: logs.logger });
    alerter.notify(completed(1));
    await alerter.flush(5000);
    assert.equal(slack.requests.length, 2);
    const gap = slack.requests[1]!.at - slack.requests[0]!.at;
    assert.ok(gap >= 280, `retried after ${gap} ms`);
  });

  it('backs off on 429 without Retry-After as on a 5xx', async () => {
    const slack = await receiver((i) => (i === 0 ? { status: 429 } : {}));
    const { alerter, delays } = alerterFor(slack.url);
    alerter.notify(completed(1));
    await alerter.flush(5000);
    assert.deepEqual(delays, [1000]);
    assert.equal(alerter.stats.sent, 1);
  });

  it('retries a 500, then sends', async () => {
    const slack = await receiver((i) => (i === 0 ? { status: 500, body: 'internal_error' } : {}));
    const { alerter, delays } = alerterFor(slack.url);
    alerter.notify(completed(1));
    await alerter.flush(5000);
    assert.deepEqual(delays, [1000]);
    assert.equal(slack.requests.length, 2);
    assert.deepEqual(alerter.stats, { sent: 1, failed: 0, dropped: 0, pending: 0 });
  });

  it('backs off exponentially, capped, then drops the alert with a warning after maxAttempts', async () => {
    const slack = await receiver(() => ({ status: 503, body: 'service_unavailable' }));
    const { alerter, delays, logs } = alerterFor(slack.url, { maxAttempts: 6, maxBackoffMs: 5000 });
    alerter.notify(completed(1));
    alerter.notify(completed(2));
    await alerter.flush(5000);

    assert.equal(slack.requests.length, 12, 'six tries for each alert');
    assert.deepEqual(delays, [1000, 2000, 4000, 5000, 5000, 1000, 2000, 4000, 5000, 5000]);
    assert.deepEqual(alerter.stats, { sent: 0, failed: 2, dropped: 0, pending: 0 });
    const warnings = logs.warnings();
    assert.equal(warnings.length, 2);
    assert.match(warnings[0]!.msg, /still failing after 6 attempts; alert dropped/);
    assert.equal(warnings[0]!.kind, 'recovery_completed');
    assert.match(String(warnings[0]!.lastError), /HTTP 503: service_unavailable/);
  });

  it('does not retry a 400, and goes on with the next alert', async () => {
    const slack = await receiver((i) => (i === 0 ? { status: 400, body: 'invalid_blocks' } : {}));
    const { alerter, delays, logs } = alerterFor(slack.url);
    alerter.notify(completed(1));
    alerter.notify(completed(2));
    await alerter.flush(5000);

    assert.equal(slack.requests.length, 2);
    assert.match(slack.requests[1]!.body, /svc-2/);
    assert.deepEqual(delays, []);
    assert.deepEqual(alerter.stats, { sent: 1, failed: 1, dropped: 0, pending: 0 });
    const [warning] = logs.warnings();
    assert.equal(warning?.status, 400);
    assert.equal(warning?.response, 'invalid_blocks');
    assert.match(warning?.msg ?? '', /refused the alert \(HTTP 400\); alert dropped/);
  });

  it('retries network errors (receiver gone) with backoff, then drops the alert with a warning', async () => {
    const slack = await receiver();
    await slack.close();
    const { alerter, delays, logs } = alerterFor(slack.url);
    alerter.notify(completed(1));
    await alerter.flush(5000);

    assert.deepEqual(delays, [1000, 2000, 4000, 8000], 'five attempts by default');
    assert.deepEqual(alerter.stats, { sent: 0, failed: 1, dropped: 0, pending: 0 });
    const warnings = logs.warnings();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.msg, /slack webhook still failing after 5 attempts; alert dropped/);
    assert.match(String(warnings[0]!.lastError), /fetch failed.*ECONNREFUSED/);
    const retries = logs.records().filter((r) => r.msg.includes('retrying'));
    assert.equal(retries.length, 4);
    for (const line of logs.lines) assert.ok(!line.includes(SECRET_PATH), line);
  });

  it('times out a request that hangs and retries it', async () => {
    const slack = await receiver((i) => (i === 0 ? { delayMs: 5000 } : {}));
    const { alerter, delays, logs } = alerterFor(slack.url, { requestTimeoutMs: 150 });
    alerter.notify(completed(1));
    await alerter.flush(5000);
    assert.equal(slack.requests.length, 2);
    assert.deepEqual(delays, [1000]);
    assert.equal(alerter.stats.sent, 1);
    assert.match(String(logs.records().find((r) => r.msg.includes('retrying'))?.why), /TimeoutError/);
  });

  it('never logs the webhook URL, even when an error quotes it', async () => {
    const logs = captureLogs(everyLogLine);
    const webhookUrl = `https://hooks.slack.com${SECRET_PATH}`;
    const alerter = new SlackAlerter({
      webhookUrl,
      logger: logs.logger,
      maxAttempts: 2,
      clock: { now: () => new Date(), sleep: async () => {} },
      fetch: async (input) => {
        const url = String(input);
        throw new TypeError(`fetch failed for ${url}`, {
          cause: Object.assign(new Error(`getaddrinfo ENOTFOUND while requesting ${url} (path ${new URL(url).pathname})`), {
            code: 'ENOTFOUND',
          }),
        });
      },
    });
    alerter.notify(completed(1));
    await alerter.flush(5000);

    const [warning] = logs.warnings();
    assert.match(String(warning?.lastError), /TypeError: fetch failed for \[redacted\] <- Error: getaddrinfo ENOTFOUND .* \[ENOTFOUND\]/);
    assert.ok(logs.lines.length >= 2);
    for (const line of logs.lines) {
      assert.ok(!line.includes(SECRET_PATH), line);
      assert.ok(!line.includes('xsecret-webhook-token'), line);
    }
    // Nor does the alerter itself show it when logged or printed.
    assert.ok(!inspect(alerter, { depth: 5 }).includes('xsecret'));
    assert.ok(!JSON.stringify(alerter).includes('xsecret'));
  });

  it('notify() returns at once while the webhook is slow', async () => {
    const slack = await receiver(() => ({ delayMs: 100 }));
    const { alerter } = alerterFor(slack.url);
    const started = performance.now();
    for (let i = 0; i < 5; i++) alerter.notify(completed(i));
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 50, `notify took ${elapsed} ms`);
    assert.equal(alerter.stats.pending, 5);
    assert.equal(alerter.stats.sent, 0);

    // Still returns at once while a send is in flight.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(slack.requests.length, 1, 'one in flight at a time');
    const again = performance.now();
    alerter.notify(completed(5));
    assert.ok(performance.now() - again < 20);

    await alerter.flush(5000);
    assert.deepEqual(
      slack.messages().map((m) => /svc-(\d+)/.exec(m.text)?.[1]),
      ['0', '1', '2', '3', '4', '5'],
      'sent one at a time, in order',
    );
  });

  it('flush() gives up at its timeout', async () => {
    const slack = await receiver(() => ({ delayMs: 3000 }));
    const { alerter, logs } = alerterFor(slack.url);
    alerter.notify(completed(1));
    const started = performance.now();
    await alerter.flush(100);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 90 && elapsed < 1000, `flush took ${elapsed} ms`);
    assert.equal(alerter.stats.pending, 1);
    assert.ok(logs.warnings().some((w) => /flush timed out/.test(w.msg)));
  });

  it('sends the alert as it was when notified, not as the caller later changed it', async () => {
    const slack = await receiver();
    const { alerter } = alerterFor(slack.url);
    const deployments: DeploymentRef[] = [{ namespace: 'shop', name: 'api' }];
    alerter.notify({ kind: 'recovery_started', deployments });
    deployments.push({ namespace: 'shop', name: 'added-later' });
    await alerter.flush(5000);
    assert.match(slack.messages()[0]!.text, /1 Deployment back to spot \(shop\/api\)/);
  });

  it('flush() resolves at once when idle', async () => {
    const slack = await receiver();
    const { alerter } = alerterFor(slack.url);
    const started = performance.now();
    await alerter.flush(10_000);
    assert.ok(performance.now() - started < 50);
  });

  it('drops the oldest alerts when the queue is full, warning once per burst', async () => {
    const slack = await receiver(() => ({ delayMs: 20 }));
    const { alerter, logs } = alerterFor(slack.url, { maxQueue: 3 });
    for (let i = 0; i < 10; i++) alerter.notify(completed(i));
    assert.deepEqual(alerter.stats, { sent: 0, failed: 0, dropped: 7, pending: 3 });
    await alerter.flush(5000);

    assert.deepEqual(
      slack.messages().map((m) => /svc-(\d+)/.exec(m.text)?.[1]),
      ['7', '8', '9'],
      'the newest survive',
    );
    const warnings = logs.warnings();
    assert.equal(warnings.filter((w) => /queue full/.test(w.msg)).length, 1, 'one warning for the burst');
    const drained = warnings.find((w) => /drained/.test(w.msg));
    assert.equal(drained?.dropped, 7);

    // A later burst warns again.
    for (let i = 10; i < 15; i++) alerter.notify(completed(i));
    await alerter.flush(5000);
    assert.equal(logs.warnings().filter((w) => /queue full/.test(w.msg)).length, 2);
    assert.equal(alerter.stats.dropped, 9);
  });

  it('rejects a webhook that is not an http(s) URL without quoting it', () => {
    const logs = captureLogs(everyLogLine);
    for (const webhookUrl of ['hooks.slack.com/services/xsecret-webhook-token', 'ftp://x/xsecret-webhook-token']) {
      assert.throws(
        () => new SlackAlerter({ webhookUrl, logger: logs.logger }),
        (error: Error) => !error.message.includes('xsecret') && /not an http/.test(error.message),
      );
    }
  });
});

describe('parseRetryAfter', () => {
  const now = new Date('2025-03-14T09:00:00Z');
  it('reads seconds and HTTP dates, caps absurd values, and ignores garbage', () => {
    assert.equal(parseRetryAfter('30', now), 30_000);
    assert.equal(parseRetryAfter(' 1.5 ', now), 1500);
    assert.equal(parseRetryAfter('Fri, 14 Mar 2025 09:00:12 GMT', now), 12_000);
    assert.equal(parseRetryAfter('Fri, 14 Mar 2025 08:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('86400', now), 300_000);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });
});
