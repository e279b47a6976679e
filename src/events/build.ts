// Sample event bodies in exactly the format of the samples in test/fixtures/events (key order, two-space
// indentation, `resources` on one line, trailing newline), for the `simulate interruption` CLI and tests.
// What build writes, parseMessage reads back field for field.

import { randomUUID } from 'node:crypto';
import { ACCOUNT_ID, EVENT_ID, INSTANCE_ID, NON_EMPTY, REGION, formatEventTime, formatHealthTime, type StringRule } from './fields.js';
import { CAPACITY_RESERVATION_INTERRUPTED, capacityReservationInterruptionParser } from './kinds/capacity-reservation-interruption.js';
import { REBALANCE_RECOMMENDATION, rebalanceRecommendationParser } from './kinds/rebalance-recommendation.js';
import { SCHEDULED_CHANGE, scheduledChangeParser } from './kinds/scheduled-change.js';
import { SPOT_INTERRUPTED, spotInterruptionParser, type SpotInstanceAction } from './kinds/spot-interruption.js';
import { STATE_CHANGE, stateChangeParser, type InstanceState } from './kinds/state-change.js';
import type { KnownKind } from './parse.js';

export interface BuildInput {
  instanceId: string;
  /** Written in whole seconds like EventBridge does, with milliseconds only when the Date has some. */
  time: Date;
  region: string;
  account: string;
  /** EventBridge event id; a random UUID when left out. */
  id?: string;
}

export interface SpotInterruptionInput extends BuildInput {
  /** Default `terminate`. */
  action?: SpotInstanceAction;
  /** Goes into the resource ARN the way the warning writes it (`arn:aws:ec2:<zone>:instance/<id>`); default `<region>a`. */
  zone?: string;
}

export interface StateChangeInput extends BuildInput {
  /** Default `shutting-down`, as in the sample. */
  state?: InstanceState;
}

export interface ScheduledChangeInput extends Omit<BuildInput, 'instanceId'> {
  /** The affected instances, one entity each, in this order. */
  instanceIds: string[];
  /** When the change happens; written in whole seconds (RFC 1123), milliseconds are dropped. */
  startTime: Date;
  /** Default startTime + 30 min. */
  endTime?: Date;
  /** Default AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED. */
  eventTypeCode?: string;
}

/** What buildEvent takes: every kind's input, with a scheduled change's instances defaulting to `instanceId`. */
export type AnyKindInput = SpotInterruptionInput & StateChangeInput & Partial<Pick<ScheduledChangeInput, 'instanceIds' | 'startTime' | 'eventTypeCode'>>;

/** A scheduled change this long after the event when buildEvent is not told when (AWS gives retirements two weeks). */
export const DEFAULT_SCHEDULED_CHANGE_NOTICE_MS = 14 * 24 * 3600_000;

export interface UnknownEventInput extends Omit<BuildInput, 'instanceId'> {
  source: string;
  detailType: string;
  detail?: Record<string, unknown>;
}

interface Rendered {
  id: string;
  detailType: string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown>;
}

function check(what: string, value: unknown, rule: StringRule): string {
  if (typeof value !== 'string' || !rule.test(value)) {
    throw new TypeError(`building event: ${what} must be ${rule.what}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkTime(time: Date, what = 'time'): string {
  const year = time instanceof Date ? time.getUTCFullYear() : Number.NaN;
  // parseMessage reads four-digit years only.
  if (!(year >= 0 && year <= 9999)) throw new RangeError(`building event: ${what} must be a valid Date in years 0000-9999, got ${String(time)}`);
  return formatEventTime(time);
}

/** The common fields, checked with the rules the parser applies, so every built body parses. Throws otherwise. */
function common(input: Omit<BuildInput, 'instanceId'>): Pick<Rendered, 'id' | 'account' | 'time' | 'region'> {
  return {
    id: check('id', input.id ?? randomUUID(), EVENT_ID),
    account: check('account', input.account, ACCOUNT_ID),
    time: checkTime(input.time),
    region: check('region', input.region, REGION),
  };
}

function render(event: Rendered): string {
  const detail = JSON.stringify(event.detail, null, 2).replace(/\n/g, '\n  ');
  return [
    '{',
    `  "version": "0",`,
    `  "id": ${JSON.stringify(event.id)},`,
    `  "detail-type": ${JSON.stringify(event.detailType)},`,
    `  "source": ${JSON.stringify(event.source)},`,
    `  "account": ${JSON.stringify(event.account)},`,
    `  "time": ${JSON.stringify(event.time)},`,
    `  "region": ${JSON.stringify(event.region)},`,
    `  "resources": [${event.resources.map((arn) => JSON.stringify(arn)).join(', ')}],`,
    `  "detail": ${detail}`,
    '}',
    '',
  ].join('\n');
}

function instanceArn(region: string, account: string, instanceId: string): string {
  return `arn:aws:ec2:${region}:${account}:instance/${instanceId}`;
}

export function buildSpotInterruption(input: SpotInterruptionInput): string {
  const base = common(input);
  const instanceId = check('instanceId', input.instanceId, INSTANCE_ID);
  const zone = input.zone ?? `${base.region}a`;
  return render({
    ...base,
    source: spotInterruptionParser.source,
    detailType: spotInterruptionParser.detailType,
    resources: [`arn:aws:ec2:${zone}:instance/${instanceId}`],
    detail: { 'instance-id': instanceId, 'instance-action': input.action ?? 'terminate' },
  });
}

/** Same detail and resource ARN as the spot warning. */
export function buildCapacityReservationInterruption(input: SpotInterruptionInput): string {
  const base = common(input);
  const instanceId = check('instanceId', input.instanceId, INSTANCE_ID);
  const zone = input.zone ?? `${base.region}a`;
  return render({
    ...base,
    source: capacityReservationInterruptionParser.source,
    detailType: capacityReservationInterruptionParser.detailType,
    resources: [`arn:aws:ec2:${zone}:instance/${instanceId}`],
    detail: { 'instance-id': instanceId, 'instance-action': input.action ?? 'terminate' },
  });
}

/** An AWS Health EC2 scheduled change; Health writes plain instance ids in `resources`. */
export function buildScheduledChange(input: ScheduledChangeInput): string {
  const base = common(input);
  if (!Array.isArray(input.instanceIds) || input.instanceIds.length === 0) throw new TypeError('building event: instanceIds must name at least one instance');
  const instanceIds = input.instanceIds.map((id, i) => check(`instanceIds[${i}]`, id, INSTANCE_ID));
  const halfHourLater = new Date(input.startTime.getTime() + 30 * 60_000);
  // The default must not push a valid startTime out of the four-digit years.
  const endTime = input.endTime ?? (halfHourLater.getUTCFullYear() <= 9999 ? halfHourLater : input.startTime);
  checkTime(input.startTime, 'startTime');
  checkTime(endTime, 'endTime');
  const eventTypeCode = check('eventTypeCode', input.eventTypeCode ?? 'AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED', NON_EMPTY);
  return render({
    ...base,
    source: scheduledChangeParser.source,
    detailType: scheduledChangeParser.detailType,
    resources: instanceIds,
    detail: {
      eventArn: `arn:aws:health:${base.region}::event/EC2/${eventTypeCode}/${eventTypeCode}_${base.id
        .replace(/[^A-Za-z0-9]/g, '')
        .slice(0, 12)
        .toUpperCase()}`,
      service: 'EC2',
      eventTypeCode,
      eventTypeCategory: 'scheduledChange',
      startTime: formatHealthTime(input.startTime),
      endTime: formatHealthTime(endTime),
      eventDescription: [{ language: 'en_US', latestDescription: 'The instance is scheduled for retirement.' }],
      affectedEntities: instanceIds.map((entityValue) => ({ entityValue })),
    },
  });
}

export function buildRebalanceRecommendation(input: BuildInput): string {
  const base = common(input);
  const instanceId = check('instanceId', input.instanceId, INSTANCE_ID);
  return render({
    ...base,
    source: rebalanceRecommendationParser.source,
    detailType: rebalanceRecommendationParser.detailType,
    resources: [instanceArn(base.region, base.account, instanceId)],
    detail: { 'instance-id': instanceId },
  });
}

export function buildStateChange(input: StateChangeInput): string {
  const base = common(input);
  const instanceId = check('instanceId', input.instanceId, INSTANCE_ID);
  return render({
    ...base,
    source: stateChangeParser.source,
    detailType: stateChangeParser.detailType,
    resources: [instanceArn(base.region, base.account, instanceId)],
    detail: { 'instance-id': instanceId, state: input.state ?? 'shutting-down' },
  });
}

/** An event no parser claims (unless source and detailType are a known kind's). */
export function buildUnknown(input: UnknownEventInput): string {
  return render({
    ...common(input),
    source: check('source', input.source, NON_EMPTY),
    detailType: check('detailType', input.detailType, NON_EMPTY),
    resources: [],
    detail: input.detail ?? {},
  });
}

/** The body of a known kind with that kind's defaults. Throws on input the parser would reject. */
export function buildEvent(kind: KnownKind, input: AnyKindInput): string {
  switch (kind) {
    case SPOT_INTERRUPTED:
      return buildSpotInterruption(input);
    case CAPACITY_RESERVATION_INTERRUPTED:
      return buildCapacityReservationInterruption(input);
    case SCHEDULED_CHANGE:
      return buildScheduledChange({
        ...input,
        instanceIds: input.instanceIds ?? [input.instanceId],
        startTime: input.startTime ?? new Date(input.time.getTime() + DEFAULT_SCHEDULED_CHANGE_NOTICE_MS),
      });
    case STATE_CHANGE:
      return buildStateChange(input);
    case REBALANCE_RECOMMENDATION:
      return buildRebalanceRecommendation(input);
    default: {
      const unhandled: never = kind;
      throw new TypeError(`building event: no builder for kind ${String(unhandled)}`);
    }
  }
}

export interface SnsWrapOptions {
  topicArn?: string;
  messageId?: string;
  timestamp?: Date;
}

/** The body an SQS queue subscribed to an SNS topic receives (raw message delivery off). */
export function wrapInSns(body: string, options: SnsWrapOptions = {}): string {
  const timestamp = options.timestamp ?? new Date();
  const topicArn = options.topicArn ?? 'arn:aws:sns:us-east-1:123456789012:spot-events';
  return `${JSON.stringify(
    {
      Type: 'Notification',
      MessageId: options.messageId ?? randomUUID(),
      TopicArn: topicArn,
      Message: body,
      Timestamp: timestamp.toISOString(),
      SignatureVersion: '1',
      Signature: 'EXAMPLE',
      SigningCertURL: 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-EXAMPLE.pem',
      UnsubscribeURL: `https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${topicArn}:EXAMPLE`,
    },
    null,
    2,
  )}\n`;
}
