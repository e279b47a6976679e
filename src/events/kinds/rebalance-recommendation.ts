// EC2 Instance Rebalance Recommendation: the instance is at elevated risk of interruption. It usually
// comes before the interruption warning, and sometimes is never followed by one.

import { INSTANCE_ID, Problem, readString } from '../fields.js';
import { eventBase, type EventBase, type KindParser } from '../model.js';

export const REBALANCE_RECOMMENDATION = 'rebalance_recommendation';
export type REBALANCE_RECOMMENDATION = typeof REBALANCE_RECOMMENDATION;

export interface RebalanceRecommendationEvent extends EventBase<REBALANCE_RECOMMENDATION> {
  readonly instanceId: string;
}

export const rebalanceRecommendationParser: KindParser<RebalanceRecommendationEvent> = {
  kind: REBALANCE_RECOMMENDATION,
  source: 'aws.ec2',
  detailType: 'EC2 Instance Rebalance Recommendation',
  parse(envelope) {
    const instanceId = readString(envelope.detail, 'instance-id', 'detail.instance-id', INSTANCE_ID);
    if (instanceId instanceof Problem) return instanceId;
    return { ...eventBase(REBALANCE_RECOMMENDATION, envelope, [instanceId]), instanceId };
  },
};
