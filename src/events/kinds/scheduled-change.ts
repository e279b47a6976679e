// AWS Health Event, EC2 scheduled change: instance retirement or maintenance (a reboot, a stop),
// announced hours or days before `detail.startTime`. Only EC2's scheduledChange category is ours; any
// other Health event (another service, an issue, an account notification) is well-formed and not for
// this controller, so it is read as an unknown event and acknowledged, not reported as malformed.

import { expected, HEALTH_TIME, isInstanceId, isObject, NON_EMPTY, own, parseHealthTime, Problem, readString } from '../fields.js';
import { eventBase, NOT_CLAIMED, type EventBase, type KindParser } from '../model.js';

export const SCHEDULED_CHANGE = 'scheduled_change';
export type SCHEDULED_CHANGE = typeof SCHEDULED_CHANGE;

export interface ScheduledChangeEvent extends EventBase<SCHEDULED_CHANGE> {
  /** e.g. AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED, for logs and Events. */
  readonly eventTypeCode: string;
  /** When the change happens to the instances: the move must be done by then. */
  readonly startTime: Date;
}

export const scheduledChangeParser: KindParser<ScheduledChangeEvent> = {
  kind: SCHEDULED_CHANGE,
  source: 'aws.health',
  detailType: 'AWS Health Event',
  parse(envelope) {
    const { detail } = envelope;
    const service = readString(detail, 'service', 'detail.service', NON_EMPTY);
    if (service instanceof Problem) return service;
    const category = readString(detail, 'eventTypeCategory', 'detail.eventTypeCategory', NON_EMPTY);
    if (category instanceof Problem) return category;
    if (service !== 'EC2' || category !== 'scheduledChange') return NOT_CLAIMED;
    const eventTypeCode = readString(detail, 'eventTypeCode', 'detail.eventTypeCode', NON_EMPTY);
    if (eventTypeCode instanceof Problem) return eventTypeCode;
    const startText = readString(detail, 'startTime', 'detail.startTime', HEALTH_TIME);
    if (startText instanceof Problem) return startText;
    const entities = own(detail, 'affectedEntities');
    if (!Array.isArray(entities) || entities.length === 0) {
      return expected('detail.affectedEntities', 'a non-empty array of {"entityValue": …}', entities);
    }
    const instanceIds: string[] = [];
    for (const [i, entity] of entities.entries()) {
      const path = `detail.affectedEntities.${i}`;
      if (!isObject(entity)) return expected(path, 'a JSON object', entity);
      const value = readString(entity, 'entityValue', `${path}.entityValue`, NON_EMPTY);
      if (value instanceof Problem) return value;
      // A scheduled change can name other entities (a Dedicated Host's h-…): only instances map to nodes.
      if (isInstanceId(value) && !instanceIds.includes(value)) instanceIds.push(value);
    }
    if (instanceIds.length === 0) return NOT_CLAIMED;
    // HEALTH_TIME accepted it, so it parses.
    return { ...eventBase(SCHEDULED_CHANGE, envelope, instanceIds), eventTypeCode, startTime: parseHealthTime(startText) as Date };
  },
};
