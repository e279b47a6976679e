import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatProviderId, parseProviderId } from './provider-id.js';

describe('parseProviderId', () => {
  const accepted: Array<[string, string | null, string]> = [
    ['aws:///us-east-1a/i-0b662ef9931388ba0', 'us-east-1a', 'i-0b662ef9931388ba0'],
    ['aws:///eu-central-1c/i-0123abcd', 'eu-central-1c', 'i-0123abcd'],
    ['aws:///us-west-2-lax-1a/i-0b662ef9931388ba0', 'us-west-2-lax-1a', 'i-0b662ef9931388ba0'],
    ['aws:///i-0b662ef9931388ba0', null, 'i-0b662ef9931388ba0'],
    ['aws:////i-0b662ef9931388ba0', null, 'i-0b662ef9931388ba0'],
  ];
  for (const [providerId, zone, instanceId] of accepted) {
    it(`reads ${providerId}`, () => assert.deepEqual(parseProviderId(providerId), { zone, instanceId }));
  }

  const rejected = [
    '',
    'i-0b662ef9931388ba0',
    'aws://us-east-1a/i-0b662ef9931388ba0',
    'aws:///us-east-1a/i-0B662EF9931388BA0',
    'aws:///us-east-1a/i-0b662ef9931388ba0/',
    ' aws:///us-east-1a/i-0b662ef9931388ba0',
    'aws:///us-east-1a/i-0b662ef9931388ba0\n',
    'aws:///us-east-1a/i-xyz',
    'aws:///us-east-1b/f5ac3f2a0c-d7e2b8bdb5e4459dac8a4fa31f2a9a8c/fargate-ip-192-168-1-1.ec2.internal',
    'gce://project/us-central1-a/node-1',
    'kind://docker/kind/kind-control-plane',
    'aws:///us/east/i-0b662ef9931388ba0',
  ];
  for (const providerId of rejected) {
    it(`rejects ${JSON.stringify(providerId)}`, () => assert.equal(parseProviderId(providerId), null));
  }

  it('rejects a missing providerID', () => {
    assert.equal(parseProviderId(undefined), null);
    assert.equal(parseProviderId(null), null);
  });

  it('never throws, and whatever it accepts formats back to the same string (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `aws:///${s}`),
        ),
        (providerId) => {
          const parsed = parseProviderId(providerId);
          if (parsed !== null && !providerId.startsWith('aws:////')) assert.equal(formatProviderId(parsed), providerId);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('formatProviderId -> parseProviderId (property)', () => {
    const zone = fc.option(fc.stringMatching(/^[a-z]{2}-[a-z]+-\d[a-z]$/), { nil: null });
    const instanceId = fc.stringMatching(/^i-[0-9a-f]{8,17}$/);
    fc.assert(
      fc.property(zone, instanceId, (zone, instanceId) => {
        assert.deepEqual(parseProviderId(formatProviderId({ zone, instanceId })), { zone, instanceId });
      }),
      { numRuns: 500 },
    );
  });
});
