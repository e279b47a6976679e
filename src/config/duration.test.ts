import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DurationError, formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  const valid: Array<[string, number]> = [
    ['500ms', 500],
    ['5s', 5_000],
    ['45m', 2_700_000],
    ['4h', 14_400_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['0s', 0],
    ['120s', 120_000],
    ['1.1s', 1_100], // exact, not 1100.0000000000002
    ['.5s', 500],
    ['1h0m0s', 3_600_000],
    ['1500us', 1.5],
    ['1500µs', 1.5],
    ['2000000ns', 2],
    ['+5s', 5_000],
    // Go's time.ParseDuration takes a bare zero without a unit, and the original's config with it.
    ['0', 0],
    ['+0', 0],
    ['-0', 0],
    [' 5s ', 5_000],
  ];
  for (const [text, ms] of valid) {
    it(`reads ${JSON.stringify(text)} as ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }

  const invalid: Array<[string, string]> = [
    ['', 'invalid duration "": empty'],
    ['   ', 'invalid duration "   ": empty'],
    ['-5s', 'invalid duration "-5s": negative durations are not allowed'],
    ['00', 'invalid duration "00": missing unit after "00"; units are ns, us, ms, s, m, h'],
    ['5', 'invalid duration "5": missing unit after "5"; units are ns, us, ms, s, m, h'],
    ['1h30', 'invalid duration "1h30": missing unit after "30"; units are ns, us, ms, s, m, h'],
    ['5x', 'invalid duration "5x": unknown unit "x"; units are ns, us, ms, s, m, h'],
    ['5S', 'invalid duration "5S": unknown unit "S"; units are ns, us, ms, s, m, h'],
    ['5 s', 'invalid duration "5 s": unknown unit " s"; units are ns, us, ms, s, m, h'],
    ['abc', 'invalid duration "abc": not a number followed by a unit, like "5s", "1h30m" or "1.5h"'],
    ['h', 'invalid duration "h": not a number followed by a unit, like "5s", "1h30m" or "1.5h"'],
    ['+', 'invalid duration "+": not a number followed by a unit, like "5s", "1h30m" or "1.5h"'],
    ['1.5.5s', 'invalid duration "1.5.5s": missing unit after "1.5"; units are ns, us, ms, s, m, h'],
    ['3000000000h', 'invalid duration "3000000000h": too large'],
  ];
  for (const [text, message] of invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseDuration(text),
        (error: unknown) => {
          assert.ok(error instanceof DurationError);
          assert.equal(error.message, message);
          return true;
        },
      );
    });
  }
});

describe('formatDuration', () => {
  const cases: Array<[number, string]> = [
    [0, '0s'],
    [500, '500ms'],
    [5_000, '5s'],
    [1_500, '1.5s'],
    [120_000, '2m0s'],
    [2_700_000, '45m0s'],
    [5_400_000, '1h30m0s'],
    [14_400_000, '4h0m0s'],
    [0.0015, '1.5µs'],
    [0.000001, '1ns'],
    [1.25, '1.25ms'],
    [-5_000, '-5s'],
  ];
  for (const [ms, text] of cases) {
    it(`writes ${ms} ms as ${text}`, () => assert.equal(formatDuration(ms), text));
  }

  it('round-trips through parseDuration', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 10 ** 12 }), (ms) => parseDuration(formatDuration(ms)) === ms));
  });
});
