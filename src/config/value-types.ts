// How one raw value becomes a typed one. The same value types read environment variables (strings),
// config.toml values (strings, numbers, booleans) and Deployment annotations (strings), so a setting
// is checked by the same rule and described by the same words wherever it comes from.

import { DurationError, formatDuration, parseDuration } from './duration.js';
import { type LabelSelector, parseLabelSelector } from './label-selector.js';

/** The typed value, or what was expected instead and (when it helps) why the value did not fit. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string; reason?: string };

export interface ValueType<T> {
  /** What a valid value looks like, for messages: "true or false (also 1, t, T, TRUE, True, 0, f, F, FALSE, False)". */
  expected: string;
  /** Never throws: a bad value is reported as { ok: false } so callers can collect every problem. */
  parse(raw: unknown): Parsed<T>;
  /** Human form, as it would be written in config.toml (durations as "5m0s"). */
  format(value: T): string;
}

/** Go's strconv.ParseBool spellings, which the Go original accepted for every boolean setting. */
const TRUE_WORDS: ReadonlySet<string> = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS: ReadonlySet<string> = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

export const booleanType: ValueType<boolean> = {
  expected: 'true or false (also 1, t, T, TRUE, True, 0, f, F, FALSE, False)',
  parse(raw) {
    const expected = booleanType.expected;
    if (typeof raw === 'boolean') return { ok: true, value: raw };
    if (raw === 1 || raw === 0) return { ok: true, value: raw === 1 };
    if (typeof raw !== 'string') return { ok: false, expected };
    const text = raw.trim();
    if (TRUE_WORDS.has(text)) return { ok: true, value: true };
    if (FALSE_WORDS.has(text)) return { ok: true, value: false };
    return { ok: false, expected };
  },
  format: String,
};

export function integerType(min: number, max = Number.MAX_SAFE_INTEGER): ValueType<number> {
  const expected = max === Number.MAX_SAFE_INTEGER ? `a whole number >= ${min}` : `a whole number from ${min} to ${max}`;
  return {
    expected,
    parse(raw) {
      const value = typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : raw;
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
        return { ok: false, expected };
      }
      return { ok: true, value };
    },
    format: String,
  };
}

/** A rate per second greater than zero, written "20" or "20/s" (fractions allowed: "0.5/s"). */
export const ratePerSecondType: ValueType<number> = {
  expected: 'a rate per second greater than zero, such as "20/s" or "20"',
  parse(raw) {
    const text = typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim().replace(/\s*\/\s*s$/, '') : '';
    const value = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
    return Number.isFinite(value) && value > 0 ? { ok: true, value } : { ok: false, expected: ratePerSecondType.expected };
  },
  format: (value) => `${value}/s`,
};

/** A Kubernetes priority value (a 32-bit integer, negative allowed); unset means "from the pods". */
export const priorityType: ValueType<number | undefined> = {
  expected: 'a whole number from -2147483648 to 2147483647, as a PriorityClass value',
  parse(raw) {
    const value = typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : raw;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < -2147483648 || value > 2147483647) {
      return { ok: false, expected: priorityType.expected };
    }
    return { ok: true, value };
  },
  format: (value) => (value === undefined ? "the pods' priority" : String(value)),
};

/**
 * The longest wait Node's timers hold (2^31 - 1 ms, about 24.8 days): a longer one fires after 1 ms,
 * so a "600h" rollout timeout would time out at once and a long interval would become a busy loop.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** Go-style duration in milliseconds; zero only where "no wait" means something. */
export function durationType(options: { allowZero: boolean }): ValueType<number> {
  const expected = options.allowZero ? 'a duration of zero or more, such as "0s", "5s" or "1h30m"' : 'a duration greater than zero, such as "5s" or "1h30m"';
  return {
    expected,
    parse(raw) {
      // A bare 0 needs no unit, in Go's time.ParseDuration and so in the original's config; TOML may
      // also give it as a number. Any other number is refused: Go would read it as nanoseconds.
      if (raw === 0) raw = '0';
      if (typeof raw !== 'string') {
        return { ok: false, expected, reason: typeof raw === 'number' ? 'a number without a unit' : undefined };
      }
      let value: number;
      try {
        value = parseDuration(raw);
      } catch (error) {
        if (error instanceof DurationError) return { ok: false, expected, reason: error.reason };
        throw error;
      }
      if (value === 0 && !options.allowZero) return { ok: false, expected, reason: 'zero is not allowed here' };
      if (value > MAX_DURATION_MS) return { ok: false, expected, reason: `longer than ${formatDuration(MAX_DURATION_MS)}, the longest wait a timer can hold` };
      return { ok: true, value };
    },
    format: formatDuration,
  };
}

/** One of a fixed set of words, matched case-insensitively ("INFO" is info) and returned in lower case. */
export function enumType<T extends string>(values: readonly T[]): ValueType<T> {
  const expected = `one of ${values.join(', ')}`;
  return {
    expected,
    parse(raw) {
      const text = typeof raw === 'string' ? raw.trim().toLowerCase() : undefined;
      const value = values.find((candidate) => candidate === text);
      return value === undefined ? { ok: false, expected } : { ok: true, value };
    },
    format: String,
  };
}

export const textType: ValueType<string> = {
  expected: 'a non-empty string',
  parse(raw) {
    if (typeof raw !== 'string' || raw.trim() === '') return { ok: false, expected: textType.expected };
    return { ok: true, value: raw.trim() };
  },
  format: String,
};

/** An AWS account id: 12 digits, as EventBridge writes it in an event's `account`. */
export const accountIdType: ValueType<string> = {
  expected: 'an AWS account id (12 digits)',
  parse(raw) {
    const text = typeof raw === 'number' && Number.isSafeInteger(raw) ? String(raw).padStart(12, '0') : typeof raw === 'string' ? raw.trim() : '';
    return /^\d{12}$/.test(text) ? { ok: true, value: text } : { ok: false, expected: accountIdType.expected };
  },
  format: String,
};

/** An AWS Region name, such as us-east-1 or us-gov-west-1. */
export const regionType: ValueType<string> = {
  expected: 'an AWS Region, such as "us-east-1"',
  parse(raw) {
    const text = typeof raw === 'string' ? raw.trim() : '';
    // The rule events are read with (events/fields.ts REGION): partitions add names like us-gov-west-1.
    return text.length <= 40 && /^[a-z]{2}(-[a-z0-9]+)+$/.test(text) ? { ok: true, value: text } : { ok: false, expected: regionType.expected };
  },
  format: String,
};

/** Every namespace, or these (written "*", or names separated by commas, or a TOML array of names). */
export type NamespaceList = '*' | readonly string[];

/** A namespace name: a DNS-1123 label. */
const NAMESPACE_NAME = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

export const namespaceListType: ValueType<NamespaceList> = {
  expected: '"*" for every namespace, or namespace names separated by commas (or a TOML array of them)',
  parse(raw) {
    const expected = namespaceListType.expected;
    const items = typeof raw === 'string' ? raw.split(',') : Array.isArray(raw) ? raw : undefined;
    if (!items || items.some((i) => typeof i !== 'string')) return { ok: false, expected };
    const names = (items as string[]).map((i) => i.trim()).filter((i) => i !== '');
    if (names.length === 0) return { ok: false, expected, reason: 'no namespace named' };
    if (names.includes('*')) return names.length === 1 ? { ok: true, value: '*' } : { ok: false, expected, reason: '"*" already means every namespace' };
    const bad = names.find((n) => !NAMESPACE_NAME.test(n));
    if (bad !== undefined)
      return { ok: false, expected, reason: `"${bad.slice(0, 70)}" is not a namespace name (lower-case letters, digits and -, 63 at most)` };
    return { ok: true, value: [...new Set(names)] };
  },
  format: (value) => (value === '*' ? '*' : value.join(',')),
};

export const labelSelectorType: ValueType<LabelSelector> = {
  expected: 'a label selector, such as "team=payments" or "env in (prod,staging),!legacy"',
  parse(raw) {
    if (typeof raw !== 'string' || raw.trim() === '') return { ok: false, expected: labelSelectorType.expected };
    const parsed = parseLabelSelector(raw);
    return parsed.ok ? { ok: true, value: parsed.selector } : { ok: false, expected: labelSelectorType.expected, reason: parsed.reason };
  },
  format: (value) => value.text,
};

/** Absolute http:// or https:// URL (the local SQS server in tests speaks plain http). */
export const httpUrlType: ValueType<string> = {
  expected: 'an http:// or https:// URL',
  parse(raw) {
    const expected = httpUrlType.expected;
    if (typeof raw !== 'string') return { ok: false, expected };
    const text = raw.trim();
    if (!URL.canParse(text)) return { ok: false, expected, reason: 'not a URL' };
    const { protocol } = new URL(text);
    if (protocol !== 'https:' && protocol !== 'http:') return { ok: false, expected, reason: `scheme ${protocol}` };
    return { ok: true, value: text };
  },
  format: String,
};

/** Hosts that never leave the machine: plain http to them carries nothing over a network. */
const LOOPBACK_HOSTS = new Set(['localhost', '[::1]']);
const isLoopbackHost = (hostname: string): boolean => LOOPBACK_HOSTS.has(hostname) || /^127(\.\d{1,3}){3}$/.test(hostname);

/**
 * The Slack webhook: an https:// URL. The URL is a bearer secret (whoever has it may post), so plain
 * http is refused, except to a loopback host (localhost, 127.0.0.0/8, ::1), where a local stand-in
 * for Slack (the tests') listens and nothing crosses a network.
 */
export const webhookUrlType: ValueType<string> = {
  expected: 'an https:// URL (http:// only to a loopback host: localhost, 127.0.0.1, ::1)',
  parse(raw) {
    const expected = webhookUrlType.expected;
    const parsed = httpUrlType.parse(raw);
    if (!parsed.ok) return { ...parsed, expected };
    const { protocol, hostname } = new URL(parsed.value);
    if (protocol === 'http:' && !isLoopbackHost(hostname)) {
      return { ok: false, expected, reason: 'plain http to a host that is not loopback would send the secret URL and every alert unencrypted' };
    }
    return parsed;
  },
  format: String,
};

/** A raw value as it appears in an error message: strings quoted, so " " and "" are visible. */
export function describeRaw(raw: unknown): string {
  if (typeof raw === 'string') return JSON.stringify(raw);
  if (typeof raw === 'bigint') return String(raw);
  if (raw instanceof Date) return raw.toISOString();
  return JSON.stringify(raw) ?? String(raw);
}
