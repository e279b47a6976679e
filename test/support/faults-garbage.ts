// Bad queue bodies for the fault suite, built with fast-check from the same samples the parser's
// own fuzz tests use (src/events/fuzz.test.ts): garbage text, arbitrary JSON, the real samples with
// fields deleted, retyped or cut short, SNS envelopes with garbage inside, unknown detail-types,
// and huge bodies. The e2e part sends them to a real queue; the property part checks the parser.
import fc from 'fast-check';
import { wrapInSns } from '../../src/events/build.js';
import { SAMPLES, sampleObject } from '../../src/events/test-support.js';

type Path = Array<string | number>;

function pathsOf(value: unknown, prefix: Path = []): Path[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => [[...prefix, i], ...pathsOf(item, [...prefix, i])]);
  if (typeof value === 'object' && value !== null) return Object.entries(value).flatMap(([k, v]) => [[...prefix, k], ...pathsOf(v, [...prefix, k])]);
  return [];
}

function parentOf(root: any, path: Path): any {
  let node = root;
  for (const key of path.slice(0, -1)) node = node?.[key];
  return typeof node === 'object' && node !== null ? node : undefined;
}

const sample = fc.constantFrom(...SAMPLES);
const samplePath = sample.chain((s) => fc.tuple(fc.constant(s), fc.constantFrom(...pathsOf(sampleObject(s)))));
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u));

/** A real sample with one field deleted. */
const deleted = samplePath.map(([s, path]) => {
  const event = sampleObject(s);
  const parent = parentOf(event, path);
  if (Array.isArray(parent)) parent.splice(Number(path.at(-1)), 1);
  else if (parent) delete parent[path.at(-1)!];
  return JSON.stringify(event);
});

/** A real sample with one field of another type or value. */
const retyped = fc.tuple(samplePath, fc.jsonValue()).map(([[s, path], value]) => {
  const event = sampleObject(s);
  const parent = parentOf(event, path);
  if (parent) parent[path.at(-1)!] = value;
  return JSON.stringify(event);
});

/** A real sample cut short. */
const truncated = fc.tuple(sample, fc.nat()).map(([s, n]) => s.body.slice(0, 1 + (n % Math.max(1, s.body.length - 1))));

/** A well-formed event of a detail-type nobody handles (classified `unknown`, not malformed). */
const unknownKind = fc
  .tuple(sample, fc.constantFrom('EC2 Fleet Spot Instance Request Error', 'AWS Health Event', 'Scheduled Change'), fc.constantFrom('aws.ec2', 'aws.health'))
  .map(([s, detailType, source]) => {
    const event = sampleObject(s);
    event['detail-type'] = detailType;
    event.source = source;
    return JSON.stringify(event);
  });

const snsWithGarbage = fc
  .record({
    Type: fc.oneof(fc.constant('Notification'), fc.constant('SubscriptionConfirmation'), fc.jsonValue()),
    Message: fc.oneof(
      fc.string(),
      fc.string({ unit: codeUnit }),
      deleted,
      truncated,
      fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
      fc.jsonValue(),
    ),
  })
  .map(({ Type, Message }) => JSON.stringify({ Type, MessageId: 'f00d', TopicArn: 'arn:aws:sns:us-east-1:123456789012:spot', Message }));

const snsOfBroken = fc.oneof(deleted, retyped, truncated).map((body) => wrapInSns(body));

/** Anything a hostile or broken producer could put on the queue (bounded size; huge bodies come separately). */
export const garbageBody: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: codeUnit, maxLength: 200 }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null'),
  deleted,
  retyped,
  truncated,
  unknownKind,
  snsWithGarbage,
  snsOfBroken,
);

/** Huge bodies: over the 256 KiB the parser reads, and just under it (parsed, then refused on content). */
export function hugeBodies(): string[] {
  const spot = SAMPLES[0]!;
  const over = sampleObject(spot);
  (over.detail as Record<string, unknown>)['instance-id'] = `i-${'0'.repeat(300_000)}`;
  const under = sampleObject(spot);
  (under.detail as Record<string, unknown>).padding = 'é'.repeat(100_000);
  (under.detail as Record<string, unknown>)['instance-id'] = 42;
  return [JSON.stringify(over), 'x'.repeat(900_000), JSON.stringify(under), wrapInSns(`{"source": "aws.ec2", "detail-type": ${'['.repeat(50_000)}`)];
}

/** Hand-picked nasties beside the generated ones. */
export const FIXED_BODIES: string[] = [
  '{"detail-type": "EC2 Spot Instance Interruption Warning", "detail": 42',
  'null',
  '[]',
  '"just a string"',
  ' ',
  '{"Type": "Notification", "Message": "{\\"Type\\": \\"Notification\\", \\"Message\\": \\"{}\\"}"}',
  '{"Type": "Notification"}',
  '{"__proto__": {"polluted": true}, "source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning"}',
  '{"source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning", "id": "x", "time": "yesterday", "region": "us-east-1", "detail": {"instance-id": "i-0123456789abcdef0", "instance-action": "terminate"}}',
  '\u{1F4A5}'.repeat(1000),
];

/**
 * What SQS accepts: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF (anything else is
 * refused at SendMessage, so it can never reach the controller). Other characters become "?".
 */
export function sqsSafe(body: string): string {
  let out = '';
  for (const ch of body) {
    const c = ch.codePointAt(0)!;
    const ok = c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || c >= 0x10000;
    out += ok ? ch : '?';
  }
  return out.length === 0 ? '?' : out;
}
