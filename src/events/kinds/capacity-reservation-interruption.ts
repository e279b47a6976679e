// EC2 Capacity Reservation Instance Interruption Warning: an instance in an interruptible Capacity
// Reservation is reclaimed by its owner. Same detail as the spot warning and the same two minutes,
// so it gets the same phase 1; a kind of its own keeps logs, metrics and Events honest about why.

import type { EventBase, KindParser } from '../model.js';
import { parseInterruptionWarning, type SpotInstanceAction } from './spot-interruption.js';

export const CAPACITY_RESERVATION_INTERRUPTED = 'capacity_reservation_interrupted';
export type CAPACITY_RESERVATION_INTERRUPTED = typeof CAPACITY_RESERVATION_INTERRUPTED;

export interface CapacityReservationInterruptedEvent extends EventBase<CAPACITY_RESERVATION_INTERRUPTED> {
  readonly instanceId: string;
  readonly action: SpotInstanceAction;
  /** `time` + 120 s, as for a spot warning. */
  readonly deadline: Date;
}

export const capacityReservationInterruptionParser: KindParser<CapacityReservationInterruptedEvent> = {
  kind: CAPACITY_RESERVATION_INTERRUPTED,
  source: 'aws.ec2',
  detailType: 'EC2 Capacity Reservation Instance Interruption Warning',
  parse: (envelope) => parseInterruptionWarning(CAPACITY_RESERVATION_INTERRUPTED, envelope),
};
