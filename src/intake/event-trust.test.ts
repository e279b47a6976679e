// Which events may act on the cluster: the account and Region expected, and an age limit that lets an
// AWS Health scheduled change through while its startTime is still ahead.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildScheduledChange, buildSpotInterruption, buildStateChange, buildUnknown } from '../events/build.js';
import { parseMessage, type ParsedEvent } from '../events/parse.js';
import { accountOfQueueUrl, DropLogLimiter, judgeEvent, trustedOriginOf, type TrustedOrigin } from './event-trust.js';

const NOW = new Date('2026-11-24T17:00:00Z');
const ACCOUNT = '210987654321';
const ORIGIN: TrustedOrigin = { account: ACCOUNT, region: 'eu-west-1', maxAgeMs: 10 * 60_000 };
const MINUTE = 60_000;

function parsed(body: string): ParsedEvent {
  const result = parseMessage(body);
  assert.ok(result.ok, body);
  return result.event;
}

const warning = (over: { account?: string; region?: string; ageMs?: number } = {}) =>
  parsed(
    buildSpotInterruption({
      instanceId: 'i-07c4e2a9d1b3f5e68',
      account: over.account ?? ACCOUNT,
      region: over.region ?? 'eu-west-1',
      time: new Date(NOW.getTime() - (over.ageMs ?? 5_000)),
    }),
  );

describe('accountOfQueueUrl', () => {
  it('reads the account from the queue URL path, on AWS and on a local server', () => {
    assert.equal(accountOfQueueUrl('https://sqs.eu-west-1.amazonaws.com/210987654321/spot-fargate-orchestrator-prod-eu-west-1'), ACCOUNT);
    assert.equal(accountOfQueueUrl('https://eu-west-1.queue.amazonaws.com/210987654321/q'), ACCOUNT);
    assert.equal(accountOfQueueUrl('http://127.0.0.1:26566/123456789012/spot-fargate-orchestrator-interruptions'), '123456789012');
  });

  it('finds none where the path is not /<12 digits>/<name>', () => {
    for (const url of ['http://127.0.0.1:1/q', 'https://sqs.eu-west-1.amazonaws.com/2109876543/q', 'https://x/210987654321/q/extra', 'not a url']) {
      assert.equal(accountOfQueueUrl(url), undefined, url);
    }
  });
});

describe('trustedOriginOf', () => {
  const aws = { region: 'eu-west-1', sqs_queue_url: `https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/q`, max_event_age: 600_000 };

  it('expects the queue URL account and aws.region by default', () => {
    assert.deepEqual(trustedOriginOf(aws), { account: ACCOUNT, region: 'eu-west-1', maxAgeMs: 600_000 });
  });

  it('takes aws.event_account and aws.event_region over them (a bus in another account or Region forwards the events)', () => {
    assert.deepEqual(trustedOriginOf({ ...aws, event_account: '111122223333', event_region: 'us-west-2' }), {
      account: '111122223333',
      region: 'us-west-2',
      maxAgeMs: 600_000,
    });
  });

  it('checks no account when neither names one', () => {
    assert.equal(trustedOriginOf({ ...aws, sqs_queue_url: 'http://127.0.0.1:1/q' }).account, undefined);
  });
});

describe('judgeEvent', () => {
  it('trusts a fresh event of the expected account and Region', () => {
    assert.deepEqual(judgeEvent(warning(), ORIGIN, NOW), { trusted: true });
  });

  it('drops an event of another account, and one that names no account', () => {
    const other = judgeEvent(warning({ account: '999999999999' }), ORIGIN, NOW);
    assert.deepEqual(other, {
      trusted: false,
      reason: 'foreign_account',
      detail: `the event is from account 999999999999; only events of account ${ACCOUNT} are acted on`,
    });
    const body = JSON.parse(buildSpotInterruption({ instanceId: 'i-07c4e2a9d1b3f5e68', account: ACCOUNT, region: 'eu-west-1', time: NOW }));
    delete body.account;
    const none = judgeEvent(parsed(JSON.stringify(body)), ORIGIN, NOW);
    assert.equal(none.trusted, false);
    assert.equal(!none.trusted && none.reason, 'foreign_account');
    assert.match(!none.trusted ? none.detail : '', /names no account/);
    // No account expected: any account goes.
    assert.deepEqual(judgeEvent(warning({ account: '999999999999' }), { region: 'eu-west-1', maxAgeMs: MINUTE }, NOW), { trusted: true });
  });

  it('drops an event of another Region', () => {
    const verdict = judgeEvent(warning({ region: 'us-east-1' }), ORIGIN, NOW);
    assert.equal(!verdict.trusted && verdict.reason, 'foreign_region');
  });

  it('drops an event older than the max age (a DLQ redrive), and keeps one just inside it', () => {
    assert.deepEqual(judgeEvent(warning({ ageMs: 10 * MINUTE }), ORIGIN, NOW), { trusted: true });
    const stale = judgeEvent(warning({ ageMs: 3 * 24 * 60 * MINUTE }), ORIGIN, NOW);
    assert.equal(!stale.trusted && stale.reason, 'stale');
    assert.match(!stale.trusted ? stale.detail : '', /is 259200 s ago, more than aws\.max_event_age \(600 s\)/);
    const stoppedLongAgo = parsed(
      buildStateChange({
        instanceId: 'i-07c4e2a9d1b3f5e68',
        account: ACCOUNT,
        region: 'eu-west-1',
        time: new Date(NOW.getTime() - 11 * MINUTE),
        state: 'stopped',
      }),
    );
    assert.equal(judgeEvent(stoppedLongAgo, ORIGIN, NOW).trusted, false);
  });

  it('keeps an old scheduled change while its startTime is ahead, and drops it once the startTime has passed', () => {
    const change = (startInMs: number) =>
      parsed(
        buildScheduledChange({
          instanceIds: ['i-07c4e2a9d1b3f5e68'],
          account: ACCOUNT,
          region: 'eu-west-1',
          time: new Date(NOW.getTime() - 2 * 24 * 60 * MINUTE),
          startTime: new Date(NOW.getTime() + startInMs),
        }),
      );
    assert.deepEqual(judgeEvent(change(3 * 24 * 60 * MINUTE), ORIGIN, NOW), { trusted: true }, 'still ahead: what it says holds');
    const passed = judgeEvent(change(-MINUTE), ORIGIN, NOW);
    assert.equal(!passed.trusted && passed.reason, 'stale');
    assert.match(!passed.trusted ? passed.detail : '', /and its startTime .* has passed/);
    // The account and Region still count for it.
    const foreign = parsed(
      buildScheduledChange({
        instanceIds: ['i-07c4e2a9d1b3f5e68'],
        account: '999999999999',
        region: 'eu-west-1',
        time: NOW,
        startTime: new Date(NOW.getTime() + MINUTE),
      }),
    );
    assert.equal(judgeEvent(foreign, ORIGIN, NOW).trusted, false);
  });

  it('leaves unknown kinds alone: they change nothing whatever their origin', () => {
    const unknown = parsed(
      buildUnknown({ source: 'aws.ec2', detailType: 'EC2 AMI State Change', account: '999999999999', region: 'us-east-1', time: new Date(0) }),
    );
    assert.deepEqual(judgeEvent(unknown, ORIGIN, NOW), { trusted: true });
  });
});

describe('DropLogLimiter', () => {
  it('logs the first drop of each reason, then at most one per interval, with the count left unlogged', () => {
    const limiter = new DropLogLimiter(60_000);
    assert.deepEqual(limiter.admit('stale', 0), { suppressed: 0 });
    assert.deepEqual(limiter.admit('foreign_account', 1), { suppressed: 0 }, 'each reason has its own budget');
    for (let i = 0; i < 500; i++) assert.equal(limiter.admit('stale', 10 + i), undefined);
    assert.deepEqual(limiter.admit('stale', 60_000), { suppressed: 500 });
    assert.equal(limiter.admit('stale', 60_001), undefined);
    assert.deepEqual(limiter.admit('stale', 120_000), { suppressed: 1 });
  });
});
