// EC2 Instance State-change Notification: the instance moved to `detail.state`.

import { INSTANCE_ID, Problem, readEnum, readString } from '../fields.js';
import { eventBase, type EventBase, type KindParser } from '../model.js';

export const STATE_CHANGE = 'state_change';
export type STATE_CHANGE = typeof STATE_CHANGE;

export const INSTANCE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

/**
 * The states the controller acts on: the instance is going away. `pending` and `running` change
 * nothing, so the EventBridge rule (deploy/aws/event-pattern.json) does not forward them at all.
 */
export const ACTED_ON_STATES = ['stopping', 'stopped', 'shutting-down', 'terminated'] as const satisfies readonly InstanceState[];
export const isActedOnState = (state: InstanceState): boolean => (ACTED_ON_STATES as readonly InstanceState[]).includes(state);

export interface StateChangeEvent extends EventBase<STATE_CHANGE> {
  readonly instanceId: string;
  readonly state: InstanceState;
}

export const stateChangeParser: KindParser<StateChangeEvent> = {
  kind: STATE_CHANGE,
  source: 'aws.ec2',
  detailType: 'EC2 Instance State-change Notification',
  parse(envelope) {
    const instanceId = readString(envelope.detail, 'instance-id', 'detail.instance-id', INSTANCE_ID);
    if (instanceId instanceof Problem) return instanceId;
    const state = readEnum(envelope.detail, 'state', 'detail.state', INSTANCE_STATES);
    if (state instanceof Problem) return state;
    return { ...eventBase(STATE_CHANGE, envelope, [instanceId]), instanceId, state };
  },
};
