// A Kubernetes Node names its EC2 instance in spec.providerID: `aws:///<availability-zone>/<instance-id>`.
//
// Accepted forms (anything else is null):
//   aws:///us-east-1a/i-0b662ef9931388ba0   the usual form              -> { zone: 'us-east-1a', instanceId }
//   aws:///i-0b662ef9931388ba0              zone left out (seen with    -> { zone: null, instanceId }
//   aws:////i-0b662ef9931388ba0             some older or self-managed
//                                           setups), or left empty
// Not accepted: Fargate nodes (`aws:///<zone>/<task-id>/fargate-ip-…`), which are no EC2 instance and so
// never the subject of an EC2 event; other providers; surrounding whitespace; uppercase hex.

import { INSTANCE_ID_PATTERN, isInstanceId } from './fields.js';

export interface ProviderId {
  /** Availability zone (or Local/Wavelength Zone) name; null when the providerID leaves it out. */
  zone: string | null;
  instanceId: string;
}

const PROVIDER_ID = new RegExp(`^aws:///(?:([a-z0-9-]{0,64})/)?(${INSTANCE_ID_PATTERN.source.slice(1, -1)})$`);

/** The zone and instance id a providerID names, or null when it names no EC2 instance. */
export function parseProviderId(providerId: string | undefined | null): ProviderId | null {
  if (typeof providerId !== 'string') return null;
  const match = PROVIDER_ID.exec(providerId);
  if (match === null) return null;
  const [, zone, instanceId] = match;
  if (instanceId === undefined) return null;
  return { zone: zone === undefined || zone === '' ? null : zone, instanceId };
}

/** The providerID a node on this instance carries; the inverse of parseProviderId. Throws on a bad instance id. */
export function formatProviderId({ zone, instanceId }: ProviderId): string {
  if (!isInstanceId(instanceId)) throw new TypeError(`formatting providerID: ${JSON.stringify(instanceId)} is no EC2 instance id`);
  return zone === null ? `aws:///${instanceId}` : `aws:///${zone}/${instanceId}`;
}
