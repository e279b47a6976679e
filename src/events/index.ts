// Public surface of the event parser: SQS message body -> typed event.

export {
  EVENT_KINDS,
  MALFORMED,
  MAX_BODY_BYTES,
  PARSERS,
  classify,
  parseEvent,
  parseMessage,
  type EventKind,
  type KnownEvent,
  type KnownKind,
  type ParseOptions,
  type ParseResult,
  type ParsedEvent,
} from './parse.js';
export type { EventBase } from './model.js';
export { INSTANCE_ID_PATTERN, MAX_REASON_LENGTH, isInstanceId } from './fields.js';
export {
  SPOT_INSTANCE_ACTIONS,
  SPOT_INTERRUPTED,
  SPOT_INTERRUPTION_NOTICE_MS,
  type SpotInstanceAction,
  type SpotInterruptedEvent,
} from './kinds/spot-interruption.js';
export {
  CAPACITY_RESERVATION_INTERRUPTED,
  type CapacityReservationInterruptedEvent,
} from './kinds/capacity-reservation-interruption.js';
export { SCHEDULED_CHANGE, type ScheduledChangeEvent } from './kinds/scheduled-change.js';
export { REBALANCE_RECOMMENDATION, type RebalanceRecommendationEvent } from './kinds/rebalance-recommendation.js';
export { ACTED_ON_STATES, INSTANCE_STATES, isActedOnState, STATE_CHANGE, type InstanceState, type StateChangeEvent } from './kinds/state-change.js';
export { UNKNOWN, type UnknownEvent } from './kinds/unknown.js';
export { formatProviderId, parseProviderId, type ProviderId } from './provider-id.js';
export {
  buildCapacityReservationInterruption,
  buildEvent,
  buildRebalanceRecommendation,
  buildScheduledChange,
  buildSpotInterruption,
  buildStateChange,
  buildUnknown,
  wrapInSns,
  type AnyKindInput,
  type BuildInput,
  type ScheduledChangeInput,
  type SnsWrapOptions,
  type SpotInterruptionInput,
  type StateChangeInput,
  type UnknownEventInput,
} from './build.js';
