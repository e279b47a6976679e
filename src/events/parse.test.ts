import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { wrapInSns } from './build.js';
import { MAX_REASON_LENGTH } from './fields.js';
import { EVENT_KINDS, MAX_BODY_BYTES, PARSERS, classify, parseEvent, parseMessage, type ParseResult } from './parse.js';
import { SAMPLES, SAMPLES_DIR, sampleObject } from './test-support.js';

const spot = SAMPLES[0]!;
const stateChange = SAMPLES[2]!;
const capacityReservation = SAMPLES.find((s) => s.kind === 'capacity_reservation_interrupted')!;
const health = SAMPLES.find((s) => s.kind === 'scheduled_change')!;

/** The sample as an object with `edit` applied, serialized. */
function edited(sample = spot, edit: (event: Record<string, any>) => void): string {
  const event = sampleObject(sample);
  edit(event);
  return JSON.stringify(event);
}

function expectMalformed(result: ParseResult, reason: RegExp, kindHint?: string): void {
  assert.equal(result.ok, false, `expected malformed, got ${JSON.stringify(result)}`);
  if (result.ok) return;
  assert.equal(result.kind, 'malformed');
  assert.match(result.reason, reason);
  assert.equal(result.kindHint, kindHint);
  assert.ok(result.reason.length <= MAX_REASON_LENGTH);
  assert.doesNotMatch(result.reason, /[\n\r]/);
}

function expectEvent(result: ParseResult): NonNullable<Extract<ParseResult, { ok: true }>['event']> {
  assert.equal(result.ok, true, `expected an event, got ${JSON.stringify(result)}`);
  if (!result.ok) throw new Error('unreachable');
  return result.event;
}

describe('parseMessage: the samples in test/fixtures/events', () => {
  it('reads the samples from inside the repository', () => {
    assert.match(SAMPLES_DIR.pathname, /\/test\/fixtures\/events\/$/);
  });

  for (const sample of SAMPLES) {
    it(`${sample.file} -> ${sample.kind} with its fields`, () => {
      assert.deepEqual(expectEvent(parseMessage(sample.body)), sample.fields);
    });

    it(`${sample.file} wrapped in an SNS notification -> the same event`, () => {
      assert.deepEqual(expectEvent(parseMessage(wrapInSns(sample.body))), sample.fields);
    });

    it(`sns-${sample.file}, as an SNS subscription delivers it -> the same event`, () => {
      assert.deepEqual(expectEvent(parseMessage(sample.snsBody)), sample.fields);
    });
  }

  it('reads an SNS envelope as SNS writes it (spaced colons, compact Message)', () => {
    const message = JSON.stringify(JSON.parse(spot.body));
    const body = `{
  "Type" : "Notification",
  "MessageId" : "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
  "TopicArn" : "arn:aws:sns:us-east-1:123456789012:spot-events",
  "Message" : ${JSON.stringify(message)},
  "Timestamp" : "2026-11-24T16:52:13.053Z",
  "SignatureVersion" : "1",
  "Signature" : "EXAMPLE",
  "SigningCertURL" : "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-EXAMPLE.pem",
  "UnsubscribeURL" : "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
}`;
    assert.deepEqual(expectEvent(parseMessage(body)), spot.fields);
  });

  it('sets the interruption deadline 120 s after time', () => {
    const event = expectEvent(parseMessage(spot.body));
    assert.equal(event.kind, 'spot_interrupted');
    if (event.kind !== 'spot_interrupted') return;
    assert.equal(event.deadline.getTime() - event.time.getTime(), 120_000);
  });
});

describe('parseMessage: accepted variations', () => {
  for (const action of ['terminate', 'stop', 'hibernate']) {
    it(`instance-action ${action}`, () => {
      const event = expectEvent(parseMessage(edited(spot, (e) => (e.detail['instance-action'] = action))));
      assert.equal(event.kind === 'spot_interrupted' && event.action, action);
    });
  }

  for (const state of ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated']) {
    it(`state ${state}`, () => {
      const event = expectEvent(parseMessage(edited(stateChange, (e) => (e.detail.state = state))));
      assert.equal(event.kind === 'state_change' && event.state, state);
    });
  }

  it('old 8-digit instance ids', () => {
    const event = expectEvent(parseMessage(edited(spot, (e) => (e.detail['instance-id'] = 'i-0123abcd'))));
    assert.deepEqual(event.instanceIds, ['i-0123abcd']);
  });

  it('extra fields, no version, no resources, compact JSON', () => {
    const body = edited(spot, (e) => {
      delete e.version;
      delete e.resources;
      e.extra = { nested: [1, 2, 3] };
      e.detail.more = null;
    });
    assert.deepEqual(expectEvent(parseMessage(body)), spot.fields);
  });

  it('time with fractional seconds and an offset', () => {
    const event = expectEvent(parseMessage(edited(spot, (e) => (e.time = '2026-11-24T18:52:12.250+02:00'))));
    assert.equal(event.time.toISOString(), '2026-11-24T16:52:12.250Z');
  });

  it('a body of exactly MAX_BODY_BYTES', () => {
    const body = spot.body.replace(/\n$/, '');
    const padded = body + ' '.repeat(MAX_BODY_BYTES - Buffer.byteLength(body));
    assert.equal(Buffer.byteLength(padded), MAX_BODY_BYTES);
    assert.deepEqual(expectEvent(parseMessage(padded)), spot.fields);
  });

  it('parseEvent takes an already-decoded body', () => {
    assert.deepEqual(expectEvent(parseEvent(sampleObject(spot))), spot.fields);
  });
});

describe('parseMessage: capacity-reservation warnings and AWS Health scheduled changes', () => {
  it('a capacity-reservation warning has its own kind and the two-minute deadline of a spot warning', () => {
    const event = expectEvent(parseMessage(capacityReservation.body));
    assert.equal(event.kind, 'capacity_reservation_interrupted');
    if (event.kind !== 'capacity_reservation_interrupted') return;
    assert.equal(event.deadline.getTime() - event.time.getTime(), 120_000);
  });

  it('a scheduled change names every affected instance, and startTime is when it happens', () => {
    const event = expectEvent(parseMessage(health.body));
    assert.equal(event.kind, 'scheduled_change');
    if (event.kind !== 'scheduled_change') return;
    assert.deepEqual(event.instanceIds, ['i-07c4e2a9d1b3f5e68', 'i-0e91b4d7a2c6f8350']);
    assert.equal(event.startTime.toISOString(), '2026-12-07T09:00:00.000Z');
  });

  it('entity tags, endTime and descriptions are not read; a repeated instance is named once', () => {
    const body = edited(health, (e) => {
      e.detail.affectedEntities[0].tags = { stage: 'prod' };
      e.detail.affectedEntities.push({ entityValue: 'i-07c4e2a9d1b3f5e68' });
      delete e.detail.endTime;
      delete e.detail.eventDescription;
    });
    assert.deepEqual(expectEvent(parseMessage(body)), health.fields);
  });

  it('startTime as an RFC 3339 timestamp too', () => {
    const event = expectEvent(parseMessage(edited(health, (e) => (e.detail.startTime = '2026-12-07T10:00:00+01:00'))));
    assert.equal(event.kind === 'scheduled_change' && event.startTime.toISOString(), '2026-12-07T09:00:00.000Z');
  });

  it('entities that are not instances (a Dedicated Host) are left out', () => {
    const event = expectEvent(parseMessage(edited(health, (e) => e.detail.affectedEntities.unshift({ entityValue: 'h-0123456789abcdef0' }))));
    assert.deepEqual(event.instanceIds, health.fields.instanceIds);
  });

  const notOurs: Array<[string, (e: Record<string, any>) => void]> = [
    ['another service', (e) => (e.detail.service = 'RDS')],
    ['another category (an issue)', (e) => (e.detail.eventTypeCategory = 'issue')],
    ['an account notification', (e) => (e.detail.eventTypeCategory = 'accountNotification')],
    ['no instance among the entities', (e) => (e.detail.affectedEntities = [{ entityValue: 'h-0123456789abcdef0' }])],
  ];
  for (const [name, edit] of notOurs) {
    it(`a Health event for ${name} is unknown (acknowledged, not acted on)`, () => {
      const event = expectEvent(parseMessage(edited(health, edit)));
      assert.equal(event.kind, 'unknown');
      assert.deepEqual(event.instanceIds, []);
    });
  }

  const bad: Array<[string, (e: Record<string, any>) => void, RegExp]> = [
    ['service missing', (e) => delete e.detail.service, /^detail\.service: missing/],
    ['startTime not a time', (e) => (e.detail.startTime = 'next Tuesday'), /^detail\.startTime: expected a time like "Sat, 28 Nov 2026 15:10:09 GMT"/],
    ['startTime on a day that does not exist', (e) => (e.detail.startTime = 'Mon, 31 Nov 2026 09:00:00 GMT'), /^detail\.startTime: /],
    ['startTime in another zone', (e) => (e.detail.startTime = 'Mon, 07 Dec 2026 09:00:00 PST'), /^detail\.startTime: /],
    ['no affected entities', (e) => (e.detail.affectedEntities = []), /^detail\.affectedEntities: expected a non-empty array/],
    ['an entity that is not an object', (e) => (e.detail.affectedEntities[1] = 'i-0e91b4d7a2c6f8350'), /^detail\.affectedEntities\.1: expected a JSON object/],
    ['an entity without entityValue', (e) => (e.detail.affectedEntities[1] = { tags: {} }), /^detail\.affectedEntities\.1\.entityValue: missing/],
  ];
  for (const [name, edit, reason] of bad) {
    it(`malformed scheduled change: ${name}`, () => expectMalformed(parseMessage(edited(health, edit)), reason, 'scheduled_change'));
  }
});

describe('parseMessage: unknown events are acknowledged, not errors', () => {
  it('another detail-type from aws.ec2', () => {
    const event = expectEvent(parseMessage(edited(spot, (e) => (e['detail-type'] = 'EC2 Instance Launch Successful'))));
    assert.deepEqual(event, {
      kind: 'unknown',
      id: spot.fields.id,
      instanceIds: [],
      time: spot.fields.time,
      region: spot.fields.region,
      account: spot.fields.account,
      source: 'aws.ec2',
      detailType: 'EC2 Instance Launch Successful',
    });
  });

  it('a known detail-type from another source (not trusted as EC2)', () => {
    const event = expectEvent(parseMessage(edited(spot, (e) => (e.source = 'my.app'))));
    assert.equal(event.kind, 'unknown');
    assert.deepEqual(event.instanceIds, []);
  });

  it('an unknown event whose detail names nothing we know', () => {
    const event = expectEvent(
      parseMessage(edited(spot, (e) => ((e.source = 'aws.health'), (e['detail-type'] = 'AWS Health Abuse Event'), (e.detail = { x: [1] })))),
    );
    assert.equal(event.kind, 'unknown');
  });

  it('an unknown event still needs a well-formed envelope', () => {
    expectMalformed(parseMessage(edited(spot, (e) => ((e.source = 'my.app'), delete e.time))), /^time: missing/);
    expectMalformed(parseMessage(edited(spot, (e) => ((e.source = 'my.app'), (e.detail = [])))), /^detail: expected a JSON object, found an array/);
  });
});

describe('parseMessage: malformed input says which field, what was expected, what was found', () => {
  const cases: Array<[name: string, body: string, reason: RegExp, kindHint?: string]> = [
    ['not JSON', 'hello world', /^body is not JSON: Unexpected token/],
    ['truncated JSON', spot.body.slice(0, 50), /^body is not JSON: /],
    ['empty body', '', /^body: empty, expected an EventBridge event as JSON$/],
    ['blank body', ' \n\t', /^body: empty/],
    ['JSON array', '[1,2]', /^body: expected an EventBridge event .* found an array of 2 items$/],
    ['JSON number', '42', /found number 42$/],
    ['JSON null', 'null', /found null$/],
    ['JSON string', '"event"', /found string "event"$/],
    ['object of another shape', '{"foo": 1, "bar": 2}', /^body: expected an EventBridge event .* found an object with keys "foo", "bar"$/],
    ['empty object', '{}', /found an empty object$/],
    ['source missing', edited(spot, (e) => delete e.source), /^source: missing, expected a non-empty string$/],
    ['source not a string', edited(spot, (e) => (e.source = ['aws.ec2'])), /^source: expected a non-empty string, found an array of 1 item$/],
    ['detail-type missing', edited(spot, (e) => delete e['detail-type']), /^detail-type: missing/],
    ['detail-type empty', edited(spot, (e) => (e['detail-type'] = '')), /^detail-type: expected a non-empty string, found an empty string$/],
    ['id missing', edited(spot, (e) => delete e.id), /^id: missing, expected a non-empty event id/, 'spot_interrupted'],
    ['id a number', edited(spot, (e) => (e.id = 7)), /^id: expected .*, found number 7$/, 'spot_interrupted'],
    [
      'time not a timestamp',
      edited(spot, (e) => (e.time = 'yesterday')),
      /^time: expected an RFC 3339 timestamp like 2026-11-24T16:52:12Z, found string "yesterday"$/,
      'spot_interrupted',
    ],
    ['time on a day that does not exist', edited(spot, (e) => (e.time = '2026-02-30T16:52:12Z')), /^time: expected an RFC 3339/, 'spot_interrupted'],
    ['time at hour 24', edited(spot, (e) => (e.time = '2026-11-24T24:00:00Z')), /^time: /, 'spot_interrupted'],
    ['time without a zone', edited(spot, (e) => (e.time = '2026-11-24T16:52:12')), /^time: /, 'spot_interrupted'],
    ['time as epoch seconds', edited(spot, (e) => (e.time = 1795539132)), /^time: .*found number 1795539132$/, 'spot_interrupted'],
    [
      'region not a region',
      edited(spot, (e) => (e.region = 'US East (N. Virginia)')),
      /^region: expected an AWS region name like us-east-1, found string "US East \(N\. Virginia\)"$/,
      'spot_interrupted',
    ],
    ['detail missing', edited(spot, (e) => delete e.detail), /^detail: missing, expected a JSON object$/, 'spot_interrupted'],
    ['detail null', edited(spot, (e) => (e.detail = null)), /^detail: expected a JSON object, found null$/, 'spot_interrupted'],
    [
      'detail a string',
      edited(spot, (e) => (e.detail = '{"instance-id":"i-0b662ef9931388ba0"}')),
      /^detail: expected a JSON object, found string/,
      'spot_interrupted',
    ],
    [
      'instance-id missing',
      edited(spot, (e) => delete e.detail['instance-id']),
      /^detail\.instance-id: missing, expected an EC2 instance id matching \/\^i-\[0-9a-f\]\{8,17\}\$\/$/,
      'spot_interrupted',
    ],
    [
      'instance-id uppercase',
      edited(spot, (e) => (e.detail['instance-id'] = 'i-0B662EF9931388BA0')),
      /^detail\.instance-id: expected an EC2 instance id .*found string "i-0B662EF9931388BA0"$/,
      'spot_interrupted',
    ],
    ['instance-id too long', edited(spot, (e) => (e.detail['instance-id'] = 'i-0b662ef9931388ba00')), /^detail\.instance-id: /, 'spot_interrupted'],
    [
      'instance-id an ARN',
      edited(spot, (e) => (e.detail['instance-id'] = 'arn:aws:ec2:us-east-1a:instance/i-0b662ef9931388ba0')),
      /^detail\.instance-id: .*found string "arn:aws:ec2:us-east-1a:instance\/i-0b662…" \(51 chars\)$/,
      'spot_interrupted',
    ],
    [
      'instance-id an array',
      edited(spot, (e) => (e.detail['instance-id'] = ['i-0b662ef9931388ba0'])),
      /^detail\.instance-id: .*found an array of 1 item$/,
      'spot_interrupted',
    ],
    [
      'instance-action unknown',
      edited(spot, (e) => (e.detail['instance-action'] = 'reboot')),
      /^detail\.instance-action: expected one of terminate\|stop\|hibernate, found string "reboot"$/,
      'spot_interrupted',
    ],
    [
      'instance-action missing',
      edited(spot, (e) => delete e.detail['instance-action']),
      /^detail\.instance-action: missing, expected one of terminate\|stop\|hibernate$/,
      'spot_interrupted',
    ],
    [
      'state unknown',
      edited(stateChange, (e) => (e.detail.state = 'exploded')),
      /^detail\.state: expected one of pending\|running\|stopping\|stopped\|shutting-down\|terminated, found string "exploded"$/,
      'state_change',
    ],
    ['rebalance without instance-id', edited(SAMPLES[1], (e) => (e.detail = {})), /^detail\.instance-id: missing/, 'rebalance_recommendation'],
    [
      'instance-id only on the prototype',
      edited(spot, (e) => (e.detail = JSON.parse('{"__proto__": {"instance-id": "i-0b662ef9931388ba0"}, "instance-action": "stop"}'))),
      /^detail\.instance-id: missing/,
      'spot_interrupted',
    ],
    [
      'SNS Type not Notification',
      '{"Type": "SubscriptionConfirmation", "Message": "confirm"}',
      /^Type: expected "Notification" \(an SNS notification\), found string "SubscriptionConfirmation"$/,
    ],
    ['SNS Message missing', '{"Type": "Notification"}', /^Message: missing, expected the EventBridge event as a JSON string \(SNS notification\)$/],
    [
      'SNS Message an object, not a string',
      JSON.stringify({ Type: 'Notification', Message: sampleObject(spot) }),
      /^Message: expected the EventBridge event as a JSON string .*, found an object with keys "version", "id", "detail-type", "source", … \(9 keys\)$/,
    ],
    ['SNS Message not JSON', wrapInSns('garbage'), /^SNS Message is not JSON: Unexpected token/],
    ['SNS Message empty', wrapInSns(''), /^SNS Message: empty, expected an EventBridge event as JSON$/],
    [
      'SNS Message a JSON array',
      wrapInSns('[]'),
      /^SNS Message: expected an EventBridge event \(an object with "source" and "detail-type"\), found an array of 0 items$/,
    ],
    ['SNS inside SNS', wrapInSns(wrapInSns(spot.body)), /^SNS Message: holds another SNS notification, expected an EventBridge event$/],
    [
      'SNS Message with a bad detail',
      wrapInSns(edited(spot, (e) => (e.detail['instance-id'] = 'i-nope'))),
      /^SNS Message\.detail\.instance-id: expected an EC2 instance id .*found string "i-nope"$/,
      'spot_interrupted',
    ],
    ['SNS Message with a bad envelope', wrapInSns(edited(stateChange, (e) => delete e.region)), /^SNS Message\.region: missing/, 'state_change'],
  ];

  for (const [name, body, reason, kindHint] of cases) {
    it(name, () => expectMalformed(parseMessage(body), reason, kindHint));
  }

  it('a body over 256 KiB, counted in UTF-8 bytes, before JSON.parse', () => {
    const body = spot.body.replace(/\n$/, '');
    const tooBig = body + ' '.repeat(MAX_BODY_BYTES + 1 - Buffer.byteLength(body));
    expectMalformed(parseMessage(tooBig), /^body: 262145 bytes, more than the 262144-byte limit of an SQS message; not parsed$/);
    // Fewer characters than the limit, more bytes: é is two bytes in UTF-8.
    const wide = edited(spot, (e) => (e.note = 'é'.repeat(MAX_BODY_BYTES / 2)));
    assert.ok(wide.length < MAX_BODY_BYTES);
    expectMalformed(parseMessage(wide), /^body: \d+ bytes, more than the 262144-byte limit/);
    // Not JSON at all, but too big: the size is what is reported (JSON.parse never ran).
    expectMalformed(parseMessage('{'.repeat(MAX_BODY_BYTES + 1)), /^body: 262145 bytes/);
  });

  it('the size limit can be set', () => {
    expectMalformed(parseMessage(spot.body, { maxBodyBytes: 100 }), /^body: \d+ bytes, more than the 100-byte limit/);
  });

  it('quotes a huge field only in part', () => {
    const huge = 'x'.repeat(200_000);
    const result = parseMessage(edited(spot, (e) => (e.detail['instance-id'] = huge)));
    expectMalformed(result, /^detail\.instance-id: .*found string "x{39}…" \(200000 chars\)$/, 'spot_interrupted');
  });

  it('keeps reasons on one line and well-formed', () => {
    const result = parseMessage(edited(spot, (e) => (e.detail['instance-id'] = 'a\nb\u0000c\ud800')));
    expectMalformed(result, /found string "a\\nb\\u0000c\\ud800"$/, 'spot_interrupted');
    // V8's message quotes the input it choked on.
    expectMalformed(parseMessage('hello\nworld'), /^body is not JSON: .*"hello\\u000aworld"/);
  });

  it('never throws for a body that is not a string', () => {
    expectMalformed(parseMessage(undefined as unknown as string), /^body: expected a string, found nothing$/);
    expectMalformed(parseMessage(42 as unknown as string), /^body: expected a string, found number 42$/);
  });
});

describe('registry', () => {
  it('lists every kind once', () => {
    assert.deepEqual([...EVENT_KINDS].sort(), [
      'capacity_reservation_interrupted',
      'rebalance_recommendation',
      'scheduled_change',
      'spot_interrupted',
      'state_change',
      'unknown',
    ]);
  });

  it('keys each parser by source and detail-type', () => {
    const keys = PARSERS.map((parser) => `${parser.source} / ${parser.detailType}`);
    assert.deepEqual(keys, [
      'aws.ec2 / EC2 Spot Instance Interruption Warning',
      'aws.ec2 / EC2 Instance Rebalance Recommendation',
      'aws.ec2 / EC2 Instance State-change Notification',
      'aws.ec2 / EC2 Capacity Reservation Instance Interruption Warning',
      'aws.health / AWS Health Event',
    ]);
  });

  it('classifies results by kind, or malformed', () => {
    assert.equal(classify(parseMessage(spot.body)), 'spot_interrupted');
    assert.equal(classify(parseMessage('nope')), 'malformed');
  });
});
