// Readers for untrusted JSON. Each returns the value, or a Problem that names the field, says what was
// expected and shows (truncated) what was found. They never throw.

/** Longest reason a malformed result carries; what was found is cut to fit, never the whole body. */
export const MAX_REASON_LENGTH = 300;

/** How many characters of a found string a reason quotes. */
const QUOTED_CHARS = 40;

export type JsonObject = { [key: string]: unknown };

/** Why a field, or the whole message, was rejected. A value, not an Error: parsing never throws. */
export class Problem {
  constructor(readonly reason: string) {}

  /** The same problem seen from an enclosing document, e.g. `SNS Message.` + `detail.state: …`. */
  within(prefix: string): Problem {
    return new Problem(prefix + this.reason);
  }
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Own properties only: a body of `{}` must not find `constructor` or `toString` on the prototype. */
export function own(object: JsonObject, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

/** Cuts a string to at most `max` UTF-16 units without splitting a surrogate pair. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, max - 1);
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…`;
}

function quote(text: string, max: number): string {
  const head = JSON.stringify(truncate(text, max));
  return text.length > max ? `${head} (${text.length} chars)` : head;
}

/** A short, single-line description of a JSON value for a reason: its type and a truncated glimpse. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return value === '' ? 'an empty string' : `string ${quote(value, QUOTED_CHARS)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (Array.isArray(value)) return `an array of ${value.length} item${value.length === 1 ? '' : 's'}`;
  if (isObject(value)) {
    const keys = Object.keys(value);
    if (keys.length === 0) return 'an empty object';
    const shown = keys
      .slice(0, 4)
      .map((key) => quote(key, 20))
      .join(', ');
    return `an object with keys ${shown}${keys.length > 4 ? `, … (${keys.length} keys)` : ''}`;
  }
  return typeof value;
}

/** `path: expected X, found Y`, or `path: missing, expected X` when the field is absent. */
export function expected(path: string, what: string, found: unknown): Problem {
  return new Problem(found === undefined ? `${path}: missing, expected ${what}` : `${path}: expected ${what}, found ${describe(found)}`);
}

export interface StringRule {
  /** Words for the reason: "expected <what>". */
  what: string;
  test: (value: string) => boolean;
}

export const NON_EMPTY: StringRule = { what: 'a non-empty string', test: (value) => value.length > 0 };

export function readString(object: JsonObject, key: string, path: string, rule: StringRule = NON_EMPTY): string | Problem {
  const value = own(object, key);
  return typeof value === 'string' && rule.test(value) ? value : expected(path, rule.what, value);
}

export function readEnum<T extends string>(object: JsonObject, key: string, path: string, values: readonly T[]): T | Problem {
  const value = own(object, key);
  return typeof value === 'string' && (values as readonly string[]).includes(value) ? (value as T) : expected(path, `one of ${values.join('|')}`, value);
}

export function readObject(object: JsonObject, key: string, path: string): JsonObject | Problem {
  const value = own(object, key);
  return isObject(value) ? value : expected(path, 'a JSON object', value);
}

// ---- identifiers shared by the parser, the builder and the providerID parser -------------------------

/** EC2 instance ids: `i-` and 8 (older) or 17 lowercase hex digits; the range between is tolerated. */
export const INSTANCE_ID_PATTERN = /^i-[0-9a-f]{8,17}$/;
export const INSTANCE_ID: StringRule = {
  what: `an EC2 instance id matching ${String(INSTANCE_ID_PATTERN)}`,
  test: (value) => INSTANCE_ID_PATTERN.test(value),
};
export function isInstanceId(value: unknown): value is string {
  return typeof value === 'string' && INSTANCE_ID_PATTERN.test(value);
}

export const ACCOUNT_ID: StringRule = { what: 'a 12-digit AWS account id', test: (value) => /^\d{12}$/.test(value) };

// Loose on purpose (partitions add names like us-gov-west-1, eu-isoe-west-1); it only keeps log lines and
// metric labels tidy.
export const REGION: StringRule = {
  what: 'an AWS region name like us-east-1',
  test: (value) => value.length <= 40 && /^[a-z]{2}(-[a-z0-9]+)+$/.test(value),
};

// EventBridge ids are UUIDs; anything printable and short is accepted so a foreign producer's id still
// works as a deduplication key and an annotation value.
export const EVENT_ID: StringRule = {
  what: 'a non-empty event id of printable ASCII, at most 128 chars',
  test: (value) => /^[\x21-\x7e]{1,128}$/.test(value),
};

// ---- time --------------------------------------------------------------------------------------------

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * An RFC 3339 timestamp as EventBridge writes it (`2026-11-24T16:52:12Z`), or null. Date.parse alone
 * is too lenient: V8 rolls `02-30` over into March and accepts `24:00`.
 */
export function parseEventTime(text: string): Date | null {
  const match = RFC3339.exec(text);
  if (match === null) return null;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const offsetHours = match[7] === undefined ? 0 : Number(match[7]);
  const offsetMinutes = match[8] === undefined ? 0 : Number(match[8]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return null;
  const millis = Date.parse(text);
  return Number.isNaN(millis) ? null : new Date(millis);
}

export const EVENT_TIME: StringRule = {
  what: 'an RFC 3339 timestamp like 2026-11-24T16:52:12Z',
  test: (value) => parseEventTime(value) !== null,
};

/** EventBridge's format: whole seconds, UTC; milliseconds are written only when present (lossless). */
export function formatEventTime(time: Date): string {
  const iso = time.toISOString();
  return time.getUTCMilliseconds() === 0 ? iso.replace(/\.000Z$/, 'Z') : iso;
}

/** RFC 1123 in GMT, as AWS Health writes `startTime` and `endTime` (`Sat, 28 Nov 2026 15:10:09 GMT`). */
const RFC1123 = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * An AWS Health time: RFC 1123 in GMT, or RFC 3339 (some producers and replays write that), or null.
 * The weekday is not checked against the date: a wrong one costs nothing, and the date is what counts.
 */
export function parseHealthTime(text: string): Date | null {
  const match = RFC1123.exec(text);
  if (match === null) return parseEventTime(text);
  const day = Number(match[1]);
  const month = MONTHS.indexOf(match[2]!) + 1;
  const [year, hour, minute, second] = match.slice(3, 7).map(Number) as [number, number, number, number];
  if (day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) return null;
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  return date;
}

export const HEALTH_TIME: StringRule = {
  what: 'a time like "Sat, 28 Nov 2026 15:10:09 GMT" (RFC 1123) or an RFC 3339 timestamp',
  test: (value) => parseHealthTime(value) !== null,
};

/** AWS Health's format, in whole seconds (RFC 1123 has no fraction: milliseconds are dropped). */
export function formatHealthTime(time: Date): string {
  const year = String(time.getUTCFullYear()).padStart(4, '0');
  const day = String(time.getUTCDate()).padStart(2, '0');
  const clock = [time.getUTCHours(), time.getUTCMinutes(), time.getUTCSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  const weekday = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][time.getUTCDay()];
  return `${weekday}, ${day} ${MONTHS[time.getUTCMonth()]} ${year} ${clock} GMT`;
}

// ---- reasons -----------------------------------------------------------------------------------------

/**
 * One line, well-formed, at most MAX_REASON_LENGTH: reasons go to logs, and parts of them (JSON.parse's
 * message quotes the input) come from the body.
 */
export function tidyReason(reason: string): string {
  const oneLine = reason
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what this escapes
    .replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
  return truncate(oneLine, MAX_REASON_LENGTH);
}
