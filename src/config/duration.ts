// Go-style durations ("5s", "1h30m", "1.5h"), the format the Go original's config and annotations use,
// so existing config files and manifests keep working. Values are milliseconds; sums are done in
// integer nanoseconds (BigInt) so "1.1s" is exactly 1100 and not 1100.0000000000002.

const NS_PER_UNIT: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign, what Go prints
  μs: 1_000n, // U+03BC greek mu, which Go also accepts
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const NS_PER_MS = 1_000_000n;
/** Go's limit (int64 nanoseconds, about 292 years); beyond it a value is surely a mistake. */
const MAX_NS = 2n ** 63n - 1n;
const UNITS_HINT = 'units are ns, us, ms, s, m, h';

/** `reason` says what is wrong without repeating the input, for messages that already show it. */
export class DurationError extends Error {
  override name = 'DurationError';
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super(`invalid duration ${JSON.stringify(input)}: ${reason}`);
  }
}

/** Parses a Go duration into milliseconds. Throws DurationError on empty, negative, unit-less or garbage input. */
export function parseDuration(text: string): number {
  const input = text.trim();
  const fail = (reason: string) => new DurationError(text, reason);
  if (input === '') throw fail('empty');
  // Go's time.ParseDuration takes a bare "0" (and "+0", "-0") without a unit.
  if (/^[+-]?0$/.test(input)) return 0;
  if (input.startsWith('-')) throw fail('negative durations are not allowed');
  const body = input.startsWith('+') ? input.slice(1) : input; // Go accepts a leading "+"
  const notADuration = () => fail('not a number followed by a unit, like "5s", "1h30m" or "1.5h"');
  if (body === '') throw notADuration();

  // A term is a decimal number followed by whatever is not part of a number; the unit is checked below.
  const term = /(\d+(?:\.\d*)?|\.\d+)([^\d.]*)/y;
  let totalNs = 0n;
  while (term.lastIndex < body.length) {
    const match = term.exec(body);
    if (!match) throw notADuration();
    const [, number = '', unit = ''] = match;
    if (unit === '') throw fail(`missing unit after "${clip(number)}"; ${UNITS_HINT}`);
    const unitNs = NS_PER_UNIT[unit];
    if (unitNs === undefined) throw fail(`unknown unit ${JSON.stringify(clip(unit))}; ${UNITS_HINT}`);
    totalNs += termNanoseconds(number, unitNs);
    if (totalNs > MAX_NS) throw fail('too large');
  }
  return nanosecondsToMs(totalNs);
}

/** Formats milliseconds the way Go's time.Duration.String does: "0s", "500ms", "1h30m0s", "1.5s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  // Whole and fractional milliseconds apart: ms * 1e6 would lose precision above 2^53 ns (about 104 days).
  const wholeMs = Math.trunc(ms);
  const ns = BigInt(wholeMs) * NS_PER_MS + BigInt(Math.round((ms - wholeMs) * 1e6));
  if (ns < 0n) return `-${formatNanoseconds(-ns)}`;
  return formatNanoseconds(ns);
}

/** Pieces of the input quoted in a reason stay short: the input may be a long, arbitrary annotation value. */
function clip(text: string): string {
  return text.length > 20 ? `${text.slice(0, 20)}…` : text;
}

function termNanoseconds(number: string, unitNs: bigint): bigint {
  const [whole = '', fraction = ''] = number.split('.');
  const wholeNs = BigInt(whole || '0') * unitNs;
  if (fraction === '') return wholeNs;
  // Truncates below one nanosecond, as Go does.
  return wholeNs + (BigInt(fraction) * unitNs) / 10n ** BigInt(fraction.length);
}

function nanosecondsToMs(ns: bigint): number {
  const wholeMs = ns / NS_PER_MS;
  const restNs = ns % NS_PER_MS;
  return Number(wholeMs) + Number(restNs) / 1e6;
}

function formatNanoseconds(ns: bigint): string {
  if (ns === 0n) return '0s';
  if (ns < 1_000n) return `${ns}ns`;
  if (ns < 1_000_000n) return `${decimal(ns, 1_000n)}µs`;
  if (ns < 1_000_000_000n) return `${decimal(ns, 1_000_000n)}ms`;

  const hours = ns / NS_PER_UNIT.h!;
  const minutes = (ns % NS_PER_UNIT.h!) / NS_PER_UNIT.m!;
  const seconds = decimal(ns % NS_PER_UNIT.m!, NS_PER_UNIT.s!);
  if (hours > 0n) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0n) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/** value / unit as a decimal without trailing zeros: decimal(1_500n, 1_000n) === "1.5". */
function decimal(value: bigint, unit: bigint): string {
  const whole = value / unit;
  const rest = value % unit;
  if (rest === 0n) return `${whole}`;
  const digits = String(unit).length - 1;
  return `${whole}.${String(rest).padStart(digits, '0').replace(/0+$/, '')}`;
}
