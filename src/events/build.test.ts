import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  buildCapacityReservationInterruption,
  buildEvent,
  buildRebalanceRecommendation,
  buildScheduledChange,
  buildSpotInterruption,
  buildStateChange,
  buildUnknown,
  wrapInSns,
  type AnyKindInput,
  type BuildInput,
} from './build.js';
import { INSTANCE_STATES } from './kinds/state-change.js';
import { SPOT_INSTANCE_ACTIONS } from './kinds/spot-interruption.js';
import { PARSERS, parseMessage, type ParsedEvent } from './parse.js';
import { SAMPLES } from './test-support.js';

const [spot, rebalance, stateChange, capacityReservation, health] = SAMPLES as [
  (typeof SAMPLES)[0],
  (typeof SAMPLES)[0],
  (typeof SAMPLES)[0],
  (typeof SAMPLES)[0],
  (typeof SAMPLES)[0],
];

function sampleInput(sample: (typeof SAMPLES)[number]): BuildInput & AnyKindInput {
  const f = sample.fields;
  const instanceIds = f.instanceIds as string[];
  return {
    instanceId: instanceIds[0]!,
    time: f.time as Date,
    region: f.region as string,
    account: f.account as string,
    id: f.id as string,
    ...(sample.kind === 'scheduled_change' ? { instanceIds, startTime: f.startTime as Date } : {}),
    ...(sample.kind === 'capacity_reservation_interrupted' ? { zone: 'eu-west-1b' } : {}),
  };
}

function parsed(body: string): ParsedEvent {
  const result = parseMessage(body);
  assert.equal(result.ok, true, `expected an event, got ${JSON.stringify(result)}`);
  if (!result.ok) throw new Error('unreachable');
  return result.event;
}

describe('build: exactly the sample format', () => {
  it('spot interruption warning, byte for byte', () => {
    assert.equal(buildSpotInterruption({ ...sampleInput(spot), zone: 'eu-west-1a', action: 'terminate' }), spot.body);
  });

  it('rebalance recommendation, byte for byte', () => {
    assert.equal(buildRebalanceRecommendation(sampleInput(rebalance)), rebalance.body);
  });

  it('state-change notification, byte for byte', () => {
    assert.equal(buildStateChange({ ...sampleInput(stateChange), state: 'shutting-down' }), stateChange.body);
  });

  it('capacity-reservation warning, byte for byte', () => {
    assert.equal(buildCapacityReservationInterruption(sampleInput(capacityReservation)), capacityReservation.body);
  });

  it('AWS Health scheduled change, byte for byte', () => {
    const input = sampleInput(health);
    assert.equal(buildScheduledChange({ ...input, instanceIds: input.instanceIds!, startTime: input.startTime! }), health.body);
  });

  it('a scheduled change is written in whole seconds, in RFC 1123 as Health writes it', () => {
    const body = buildScheduledChange({ ...sampleInput(health), instanceIds: ['i-0123abcd'], startTime: new Date('2026-12-07T09:00:00.750Z') });
    assert.match(body, /"startTime": "Mon, 07 Dec 2026 09:00:00 GMT"/);
    const event = parsed(body);
    assert.equal(event.kind === 'scheduled_change' && event.startTime.toISOString(), '2026-12-07T09:00:00.000Z');
  });

  it('buildEvent dispatches by kind, with the defaults of the samples', () => {
    assert.equal(buildEvent('spot_interrupted', sampleInput(spot)), spot.body);
    assert.equal(buildEvent('rebalance_recommendation', sampleInput(rebalance)), rebalance.body);
    assert.equal(buildEvent('state_change', sampleInput(stateChange)), stateChange.body);
    assert.equal(buildEvent('capacity_reservation_interrupted', sampleInput(capacityReservation)), capacityReservation.body);
    assert.equal(buildEvent('scheduled_change', sampleInput(health)), health.body);
  });
});

describe('build -> parse', () => {
  for (const sample of SAMPLES) {
    it(`${sample.kind} gives back the sample's fields, directly and through SNS`, () => {
      const body = buildEvent(sample.kind, sampleInput(sample));
      assert.deepEqual(parsed(body), sample.fields);
      assert.deepEqual(parsed(wrapInSns(body)), sample.fields);
    });
  }

  it('a random UUID when no id is given', () => {
    const { id: _id, ...input } = sampleInput(spot);
    const first = parsed(buildSpotInterruption(input));
    const second = parsed(buildSpotInterruption(input));
    assert.match(first.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(first.id, second.id);
  });

  it('milliseconds survive; whole seconds are written without them', () => {
    const withMillis = buildSpotInterruption({ ...sampleInput(spot), time: new Date('2026-11-24T16:52:12.345Z') });
    assert.match(withMillis, /"time": "2026-11-24T16:52:12\.345Z"/);
    assert.equal(parsed(withMillis).time.toISOString(), '2026-11-24T16:52:12.345Z');
  });

  it('an unknown event', () => {
    const body = buildUnknown({ ...sampleInput(spot), source: 'aws.health', detailType: 'AWS Health Abuse Event', detail: { service: 'EC2' } });
    assert.match(body, /"detail": \{\n {4}"service": "EC2"\n {2}\}\n\}\n$/);
    assert.deepEqual(parsed(body), {
      kind: 'unknown',
      id: spot.fields.id,
      instanceIds: [],
      time: spot.fields.time,
      region: spot.fields.region,
      account: spot.fields.account,
      source: 'aws.health',
      detailType: 'AWS Health Abuse Event',
    });
  });
});

describe('build refuses what the parser would reject', () => {
  const good = sampleInput(spot);
  const cases: Array<[string, Partial<BuildInput>, RegExp]> = [
    ['a bad instance id', { instanceId: 'i-XYZ' }, /instanceId must be an EC2 instance id/],
    ['a bad account', { account: '42' }, /account must be a 12-digit AWS account id/],
    ['a bad region', { region: 'Virginia' }, /region must be an AWS region name/],
    ['an empty id', { id: '' }, /id must be a non-empty event id/],
    ['an invalid Date', { time: new Date('nope') }, /time must be a valid Date/],
    ['a five-digit year', { time: new Date('+010000-01-01T00:00:00Z') }, /time must be a valid Date in years 0000-9999/],
  ];
  it('a scheduled change without instances, or with a bad one', () => {
    const input = { ...sampleInput(health), startTime: new Date('2026-12-07T09:00:00Z') };
    assert.throws(() => buildScheduledChange({ ...input, instanceIds: [] }), /instanceIds must name at least one instance/);
    assert.throws(() => buildScheduledChange({ ...input, instanceIds: ['i-0123abcd', 'h-0123abcd'] }), /instanceIds\[1\] must be an EC2 instance id/);
    assert.throws(() => buildScheduledChange({ ...input, instanceIds: ['i-0123abcd'], startTime: new Date('nope') }), /startTime must be a valid Date/);
  });
  for (const [name, change, message] of cases) {
    it(name, () => assert.throws(() => buildRebalanceRecommendation({ ...good, ...change }), message));
  }
});

describe('build -> parse round trip (property)', () => {
  const hex = '0123456789abcdef'.split('');
  const input = fc.record({
    instanceId: fc
      .integer({ min: 8, max: 17 })
      .chain((n) => fc.array(fc.constantFrom(...hex), { minLength: n, maxLength: n }))
      .map((d) => `i-${d.join('')}`),
    time: fc.date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }),
    region: fc.stringMatching(/^[a-z]{2}(-[a-z0-9]{1,8}){1,3}$/),
    account: fc.stringMatching(/^\d{12}$/),
    id: fc.option(fc.stringMatching(/^[\x21-\x7e]{1,128}$/), { nil: undefined }),
    action: fc.constantFrom(...SPOT_INSTANCE_ACTIONS),
    state: fc.constantFrom(...INSTANCE_STATES),
    startTime: fc.date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }),
    kind: fc.constantFrom(...PARSERS.map((parser) => parser.kind)),
    sns: fc.boolean(),
  });

  it('every built body parses back to the fields it was built from', () => {
    fc.assert(
      fc.property(input, ({ kind, sns, ...fields }) => {
        const body = buildEvent(kind, fields);
        const event = parsed(sns ? wrapInSns(body) : body);
        assert.equal(event.kind, kind);
        if (fields.id !== undefined) assert.equal(event.id, fields.id);
        assert.deepEqual(event.instanceIds, [fields.instanceId]);
        assert.equal(event.time.getTime(), fields.time.getTime());
        assert.equal(event.region, fields.region);
        assert.equal(event.account, fields.account);
        if (event.kind === 'spot_interrupted') {
          assert.equal(event.action, fields.action);
          assert.equal(event.deadline.getTime(), fields.time.getTime() + 120_000);
        }
        if (event.kind === 'state_change') assert.equal(event.state, fields.state);
        if (event.kind === 'capacity_reservation_interrupted') assert.equal(event.deadline.getTime(), fields.time.getTime() + 120_000);
        if (event.kind === 'scheduled_change') assert.equal(event.startTime.getTime(), Math.floor(fields.startTime.getTime() / 1000) * 1000);
        else assert.equal(event.instanceId, fields.instanceId);
      }),
      { numRuns: 500 },
    );
  });
});
