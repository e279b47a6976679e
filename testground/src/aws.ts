// The AWS side of the ground: the interruption queue and the EventBridge rule that feeds it, made
// with the same event pattern the README tells users to create (deploy/aws/event-pattern.json).
import { readFileSync } from 'node:fs';
import { DeleteRuleCommand, EventBridgeClient, PutEventsCommand, PutRuleCommand, PutTargetsCommand, RemoveTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { awsClientConfig, type Ground } from './ground.js';

export const QUEUE_NAME = 'spot-fargate-orchestrator-interruptions';
export const RULE_NAME = 'spot-fargate-orchestrator-ec2-events';
export const EVENT_PATTERN_FILE = new URL('../../deploy/aws/event-pattern.json', import.meta.url).pathname;

export async function ensureQueueAndRule(
  ground: Ground,
  queueName = QUEUE_NAME,
  { visibilityTimeoutSeconds = 30 }: { visibilityTimeoutSeconds?: number } = {},
): Promise<{ queueUrl: string; queueArn: string }> {
  const sqs = new SQSClient(awsClientConfig(ground));
  const events = new EventBridgeClient(awsClientConfig(ground));
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: queueName, Attributes: { MessageRetentionPeriod: '300', VisibilityTimeout: String(visibilityTimeoutSeconds) } }),
  );
  const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  const queueArn = attrs.Attributes!.QueueArn!;
  const ruleName = ruleNameFor(queueName);
  await events.send(new PutRuleCommand({ Name: ruleName, EventPattern: readFileSync(EVENT_PATTERN_FILE, 'utf8'), State: 'ENABLED' }));
  await events.send(new PutTargetsCommand({ Rule: ruleName, Targets: [{ Id: 'interruption-queue', Arn: queueArn, InputTransformer: WHOLE_EVENT }] }));
  return { queueUrl: QueueUrl!, queueArn };
}

/**
 * The event as EventBridge delivers it to a queue on AWS, account included. moto 5.2.5's default
 * delivery to SQS leaves `account` out, and the controller drops an event that names no account (the
 * account of its queue URL is the one it trusts: src/intake/event-trust.ts); EventBridge's own
 * predefined variable for the whole event, which moto supports too, keeps it.
 */
const WHOLE_EVENT = { InputPathsMap: {}, InputTemplate: '<aws.events.event.json>' };

/** Messages waiting (visible) and being handled (received, not yet deleted or timed out). */
export async function queueDepth(ground: Ground, queueUrl: string): Promise<{ visible: number; hidden: number }> {
  const out = await new SQSClient(awsClientConfig(ground)).send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return { visible: Number(out.Attributes?.ApproximateNumberOfMessages), hidden: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible) };
}

export async function queueEmpty(ground: Ground, queueUrl: string): Promise<boolean> {
  const { visible, hidden } = await queueDepth(ground, queueUrl);
  return visible === 0 && hidden === 0;
}

function ruleNameFor(queueName: string): string {
  return queueName === QUEUE_NAME ? RULE_NAME : `${RULE_NAME}-${queueName}`;
}

/**
 * Removes a queue and its rule. moto (unlike EventBridge) fails PutEvents while any rule targets a
 * queue that no longer exists, so tests that make their own queue must remove both.
 */
export async function removeQueueAndRule(ground: Ground, queueName: string, queueUrl: string): Promise<void> {
  const events = new EventBridgeClient(awsClientConfig(ground));
  await events.send(new RemoveTargetsCommand({ Rule: ruleNameFor(queueName), Ids: ['interruption-queue'] }));
  await events.send(new DeleteRuleCommand({ Name: ruleNameFor(queueName) }));
  await new SQSClient(awsClientConfig(ground)).send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
}

export type Ec2DetailType =
  | 'EC2 Spot Instance Interruption Warning'
  | 'EC2 Capacity Reservation Instance Interruption Warning'
  | 'EC2 Instance Rebalance Recommendation'
  | 'EC2 Instance State-change Notification';

/** Puts EC2 events on the default bus, as EC2 itself would; the rule routes them to the queue. */
export async function publishEc2Events(
  ground: Ground,
  entries: { detailType: Ec2DetailType; instanceId: string; zone: string; detail: Record<string, string>; time: Date }[],
): Promise<void> {
  const events = new EventBridgeClient(awsClientConfig(ground));
  for (let i = 0; i < entries.length; i += 10) {
    const batch = entries.slice(i, i + 10);
    const out = await events.send(
      new PutEventsCommand({
        Entries: batch.map((e) => ({
          Source: 'aws.ec2',
          DetailType: e.detailType,
          Detail: JSON.stringify({ 'instance-id': e.instanceId, ...e.detail }),
          Resources: [`arn:aws:ec2:${e.zone}:instance/${e.instanceId}`],
          Time: e.time,
        })),
      }),
    );
    if (out.FailedEntryCount) throw new Error(`EventBridge refused ${out.FailedEntryCount} event(s): ${JSON.stringify(out.Entries)}`);
  }
}

export interface HealthScheduledChange {
  instanceIds: string[];
  /** When the change happens; AWS Health writes it in whole seconds (RFC 1123). */
  startTime: Date;
  /** Default AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED. */
  eventTypeCode?: string;
  time: Date;
}

/**
 * Puts AWS Health EC2 scheduled-change events on the default bus, in the shape AWS Health writes them
 * (`startTime` in RFC 1123, the instances in `affectedEntities`, plain instance ids in `resources`).
 */
export async function publishHealthEvents(ground: Ground, changes: HealthScheduledChange[]): Promise<void> {
  const events = new EventBridgeClient(awsClientConfig(ground));
  for (let i = 0; i < changes.length; i += 10) {
    const batch = changes.slice(i, i + 10);
    const out = await events.send(
      new PutEventsCommand({
        Entries: batch.map((c) => {
          const code = c.eventTypeCode ?? 'AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED';
          return {
            Source: 'aws.health',
            DetailType: 'AWS Health Event',
            Detail: JSON.stringify({
              eventArn: `arn:aws:health:${ground.region}::event/EC2/${code}/${code}_${c.time.getTime().toString(36).toUpperCase()}`,
              service: 'EC2',
              eventTypeCode: code,
              eventTypeCategory: 'scheduledChange',
              startTime: c.startTime.toUTCString(),
              endTime: new Date(c.startTime.getTime() + 30 * 60_000).toUTCString(),
              eventDescription: [{ language: 'en_US', latestDescription: 'The instance is scheduled for retirement.' }],
              affectedEntities: c.instanceIds.map((entityValue) => ({ entityValue })),
            }),
            Resources: c.instanceIds,
            Time: c.time,
          };
        }),
      }),
    );
    if (out.FailedEntryCount) throw new Error(`EventBridge refused ${out.FailedEntryCount} event(s): ${JSON.stringify(out.Entries)}`);
  }
}
