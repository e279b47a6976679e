// SQS message body -> typed event. One registry keyed by (source, detail-type); each kind lives in its
// own file under kinds/. Adding a kind: write kinds/<kind>.ts, add its parser to PARSERS.
//
// Never throws: anything that is not a well-formed event comes back as { ok: false, reason }, a reason
// that names the field, what was expected and (truncated) what was found.

import {
  ACCOUNT_ID,
  EVENT_ID,
  EVENT_TIME,
  NON_EMPTY,
  Problem,
  REGION,
  describe,
  isObject,
  own,
  parseEventTime,
  readObject,
  readString,
  tidyReason,
  truncate,
  type JsonObject,
} from './fields.js';
import { NOT_CLAIMED, type Envelope, type KindParser } from './model.js';
import { capacityReservationInterruptionParser } from './kinds/capacity-reservation-interruption.js';
import { rebalanceRecommendationParser } from './kinds/rebalance-recommendation.js';
import { scheduledChangeParser } from './kinds/scheduled-change.js';
import { spotInterruptionParser } from './kinds/spot-interruption.js';
import { stateChangeParser } from './kinds/state-change.js';
import { UNKNOWN, unknownEvent, type UnknownEvent } from './kinds/unknown.js';

/** Every known kind's parser. The registry below is built from this list. */
export const PARSERS = [
  spotInterruptionParser,
  rebalanceRecommendationParser,
  stateChangeParser,
  capacityReservationInterruptionParser,
  scheduledChangeParser,
] as const;

type EventOf<P> = P extends KindParser<infer E> ? E : never;
export type KnownEvent = EventOf<(typeof PARSERS)[number]>;
export type KnownKind = KnownEvent['kind'];
export type ParsedEvent = KnownEvent | UnknownEvent;
export type EventKind = ParsedEvent['kind'];

export const MALFORMED = 'malformed';
export type MALFORMED = typeof MALFORMED;

/** Every kind a parsed event can have, e.g. to pre-register metric label values. */
export const EVENT_KINDS: readonly EventKind[] = [...PARSERS.map((parser) => parser.kind), UNKNOWN];

export type ParseResult =
  | { ok: true; event: ParsedEvent }
  | {
      ok: false;
      kind: MALFORMED;
      /** One line, at most MAX_REASON_LENGTH chars: which field, what was expected, what was found. */
      reason: string;
      /** Set when source and detail-type named a known kind but the rest was malformed. */
      kindHint?: KnownKind;
    };

/** The metric label for a result: the event's kind, or `malformed`. */
export function classify(result: ParseResult): EventKind | MALFORMED {
  return result.ok ? result.event.kind : result.kind;
}

/** SQS's default (and, before 2025, maximum) message size; EventBridge events are at most 256 KB too. */
export const MAX_BODY_BYTES = 256 * 1024;

export interface ParseOptions {
  /** Bodies larger than this (UTF-8 bytes) are rejected before JSON.parse. Default MAX_BODY_BYTES. */
  maxBodyBytes?: number;
}

function registryKey(source: string, detailType: string): string {
  return JSON.stringify([source, detailType]);
}

const registry = new Map<string, KindParser<KnownEvent>>();
for (const parser of PARSERS) {
  const key = registryKey(parser.source, parser.detailType);
  if (registry.has(key)) throw new Error(`registering event kind ${parser.kind}: ${key} is already taken`);
  registry.set(key, parser);
}

function malformed(reason: string, kindHint?: KnownKind): ParseResult {
  const result: ParseResult = { ok: false, kind: MALFORMED, reason: tidyReason(reason) };
  if (kindHint !== undefined) result.kindHint = kindHint;
  return result;
}

/** What a reason calls the document being read: the body itself, or the Message inside an SNS envelope. */
interface Where {
  readonly whole: string;
  /** Put before field paths. */
  readonly prefix: string;
  readonly insideSns: boolean;
}
const BODY: Where = { whole: 'body', prefix: '', insideSns: false };
const SNS_MESSAGE: Where = { whole: 'SNS Message', prefix: 'SNS Message.', insideSns: true };

function parseJson(text: string, where: Where): { value: unknown } | Problem {
  if (text.trim() === '') return new Problem(`${where.whole}: empty, expected an EventBridge event as JSON`);
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (error) {
    // V8's message quotes a little of the input; tidyReason keeps it on one line.
    const message = error instanceof Error ? error.message : String(error);
    return new Problem(`${where.whole} is not JSON: ${truncate(message, 120)}`);
  }
}

/** SNS delivers `{"Type": "Notification", "Message": "<event as JSON>", …}`; an event has no `Type`. */
function looksLikeSns(value: JsonObject): boolean {
  return Object.hasOwn(value, 'Type') && !Object.hasOwn(value, 'detail-type');
}

/**
 * Parses an SQS message body: an EventBridge event, or an SNS notification that carries one in `Message`.
 * Never throws.
 */
export function parseMessage(body: string, options: ParseOptions = {}): ParseResult {
  if (typeof body !== 'string') return malformed(`body: expected a string, found ${describe(body)}`);
  const max = options.maxBodyBytes ?? MAX_BODY_BYTES;
  // Counted without copying; checked before JSON.parse so an oversized body costs no parse.
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > max) return malformed(`body: ${bytes} bytes, more than the ${max}-byte limit of an SQS message; not parsed`);
  const json = parseJson(body, BODY);
  if (json instanceof Problem) return malformed(json.reason);
  return parseEvent(json.value);
}

/**
 * Parses an already-decoded body (what JSON.parse returns: an event or an SNS notification object).
 * Never throws for JSON values.
 */
export function parseEvent(value: unknown): ParseResult {
  if (isObject(value) && looksLikeSns(value)) return parseSnsNotification(value);
  return parseEventBridge(value, BODY);
}

function parseSnsNotification(envelope: JsonObject): ParseResult {
  const type = own(envelope, 'Type');
  if (type !== 'Notification') {
    return malformed(`Type: expected "Notification" (an SNS notification), found ${describe(type)}`);
  }
  const message = own(envelope, 'Message');
  if (typeof message !== 'string') {
    return malformed(
      `Message: ${message === undefined ? 'missing, expected' : 'expected'} the EventBridge event as a JSON string (SNS notification)${
        message === undefined ? '' : `, found ${describe(message)}`
      }`,
    );
  }
  const json = parseJson(message, SNS_MESSAGE);
  if (json instanceof Problem) return malformed(json.reason);
  if (isObject(json.value) && looksLikeSns(json.value)) {
    return malformed('SNS Message: holds another SNS notification, expected an EventBridge event');
  }
  return parseEventBridge(json.value, SNS_MESSAGE);
}

function parseEventBridge(value: unknown, where: Where): ParseResult {
  const shape = `an EventBridge event (an object with "source" and "detail-type")${where.insideSns ? '' : ' or an SNS notification (an object with "Type")'}`;
  if (!isObject(value)) return malformed(`${where.whole}: expected ${shape}, found ${describe(value)}`);
  if (!Object.hasOwn(value, 'source') && !Object.hasOwn(value, 'detail-type')) {
    return malformed(`${where.whole}: expected ${shape}, found ${describe(value)}`);
  }

  const source = readString(value, 'source', 'source', NON_EMPTY);
  if (source instanceof Problem) return malformed(where.prefix + source.reason);
  const detailType = readString(value, 'detail-type', 'detail-type', NON_EMPTY);
  if (detailType instanceof Problem) return malformed(where.prefix + detailType.reason);
  const parser = registry.get(registryKey(source, detailType));
  // From here on a failure says which kind it would have been, so it can be counted as such.
  const fail = (problem: Problem): ParseResult => malformed(where.prefix + problem.reason, parser?.kind);

  const id = readString(value, 'id', 'id', EVENT_ID);
  if (id instanceof Problem) return fail(id);
  // Kept when it is a valid id and otherwise reported as '' (some EventBridge-compatible servers leave
  // it out), so that such a body still parses; the intake then judges it (intake/event-trust.ts), and an
  // event that names no account is not of the account expected.
  const account = typeof value.account === 'string' && ACCOUNT_ID.test(value.account) ? value.account : '';
  const time = readString(value, 'time', 'time', EVENT_TIME);
  if (time instanceof Problem) return fail(time);
  const region = readString(value, 'region', 'region', REGION);
  if (region instanceof Problem) return fail(region);
  const detail = readObject(value, 'detail', 'detail');
  if (detail instanceof Problem) return fail(detail);

  const envelope: Envelope = {
    id,
    source,
    detailType,
    // EVENT_TIME accepted it, so it parses.
    time: parseEventTime(time) as Date,
    region,
    account,
    detail,
  };
  if (parser === undefined) return { ok: true, event: unknownEvent(envelope) };
  const event = parser.parse(envelope);
  if (event === NOT_CLAIMED) return { ok: true, event: unknownEvent(envelope) };
  return event instanceof Problem ? fail(event) : { ok: true, event };
}
