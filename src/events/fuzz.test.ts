// Property-based fuzzing: whatever arrives on the queue, parseMessage returns a classified result and
// never throws; mutations of the valid samples fail exactly when a field the parser needs is broken.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { wrapInSns } from './build.js';
import { MAX_REASON_LENGTH, isInstanceId } from './fields.js';
import { EVENT_KINDS, MAX_BODY_BYTES, PARSERS, parseEvent, parseMessage, type ParseResult } from './parse.js';
import { SAMPLES, sampleObject, type Sample } from './test-support.js';

const RUNS = { numRuns: 500 };
const KNOWN_KINDS: readonly string[] = PARSERS.map((parser) => parser.kind);
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The invariant of every result: an event of a listed kind, or `malformed` with a tidy reason. */
function assertClassified(result: ParseResult): void {
  assert.equal(typeof result, 'object');
  if (result.ok) {
    const { event } = result;
    assert.ok(EVENT_KINDS.includes(event.kind), `unlisted kind ${event.kind}`);
    assert.equal(typeof event.id, 'string');
    assert.ok(event.instanceIds.every(isInstanceId));
    // A scheduled change names every affected instance; the other kinds name one.
    if (event.kind === 'unknown') assert.equal(event.instanceIds.length, 0);
    else assert.ok(event.instanceIds.length >= 1);
    assert.ok(!Number.isNaN(event.time.getTime()));
    assert.equal(typeof event.region, 'string');
    assert.match(event.account, /^(\d{12})?$/);
    return;
  }
  assert.equal(result.kind, 'malformed');
  assert.equal(typeof result.reason, 'string');
  assert.ok(result.reason.length > 0 && result.reason.length <= MAX_REASON_LENGTH, `reason length ${result.reason.length}`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a reason must carry no control character
  assert.doesNotMatch(result.reason, /[\u0000-\u001f\u007f]/);
  assert.doesNotMatch(result.reason, LONE_SURROGATE);
  if (result.kindHint !== undefined) assert.ok(KNOWN_KINDS.includes(result.kindHint));
}

function parseAndCheck(body: string): ParseResult {
  const result = parseMessage(body);
  assertClassified(result);
  return result;
}

type Path = Array<string | number>;

/** Every path in a JSON value, parents before children. */
function pathsOf(value: unknown, prefix: Path = []): Path[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => [[...prefix, i], ...pathsOf(item, [...prefix, i])]);
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([key, item]) => [[...prefix, key], ...pathsOf(item, [...prefix, key])]);
  }
  return [];
}

const dotted = (path: Path): string => path.join('.');

function parentOf(root: any, path: Path): any {
  let node = root;
  for (const key of path.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = node[key];
  }
  return typeof node === 'object' && node !== null ? node : undefined;
}

function remove(root: any, path: Path): void {
  const parent = parentOf(root, path);
  if (parent === undefined) return;
  if (Array.isArray(parent)) parent.splice(Number(path.at(-1)), 1);
  else delete parent[path.at(-1)!];
}

function replace(root: any, path: Path, value: unknown): void {
  const parent = parentOf(root, path);
  if (parent !== undefined) parent[path.at(-1)!] = value;
}

function jsonType(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
}

const sampleArb = fc.constantFrom(...SAMPLES);
/** A sample and one of its paths. */
const samplePath = sampleArb.chain((sample) => fc.tuple(fc.constant(sample), fc.constantFrom(...pathsOf(sampleObject(sample)))));
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((unit) => String.fromCharCode(unit));

function isRequired(sample: Sample, path: Path): boolean {
  return sample.required.includes(dotted(path));
}

function expectSampleFields(result: ParseResult, sample: Sample): void {
  assert.equal(result.ok, true, `expected ${sample.kind}, got ${JSON.stringify(result)}`);
  if (!result.ok) return;
  // The account is informational: a mutated one is reported as '' rather than refused.
  const { account, ...rest } = result.event;
  const { account: expectedAccount, ...expected } = sample.fields as Record<string, unknown>;
  assert.deepEqual(rest, expected);
  assert.ok(account === expectedAccount || account === '', `account ${account}`);
}

describe('fuzz: arbitrary input never throws and is always classified', () => {
  it('arbitrary strings (printable, full Unicode, lone surrogates)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: codeUnit })), (body) => {
        assert.equal(parseAndCheck(body).ok, false);
      }),
      RUNS,
    );
  });

  it('arbitrary JSON values, as a body and as an already-decoded value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        parseAndCheck(JSON.stringify(value) ?? 'null');
        assertClassified(parseEvent(value));
      }),
      RUNS,
    );
  });

  it('objects with the right keys and arbitrary values', () => {
    const either = <T>(plausible: fc.Arbitrary<T>) => fc.oneof(plausible, fc.jsonValue());
    const event = fc.record(
      {
        version: either(fc.constant('0')),
        id: either(fc.uuid()),
        source: either(fc.constantFrom('aws.ec2', 'aws.health', '')),
        'detail-type': either(fc.constantFrom(...PARSERS.map((parser) => parser.detailType), 'Other')),
        account: either(fc.stringMatching(/^\d{12}$/)),
        time: either(fc.date({ noInvalidDate: true }).map((date) => date.toISOString())),
        region: either(fc.constantFrom('us-east-1', 'eu-west-3')),
        resources: fc.jsonValue(),
        detail: either(
          fc.record(
            {
              'instance-id': either(fc.stringMatching(/^i-[0-9a-f]{8,17}$/)),
              'instance-action': either(fc.constantFrom('terminate', 'stop', 'hibernate', 'reboot')),
              state: either(fc.constantFrom('running', 'terminated', 'gone')),
              service: either(fc.constantFrom('EC2', 'RDS')),
              eventTypeCategory: either(fc.constantFrom('scheduledChange', 'issue')),
              eventTypeCode: either(fc.constant('AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED')),
              startTime: either(fc.date({ noInvalidDate: true }).map((date) => date.toUTCString())),
              affectedEntities: either(fc.array(fc.record({ entityValue: either(fc.stringMatching(/^i-[0-9a-f]{8,17}$/)) }), { maxLength: 3 })),
            },
            { requiredKeys: [] },
          ),
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(event, fc.boolean(), (value, sns) => {
        const body = JSON.stringify(value);
        parseAndCheck(sns ? wrapInSns(body) : body);
      }),
      RUNS,
    );
  });
});

describe('fuzz: mutations of the valid samples', () => {
  it('deleted fields: malformed exactly when a required one is gone, and the reason names it', () => {
    // An array item is not deleted: the items after it move up, so it changes values rather than removing a field.
    const deletable = (sample: Sample) => pathsOf(sampleObject(sample)).filter((path) => typeof path.at(-1) !== 'number');
    const deletion = sampleArb.chain((sample) => fc.tuple(fc.constant(sample), fc.subarray(deletable(sample), { minLength: 1 })));
    fc.assert(
      fc.property(deletion, fc.boolean(), ([sample, paths], sns) => {
        const event = sampleObject(sample);
        for (const path of [...paths].reverse()) remove(event, path);
        const body = JSON.stringify(event);
        const result = parseAndCheck(sns ? wrapInSns(body) : body);
        const gone = sample.required.filter((path) => !pathsOf(event).some((p) => dotted(p) === path));
        if (gone.length === 0) return expectSampleFields(result, sample);
        assert.equal(result.ok, false);
        if (result.ok) return;
        const reason = sns ? result.reason.replace(/^SNS Message[.]?/, '') : result.reason;
        if (gone.includes('source') && gone.includes('detail-type')) {
          assert.match(reason, /^(body|: expected an EventBridge event)/);
        } else {
          assert.ok(
            gone.some((path) => reason.startsWith(`${path}: missing`)),
            `${reason} names none of ${gone.join(', ')}`,
          );
        }
        const recognised = !gone.includes('source') && !gone.includes('detail-type');
        assert.equal(result.kindHint, recognised ? sample.kind : undefined);
      }),
      RUNS,
    );
  });

  it('wrong types: a required field of another JSON type is reported by path', () => {
    const mutation = samplePath.chain(([sample, path]) => {
      const original = parentOf(sampleObject(sample), path)[path.at(-1)!];
      return fc.tuple(
        fc.constant(sample),
        fc.constant(path),
        fc.jsonValue().filter((value) => jsonType(value) !== jsonType(original)),
      );
    });
    fc.assert(
      fc.property(mutation, ([sample, path, value]) => {
        const event = sampleObject(sample);
        replace(event, path, value);
        const result = parseAndCheck(JSON.stringify(event));
        if (!isRequired(sample, path)) return expectSampleFields(result, sample);
        assert.equal(result.ok, false);
        if (!result.ok) assert.ok(result.reason.startsWith(`${dotted(path)}: expected `), result.reason);
      }),
      RUNS,
    );
  });

  it('other strings in string fields: still classified; unread fields do not matter', () => {
    const stringPaths = sampleArb.chain((sample) =>
      fc.tuple(
        fc.constant(sample),
        fc.constantFrom(...pathsOf(sampleObject(sample)).filter((path) => typeof parentOf(sampleObject(sample), path)[path.at(-1)!] === 'string')),
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: codeUnit })),
      ),
    );
    fc.assert(
      fc.property(stringPaths, ([sample, path, value]) => {
        const event = sampleObject(sample);
        replace(event, path, value);
        const result = parseAndCheck(JSON.stringify(event));
        if (!isRequired(sample, path)) expectSampleFields(result, sample);
      }),
      RUNS,
    );
  });

  it('huge strings: rejected by size above 256 KiB, reasons stay short below it', () => {
    const huge = samplePath.chain(([sample, path]) =>
      fc.tuple(fc.constant(sample), fc.constant(path), fc.integer({ min: 1_000, max: 300_000 }), fc.constantFrom('x', 'é', '"', '\u0000')),
    );
    fc.assert(
      fc.property(huge, ([sample, path, length, char]) => {
        const event = sampleObject(sample);
        replace(event, path, char.repeat(length));
        const body = JSON.stringify(event);
        const result = parseAndCheck(body);
        if (Buffer.byteLength(body) > MAX_BODY_BYTES) {
          assert.equal(result.ok, false);
          if (!result.ok) assert.match(result.reason, /^body: \d+ bytes, more than the 262144-byte limit/);
        } else if (!isRequired(sample, path)) {
          expectSampleFields(result, sample);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('SNS envelopes with an arbitrary Message', () => {
    const mutated = samplePath.map(([sample, path]) => {
      const event = sampleObject(sample);
      remove(event, path);
      return JSON.stringify(event);
    });
    const message = fc.oneof(
      fc.string(),
      fc.string({ unit: codeUnit }),
      fc.jsonValue().map((value) => JSON.stringify(value) ?? 'null'),
      mutated,
    );
    const envelope = fc.record({
      Type: fc.oneof(fc.constant('Notification'), fc.jsonValue()),
      Message: fc.oneof(message, fc.jsonValue()),
      extra: fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 3 }),
    });
    fc.assert(
      fc.property(envelope, ({ Type, Message, extra }) => {
        const result = parseAndCheck(JSON.stringify({ ...extra, Type, Message }));
        if (!result.ok && Type === 'Notification' && typeof Message === 'string') {
          assert.match(result.reason, /^SNS Message/);
        }
      }),
      RUNS,
    );
  });

  it('valid samples still parse: extra fields, any formatting, direct or through SNS', () => {
    const key = fc.string().filter((k) => k !== '__proto__');
    const variant = fc.record({
      sample: sampleArb,
      top: fc.dictionary(key, fc.jsonValue(), { maxKeys: 4 }),
      detail: fc.dictionary(key, fc.jsonValue(), { maxKeys: 4 }),
      indent: fc.constantFrom(0, 1, 2, 4, '\t'),
      sns: fc.boolean(),
    });
    fc.assert(
      fc.property(variant, ({ sample, top, detail, indent, sns }) => {
        const original = sampleObject(sample);
        // The sample's own fields win over any extra field that happens to share a name.
        const event = { ...top, ...original, detail: { ...detail, ...(original.detail as object) } };
        const body = JSON.stringify(event, null, indent);
        expectSampleFields(parseAndCheck(sns ? wrapInSns(body) : body), sample);
      }),
      RUNS,
    );
  });
});
