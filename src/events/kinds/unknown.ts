// A well-formed EventBridge event no parser claims (another detail-type or source): acknowledged and
// counted, not an error. Shared queues and broad rules deliver these routinely.

import { eventBase, type EventBase, type Envelope } from '../model.js';

export const UNKNOWN = 'unknown';
export type UNKNOWN = typeof UNKNOWN;

export interface UnknownEvent extends EventBase<UNKNOWN> {
  /** Kept so a log line can say what arrived. */
  readonly source: string;
  readonly detailType: string;
}

export function unknownEvent(envelope: Envelope): UnknownEvent {
  // No instance ids even if the detail names one: nothing should act on an event nobody understood.
  return { ...eventBase(UNKNOWN, envelope, []), source: envelope.source, detailType: envelope.detailType };
}
