import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { createAlerter, NO_ALERTS, sampleAlerts, SlackAlerter } from './index.js';
import { captureLogs, SECRET_PATH, startReceiver } from './test-support.js';

describe('createAlerter', () => {
  it('is NO_ALERTS while alerts are disabled, even with a webhook', () => {
    const { logger } = captureLogs();
    assert.equal(createAlerter({ alerts: { enabled: false, slack_webhook_url: `https://hooks.slack.com${SECRET_PATH}` } }, logger), NO_ALERTS);
  });

  it('is NO_ALERTS without a webhook, with a warning (as with the Go original sample config: enabled, webhook "")', () => {
    const { logger, warnings } = captureLogs();
    assert.equal(createAlerter({ alerts: { enabled: true } }, logger), NO_ALERTS);
    assert.equal(createAlerter({ alerts: { enabled: true, slack_webhook_url: '' } }, logger), NO_ALERTS);
    assert.deepEqual(
      warnings().map((w) => w.msg),
      Array(2).fill('alerts enabled but alerts.slack_webhook_url is not set: no alert will be sent'),
    );
  });

  it('is a SlackAlerter that delivers to the webhook otherwise, without logging it', async () => {
    const slack = await startReceiver();
    try {
      const logs = captureLogs();
      const alerter = createAlerter({ alerts: { enabled: true, slack_webhook_url: slack.url } }, logs.logger, { clusterName: 'prod-eu' });
      assert.ok(alerter instanceof SlackAlerter);
      const samples = sampleAlerts();
      for (const alert of samples) alerter.notify(alert);
      await alerter.flush(5000);
      assert.equal(slack.requests.length, samples.length);
      assert.ok(slack.messages().every((m) => m.text.startsWith('[prod-eu] ')));
      for (const line of logs.lines) assert.ok(!line.includes(SECRET_PATH), line);
    } finally {
      await slack.close();
    }
  });
});

describe('sampleAlerts', () => {
  it('has one alert of each kind, deadlines and next attempts in the future', () => {
    const now = new Date('2025-03-14T09:00:00Z');
    const samples = sampleAlerts(now);
    const kinds = samples.map((a) => a.kind);
    assert.equal(new Set(kinds).size, kinds.length);
    assert.deepEqual([...kinds].sort(), [
      'health_check_failed',
      'interruption_detected',
      'migration_failed',
      'migration_started',
      'migration_summary',
      'recovery_completed',
      'recovery_failed',
      'recovery_started',
      'rollback',
      'template_reverted',
    ]);
    for (const alert of samples) {
      if (alert.kind === 'interruption_detected') assert.ok(alert.deadline > now);
      if (alert.kind === 'recovery_failed') assert.ok(alert.nextAttemptAt && alert.nextAttemptAt > now);
    }
  });
});
