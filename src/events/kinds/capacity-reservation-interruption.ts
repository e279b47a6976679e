// EC2 Capacity Reservation Instance Interruption Warning: an instance in an interruptible Capacity
// Reservation is reclaimed by its owner. Same detail as the spot warning and the same two minutes,
// so it gets the same phase 1; a kind of its own keeps logs, metrics and Events honest about why.

import { INSTANCE_ID, Problem, readEnum, readString } from '../fields.js';
import { eventBase, type EventBase, type KindParser } from '../model.js';
import { SPOT_INSTANCE_ACTIONS, SPOT_INTERRUPTION_NOTICE_MS, type SpotInstanceAction } from './spot-interruption.js';

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
  parse(envelope) {
    const instanceId = readString(envelope.detail, 'instance-id', 'detail.instance-id', INSTANCE_ID);
    if (instanceId instanceof Problem) return instanceId;
    const action = readEnum(envelope.detail, 'instance-action', 'detail.instance-action', SPOT_INSTANCE_ACTIONS);
    if (action instanceof Problem) return action;
    return {
      ...eventBase(CAPACITY_RESERVATION_INTERRUPTED, envelope, [instanceId]),
      instanceId,
      action,
      deadline: new Date(envelope.time.getTime() + SPOT_INTERRUPTION_NOTICE_MS),
    };
  },
};
