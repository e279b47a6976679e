import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Alert, DeploymentOutcome, DeploymentRef } from './alert.js';
import { sampleAlerts } from './samples.js';
import { foldedList, SLACK_LIMITS, truncate, type SlackMessage } from './slack-blocks.js';
import { formatSlackMessage, humanDuration, MAX_LISTED_DEPLOYMENTS } from './slack-format.js';
import { allText, assertWithinSlackLimits } from './test-support.js';

const now = new Date('2025-03-14T09:00:00Z');
const ctx = { now, clusterName: 'prod-eu' };
const ref = (i: number): DeploymentRef => ({ namespace: `team-${i % 7}`, name: `service-${String(i).padStart(4, '0')}` });

function summary(outcomes: (DeploymentRef & DeploymentOutcome)[]): Extract<Alert, { kind: 'migration_summary' }> {
  return {
    kind: 'migration_summary',
    eventId: 'evt-1',
    instances: [{ instanceId: 'i-0123456789abcdef0', node: 'ip-10-0-1-5.ec2.internal' }],
    outcomes,
    durationMs: 95_000,
  };
}

/** n Deployments: every 50th failed, every 25th (otherwise) skipped, every 40th still rolling out, the rest migrated. */
function manyOutcomes(n: number): (DeploymentRef & DeploymentOutcome)[] {
  return Array.from({ length: n }, (_, i): DeploymentRef & DeploymentOutcome => {
    if (i % 50 === 0) return { ...ref(i), result: 'failed', reason: 'rollout timed out', rolledBack: i % 100 === 0 };
    if (i % 25 === 0) return { ...ref(i), result: 'skipped', reason: 'fargate_incompatible', detail: 'uses hostPath' };
    if (i % 40 === 0) return { ...ref(i), result: 'in_progress' };
    return { ...ref(i), result: 'migrated', durationMs: 5_000 + i * 100 };
  });
}

function sectionTexts(message: SlackMessage): string[] {
  return message.blocks.flatMap((b) => (b.type === 'section' && b.text ? [b.text.text] : []));
}

describe('formatSlackMessage', () => {
  it('gives every kind a header, a context line and a text fallback, within Slack limits', () => {
    const kinds = new Set<string>();
    for (const alert of sampleAlerts(now)) {
      kinds.add(alert.kind);
      const message = formatSlackMessage(alert, ctx);
      assertWithinSlackLimits(message);
      assert.equal(message.blocks[0]?.type, 'header', alert.kind);
      assert.equal(message.blocks.at(-1)?.type, 'context', alert.kind);
      assert.ok(
        message.blocks.some((b) => b.type === 'section'),
        `${alert.kind} has no section`,
      );
      assert.match(message.text, /^\[prod-eu\] /, alert.kind);
      assert.match(allText(message), /Cluster \*prod-eu\*/, alert.kind);
    }
    assert.equal(kinds.size, 10, 'sampleAlerts covers every kind');
  });

  it('interruption: instances, nodes, deadline as time and seconds left, Deployments affected', () => {
    const message = formatSlackMessage(
      {
        kind: 'interruption_detected',
        eventId: 'evt-42',
        instances: [{ instanceId: 'i-0aaa', node: 'ip-10-0-1-1.ec2.internal' }, { instanceId: 'i-0bbb' }],
        deadline: new Date(now.getTime() + 95_400),
        deployments: 37,
      },
      ctx,
    );
    for (const fact of ['i-0aaa', 'i-0bbb', 'ip-10-0-1-1.ec2.internal', '2025-03-14T09:01:35.400Z', '95 s left', '37 Deployments'])
      assert.ok(message.text.includes(fact), `text lacks ${fact}: ${message.text}`);
    const blocks = allText(message);
    assert.ok(blocks.includes(`<!date^${Math.floor(now.getTime() / 1000) + 95}^`), 'deadline as a Slack date');
    assert.ok(blocks.includes('evt-42'));
    assert.match(blocks, /\*Deployments affected\*\\n37/);
  });

  it('interruption whose deadline has passed says so instead of a negative count', () => {
    const message = formatSlackMessage(
      { kind: 'interruption_detected', eventId: 'e', instances: [{ instanceId: 'i-1' }], deadline: new Date(now.getTime() - 5_000), deployments: 1 },
      ctx,
    );
    assert.match(message.text, /deadline passed 5 s ago/);
    assert.match(allText(message), /\*Nodes\*\\n_not known yet_/);
  });

  it('migration summary: counts per outcome, per-Deployment durations, failures first', () => {
    const message = formatSlackMessage(
      summary([
        { namespace: 'shop', name: 'api', result: 'migrated', durationMs: 12_300 },
        { namespace: 'shop', name: 'web', result: 'migrated', durationMs: 48_000 },
        { namespace: 'ops', name: 'cron', result: 'skipped', reason: 'fargate_incompatible', detail: 'hostPath volume' },
        { namespace: 'shop', name: 'search', result: 'failed', reason: 'health checks failed', rolledBack: true },
        { namespace: 'shop', name: 'queue', result: 'in_progress' },
      ]),
      ctx,
    );
    assertWithinSlackLimits(message);
    assert.match(message.text, /2 migrated, 1 skipped, 1 failed, 1 still rolling out of 5 Deployments in 1 min 35 s/);
    assert.match(message.text, /Failed: shop\/search/);
    const [list] = sectionTexts(message);
    assert.ok(list);
    const lines = list.split('\n').slice(1);
    assert.deepEqual(
      lines.map((l) => /`([^`]+)`/.exec(l)?.[1]),
      ['shop/search', 'shop/queue', 'ops/cron', 'shop/web', 'shop/api'],
      'failed, in progress, skipped, then migrated slowest first',
    );
    assert.match(list, /`shop\/api` migrated in 12\.3 s/);
    assert.match(list, /`shop\/search` failed: health checks failed \(rolled back\)/);
    assert.match(list, /`ops\/cron` skipped: fargate_incompatible \(hostPath volume\)/);
    const all = allText(message);
    assert.match(all, /\*Failed\*\\n1 \(1 rolled back\)/);
    assert.match(all, /median 30\.2 s, slowest 48 s \(`shop\/web`\)/);
  });

  for (const n of [200, 1000]) {
    it(`migration summary of ${n} Deployments is one message that lists ${MAX_LISTED_DEPLOYMENTS} and folds the rest`, () => {
      const outcomes = manyOutcomes(n);
      const message = formatSlackMessage(summary(outcomes), ctx);
      assertWithinSlackLimits(message);
      assert.ok(message.blocks.length <= 6, `${message.blocks.length} blocks`);
      const list = sectionTexts(message).find((t) => t.startsWith('*Deployments*'));
      assert.ok(list);
      const listed = list.split('\n').filter((l) => l.includes('`'));
      assert.equal(listed.length, MAX_LISTED_DEPLOYMENTS);
      assert.match(list, new RegExp(`…and ${n - MAX_LISTED_DEPLOYMENTS} more \\(`));
      const counts = { failed: 0, skipped: 0, in_progress: 0, migrated: 0 };
      for (const o of outcomes) counts[o.result]++;
      assert.match(
        message.text,
        new RegExp(
          `${counts.migrated} migrated, ${counts.skipped} skipped, ${counts.failed} failed, ${counts.in_progress} still rolling out of ${n} Deployments`,
        ),
      );
      // Failures come first, so every listed line of a 200-strong event is a failure (4 of them) or next in line.
      assert.ok(listed[0]?.startsWith(':x:'));
      assert.ok(JSON.stringify(message).length < 10_000, 'the payload stays small');
    });
  }

  it('keeps within limits when names, reasons and details are huge, and escapes mrkdwn', () => {
    const long = 'x'.repeat(5000);
    const outcomes = Array.from({ length: 30 }, (_, i): DeploymentRef & DeploymentOutcome => ({
      namespace: 'ns',
      name: `n${i}-${'y'.repeat(250)}`,
      result: 'failed',
      reason: `<!channel> & ${long}`,
      rolledBack: false,
    }));
    const alerts: Alert[] = [
      summary(outcomes),
      { kind: 'migration_failed', eventId: long, deployment: { namespace: 'a', name: long }, reason: `<@U123> ${long}` },
      { kind: 'health_check_failed', deployment: { namespace: 'a', name: 'b' }, attempt: 3, of: 3, detail: long },
      { kind: 'rollback', deployment: { namespace: 'a', name: long }, reason: long, to: 'none' },
      {
        kind: 'interruption_detected',
        eventId: 'e',
        instances: Array.from({ length: 500 }, (_, i) => ({ instanceId: `i-${i}-${'z'.repeat(40)}`, node: `node-${i}` })),
        deadline: now,
        deployments: 1000,
      },
      { kind: 'recovery_started', deployments: Array.from({ length: 1000 }, (_, i) => ref(i)) },
      { kind: 'migration_started', eventId: 'e', deployments: Array.from({ length: 1000 }, (_, i) => ({ namespace: long, name: `${i}` })) },
      { kind: 'recovery_failed', deployment: { namespace: 'a', name: 'b' }, reason: long, attempts: 9 },
    ];
    for (const alert of alerts) {
      const message = formatSlackMessage(alert, { now, clusterName: 'c'.repeat(300) });
      assertWithinSlackLimits(message);
      const json = JSON.stringify(message);
      assert.ok(!json.includes('<!channel>'), `${alert.kind} lets a mention through`);
      assert.ok(!json.includes('<@U123>'), `${alert.kind} lets a mention through`);
    }
    const failedList = sectionTexts(formatSlackMessage(summary(outcomes), ctx)).find((t) => t.startsWith('*Deployments*'));
    assert.match(failedList ?? '', /&lt;!channel&gt; &amp; x/);
    assert.match(failedList ?? '', /…and \d+ more \(\d+ failed\)$/);
  });

  it('rollback says where to, including nowhere', () => {
    const deployment = { namespace: 'shop', name: 'api' };
    const toSpot = formatSlackMessage({ kind: 'rollback', deployment, reason: 'health checks failed', to: 'spot' }, ctx);
    assert.match(toSpot.text, /Rolled back shop\/api to spot nodes, because health checks failed/);
    const toFargate = formatSlackMessage({ kind: 'rollback', deployment, reason: 'spot unhealthy', to: 'fargate' }, ctx);
    assert.match(toFargate.text, /to Fargate/);
    const none = formatSlackMessage({ kind: 'rollback', deployment, reason: 'patch failed', to: 'none' }, ctx);
    assert.match(none.text, /no earlier placement to restore/);
  });

  it('recovery failed: attempts and next attempt time, or none scheduled', () => {
    const deployment = { namespace: 'shop', name: 'api' };
    const next = new Date(now.getTime() + 15 * 60_000);
    const scheduled = formatSlackMessage({ kind: 'recovery_failed', deployment, reason: 'no spot capacity', attempts: 3, nextAttemptAt: next }, ctx);
    assert.match(scheduled.text, /failed after 3 attempts: no spot capacity; next attempt at 2025-03-14T09:15:00.000Z \(in 15 min\)/);
    assert.match(allText(scheduled), /\*Attempts\*\\n3/);
    const unscheduled = formatSlackMessage({ kind: 'recovery_failed', deployment, reason: 'gave up', attempts: 1 }, ctx);
    assert.match(unscheduled.text, /after 1 attempt: gave up; no further attempt scheduled/);
    assert.match(allText(unscheduled), /none scheduled/);
  });

  it('leaves the cluster out when none is configured', () => {
    const [alert] = sampleAlerts(now);
    const message = formatSlackMessage(alert!, { now });
    assert.ok(!message.text.startsWith('['));
    assert.ok(!allText(message).includes('Cluster'));
  });
});

describe('humanDuration', () => {
  it('reads like a person would say it', () => {
    assert.deepEqual([850, 12_345, 59_990, 92_000, 30 * 60_000, 3_900_000, 7_200_000, -1, Number.NaN].map(humanDuration), [
      '850 ms',
      '12.3 s',
      '1 min',
      '1 min 32 s',
      '30 min',
      '1 h 5 min',
      '2 h',
      'unknown',
      'unknown',
    ]);
  });
});

describe('foldedList', () => {
  it('lists up to the line limit and folds the rest', () => {
    const lines = Array.from({ length: 25 }, (_, i) => `line ${i}`);
    const text = foldedList(lines, 20, (shown) => `(from ${shown})`);
    assert.equal(text.split('\n').length, 21);
    assert.match(text, /\n…and 5 more \(from 20\)$/);
    assert.equal(foldedList(lines.slice(0, 3), 20), 'line 0\nline 1\nline 2');
  });

  it('stops early when the text limit would be passed', () => {
    const lines = Array.from({ length: 20 }, () => 'w'.repeat(290));
    const text = foldedList(lines, 20);
    assert.ok(text.length <= SLACK_LIMITS.sectionTextChars);
    assert.match(text, /…and \d+ more$/);
  });

  it('truncates by code point, never splitting an emoji', () => {
    assert.equal(truncate('😀😀😀', 2), '😀…');
    assert.equal(truncate('abc', 3), 'abc');
  });
});

describe('migration summary: Deployments expected late', () => {
  it('names each with why, folding a long list within Slack limits', () => {
    const late = Array.from({ length: 300 }, (_, i) => ({ ...ref(i), why: `its 3 Fargate launch(es) come after ${1200 + i * 3} others` }));
    const message = formatSlackMessage({ ...summary(manyOutcomes(300)), expectedLate: late }, ctx);
    assertWithinSlackLimits(message);
    const section = sectionTexts(message).find((t) => t.startsWith('*Expected late (Fargate launch throttle)*'));
    assert.ok(section, 'a section for the late ones');
    assert.match(section, /`team-0\/service-0000`: its 3 Fargate launch\(es\) come after 1200 others/);
    assert.match(section, /more expected late\)$/);
  });

  it('has no such section when the forecast expects every Deployment in time', () => {
    const message = formatSlackMessage(summary(manyOutcomes(3)), ctx);
    assert.equal(
      sectionTexts(message).some((t) => t.includes('Expected late')),
      false,
    );
  });
});
