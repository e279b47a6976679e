// The shape every event kind shares, and the contract a kind's parser fulfils.

import type { JsonObject, Problem } from './fields.js';

/** What every parsed event exposes, whatever its kind. */
export interface EventBase<K extends string> {
  readonly kind: K;
  /** EventBridge event id: the same event delivered twice carries the same id. */
  readonly id: string;
  /** Instances the event is about; empty for kinds that name none (e.g. `unknown`). */
  readonly instanceIds: string[];
  /** When EventBridge says the event happened (`time`). */
  readonly time: Date;
  readonly region: string;
  readonly account: string;
}

/** The EventBridge envelope, already validated, handed to a kind's parser. */
export interface Envelope {
  readonly id: string;
  readonly source: string;
  readonly detailType: string;
  readonly time: Date;
  readonly region: string;
  readonly account: string;
  /** Not validated beyond being an object: that is the kind parser's job. */
  readonly detail: JsonObject;
}

/**
 * What a kind's parser returns for a well-formed event of its (source, detail-type) that is not for this
 * controller (an AWS Health event about another service): it is then read as an unknown event.
 */
export const NOT_CLAIMED: unique symbol = Symbol('not claimed');
export type NOT_CLAIMED = typeof NOT_CLAIMED;

/**
 * One event kind: which (source, detail-type) it claims, and how its `detail` becomes an event.
 * On a bad detail, `parse` returns a Problem whose reason starts with the field path (`detail.…`); it never throws.
 */
export interface KindParser<E extends EventBase<string>> {
  readonly kind: E['kind'];
  readonly source: string;
  readonly detailType: string;
  parse(envelope: Envelope): E | Problem | NOT_CLAIMED;
}

export function eventBase<K extends string>(kind: K, envelope: Envelope, instanceIds: string[]): EventBase<K> {
  return {
    kind,
    id: envelope.id,
    instanceIds,
    time: envelope.time,
    region: envelope.region,
    account: envelope.account,
  };
}
