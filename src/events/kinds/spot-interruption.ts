// EC2 Spot Instance Interruption Warning: EC2 reclaims the instance two minutes after `time`.

import { INSTANCE_ID, Problem, readEnum, readString } from '../fields.js';
import { type Envelope, eventBase, type EventBase, type KindParser } from '../model.js';

export const SPOT_INTERRUPTED = 'spot_interrupted';
export type SPOT_INTERRUPTED = typeof SPOT_INTERRUPTED;

export const SPOT_INSTANCE_ACTIONS = ['terminate', 'stop', 'hibernate'] as const;
export type SpotInstanceAction = (typeof SPOT_INSTANCE_ACTIONS)[number];

/** EC2 acts on the instance this long after the warning's `time`. */
export const SPOT_INTERRUPTION_NOTICE_MS = 120_000;

export interface SpotInterruptedEvent extends EventBase<SPOT_INTERRUPTED> {
  readonly instanceId: string;
  /** What EC2 will do to the instance at the deadline. */
  readonly action: SpotInstanceAction;
  /** `time` + 120 s: work that is not done by then is lost with the instance. */
  readonly deadline: Date;
}

/**
 * The detail both two-minute warnings share (spot, and interruptible Capacity Reservation): the
 * instance, what EC2 will do to it, and when.
 */
export function parseInterruptionWarning<K extends string>(
  kind: K,
  envelope: Envelope,
): (EventBase<K> & { instanceId: string; action: SpotInstanceAction; deadline: Date }) | Problem {
  const instanceId = readString(envelope.detail, 'instance-id', 'detail.instance-id', INSTANCE_ID);
  if (instanceId instanceof Problem) return instanceId;
  const action = readEnum(envelope.detail, 'instance-action', 'detail.instance-action', SPOT_INSTANCE_ACTIONS);
  if (action instanceof Problem) return action;
  return {
    ...eventBase(kind, envelope, [instanceId]),
    instanceId,
    action,
    deadline: new Date(envelope.time.getTime() + SPOT_INTERRUPTION_NOTICE_MS),
  };
}

export const spotInterruptionParser: KindParser<SpotInterruptedEvent> = {
  kind: SPOT_INTERRUPTED,
  source: 'aws.ec2',
  detailType: 'EC2 Spot Instance Interruption Warning',
  parse: (envelope) => parseInterruptionWarning(SPOT_INTERRUPTED, envelope),
};
