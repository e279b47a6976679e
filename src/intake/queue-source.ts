// SQS intake: long polling (no sleep between empty polls), batches of up to 10, messages handled in
// parallel up to a bound. A message is deleted only when its handler says the work is safely
// started (phase 1 done) or that it does not concern this cluster. A malformed body is logged with
// its message id and deleted: it cannot become valid on redelivery, and left in the queue it would
// come back until the redrive policy moved it aside, delaying the good messages behind it.
// While a message is handled its visibility is extended (a heartbeat), so a phase 1 longer than the
// visibility timeout does not hand the same warning to a second worker; if the controller dies, the
// message comes back within one timeout.
// A message about instances with no Node in this cluster ("foreign") is deleted too, unless
// aws.keep_foreign_messages says the queue is shared: then it is left for the consumer it belongs to
// (foreign-messages.ts says how long it stays hidden). Either way, many of them in a short time mean
// a shared queue, and the intake says so once.
import { type Clock, systemClock } from '../clock.js';
import { ChangeMessageVisibilityCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from 'pino';
import { classify, parseMessage, type ParsedEvent } from '../events/parse.js';
import type { Metrics } from '../metrics/metrics.js';
import { DropLogLimiter, judgeEvent, type TrustedOrigin, type UntrustedReason } from './event-trust.js';
import { ForeignMessages, type SharedQueueSign } from './foreign-messages.js';

const DROP_MESSAGES: Record<UntrustedReason, string> = {
  foreign_account: 'event from another AWS account; dropped without acting on it',
  foreign_region: 'event from another AWS Region; dropped without acting on it',
  stale: 'event older than aws.max_event_age; dropped without acting on it',
};

/** The only SQS calls the controller makes (and so the only ones its IAM policy allows). */
export type QueueClient = Pick<SQSClient, 'send'>;

export interface HandlerVerdict {
  ack: boolean;
  /** The event names only instances with no Node in this cluster: kept in the queue when keepForeign is set. */
  foreign?: boolean;
}

export interface QueueSourceOptions {
  sqs: QueueClient;
  queueUrl: string;
  log: Logger;
  metrics: Metrics;
  handle: (event: ParsedEvent, messageId: string) => Promise<HandlerVerdict>;
  /** Paces retries after receive errors (monitoring.check_interval), doubling up to 10x. */
  errorBackoffMs: number;
  waitTimeSeconds?: number;
  maxInFlight?: number;
  /**
   * How long a received message stays hidden from other receivers; renewed every third of it while
   * the message is handled. Short, so the message of a controller that died comes back soon.
   */
  visibilityTimeoutSeconds: number;
  /** Dry run: messages are received and handled (as dry runs) but never deleted. */
  dryRun?: boolean;
  /**
   * aws.keep_foreign_messages: a queue shared with other clusters' consumers. A foreign message is
   * left in the queue (visible again at once the first time, then after a growing delay) instead of
   * deleted.
   */
  keepForeign?: boolean;
  /**
   * Events not of this account and Region, or older than the max age, are counted, logged and dropped
   * before the handler sees them (event-trust.ts). Unset: every event is handled.
   */
  trust?: TrustedOrigin;
  /** Called after every receive attempt, so /healthz can see the loop turning. */
  onTick?: (ok: boolean, error?: string) => void;
  /** Waits between failed receives (cut short by stop()), paces the visibility renewals, times the shared-queue window. */
  clock?: Pick<Clock, 'now' | 'sleep' | 'setRepeating'>;
}

export class QueueSource {
  private running = false;
  private loop?: Promise<void>;
  private readonly inFlight = new Set<Promise<void>>();
  private abort = new AbortController();
  /** Set once ChangeMessageVisibility is refused as not allowed: the IAM policy lacks it. */
  private heartbeatRefused = false;
  private readonly foreign: ForeignMessages;
  private readonly dropLog = new DropLogLimiter();

  constructor(private readonly o: QueueSourceOptions) {
    this.foreign = new ForeignMessages(o.keepForeign === true);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.loop = this.run();
  }

  /** Stops receiving and waits for the messages in hand to be handled (SIGTERM drain). */
  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    await this.loop;
    await Promise.all(this.inFlight);
  }

  private async run(): Promise<void> {
    const clock = this.o.clock ?? systemClock;
    const sleep = (ms: number) => clock.sleep(ms, this.abort.signal);
    const maxInFlight = this.o.maxInFlight ?? 100;
    let backoff = this.o.errorBackoffMs;
    // The first receive, and the first after a failure, does not wait for messages: an empty queue
    // would otherwise hold the answer (and readiness) back for a whole long poll.
    let waitSeconds = 0;
    while (this.running) {
      if (this.inFlight.size >= maxInFlight) {
        await Promise.race(this.inFlight);
        continue;
      }
      const started = performance.now();
      let messages: Message[];
      try {
        const out = await this.o.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.o.queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: waitSeconds,
            VisibilityTimeout: this.visibilitySeconds,
            MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
          }),
          { abortSignal: this.abort.signal },
        );
        messages = out.Messages ?? [];
        this.o.metrics.queueReceiveSeconds.observe((performance.now() - started) / 1000);
        this.o.onTick?.(true);
        backoff = this.o.errorBackoffMs;
        waitSeconds = this.o.waitTimeSeconds ?? 20;
      } catch (err) {
        if (!this.running) break;
        const error = (err as Error).message ?? String(err);
        this.o.onTick?.(false, error);
        this.o.log.warn({ err: error, retryInMs: backoff }, 'receiving from the queue failed');
        waitSeconds = 0;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, this.o.errorBackoffMs * 10);
        continue;
      }
      for (const message of messages) {
        const work = this.handleOne(message).finally(() => this.inFlight.delete(work));
        this.inFlight.add(work);
      }
    }
  }

  private async handleOne(message: Message): Promise<void> {
    const messageId = message.MessageId ?? '?';
    const parsed = parseMessage(message.Body ?? '');
    const kind = classify(parsed);
    this.o.metrics.messagesReceived.inc({ kind });
    if (!parsed.ok) {
      this.o.log.warn({ messageId, reason: parsed.reason, kindHint: parsed.kindHint }, 'malformed message; deleting it');
      this.o.metrics.messagesFailed.inc({ kind, stage: 'parse' });
      await this.delete(message, kind);
      return;
    }
    if (this.o.trust) {
      const trust = judgeEvent(parsed.event, this.o.trust, (this.o.clock ?? systemClock).now());
      if (!trust.trusted) {
        this.o.metrics.eventsDropped.inc({ kind, reason: trust.reason });
        const logged = this.dropLog.admit(trust.reason, (this.o.clock ?? systemClock).now().getTime());
        if (logged) {
          this.o.log.warn(
            {
              messageId,
              eventId: parsed.event.id,
              kind,
              reason: trust.reason,
              detail: trust.detail,
              instances: parsed.event.instanceIds.slice(0, 10),
              ...(logged.suppressed > 0 ? { droppedUnlogged: logged.suppressed } : {}),
            },
            DROP_MESSAGES[trust.reason],
          );
        }
        // The warn line above is rate-limited; this one says, per message, what became of it.
        this.o.log.debug({ messageId, eventId: parsed.event.id, kind, reason: trust.reason }, 'message dropped');
        // Another account's or Region's event may be another consumer's, in a queue shared on purpose.
        if (trust.reason !== 'stale' && this.o.keepForeign) await this.onForeign(message, kind);
        else await this.delete(message, kind);
        return;
      }
    }
    let verdict: HandlerVerdict;
    const heartbeat = (this.o.clock ?? systemClock).setRepeating(() => void this.extendVisibility(message), (this.visibilitySeconds * 1000) / 3);
    try {
      verdict = await this.o.handle(parsed.event, messageId);
    } catch (err) {
      this.o.log.error({ messageId, eventId: parsed.event.id, err: (err as Error).message }, 'handling the message failed; leaving it for redelivery');
      this.o.metrics.messagesFailed.inc({ kind, stage: 'handle' });
      return;
    } finally {
      heartbeat.cancel();
    }
    if (verdict.foreign) await this.onForeign(message, kind);
    else if (verdict.ack) await this.delete(message, kind);
    else {
      this.o.log.warn({ messageId, eventId: parsed.event.id }, 'work not safely started; leaving the message for redelivery');
      this.o.metrics.messagesFailed.inc({ kind, stage: 'handle' });
    }
  }

  private get visibilitySeconds(): number {
    return this.o.visibilityTimeoutSeconds;
  }

  /** Deleted, or kept for the consumer it belongs to; counted toward the shared-queue warning either way. */
  private async onForeign(message: Message, kind: ReturnType<typeof classify>): Promise<void> {
    const verdict = this.foreign.observe(message.MessageId ?? '?', kind, (this.o.clock ?? systemClock).now().getTime());
    this.o.metrics.messagesForeign.inc({ kind, action: verdict.action });
    if (verdict.sharedQueue) this.reportSharedQueue(verdict.sharedQueue);
    if (verdict.action === 'deleted') return this.delete(message, kind);
    this.o.log.debug(
      { messageId: message.MessageId, kind, sightings: verdict.sightings, visibleInSeconds: verdict.hideSeconds },
      'message for instances not in this cluster; left in the queue (aws.keep_foreign_messages)',
    );
    // Without sqs:ChangeMessageVisibility it simply comes back after the receive's own timeout.
    await this.changeVisibility(message, verdict.hideSeconds, 'keep');
  }

  private reportSharedQueue(sign: SharedQueueSign): void {
    const fields = { foreignMessages: sign.messages, windowSeconds: sign.windowMs / 1000, byKind: sign.byKind, keepForeign: this.o.keepForeign === true };
    if (this.o.keepForeign) {
      this.o.log.info(fields, 'many messages for instances not in this cluster: the queue is shared, and they are left in it for their owners');
      return;
    }
    this.o.log.warn(
      {
        ...fields,
        detail:
          `${sign.messages} messages for instances with no Node in this cluster within ${sign.windowMs / 60_000} minutes: another cluster's consumer ` +
          'probably reads this queue, and this controller deletes its messages. Give each cluster its own queue and EventBridge rule ' +
          '(deploy/aws/aws-setup.sh --cluster-name), as Karpenter requires; if the queue must be shared, set aws.keep_foreign_messages = true ' +
          "(SQS_KEEP_FOREIGN_MESSAGES) to leave other clusters' messages in it. If only spot instances outside any cluster use this " +
          'account and Region, nothing is wrong.',
      },
      'many messages for instances not in this cluster: the queue looks shared with another cluster',
    );
  }

  private extendVisibility(message: Message): Promise<void> {
    return this.changeVisibility(message, this.visibilitySeconds, 'heartbeat');
  }

  private async changeVisibility(message: Message, seconds: number, why: 'heartbeat' | 'keep'): Promise<void> {
    if (this.heartbeatRefused || !message.ReceiptHandle) return;
    try {
      await this.o.sqs.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: this.o.queueUrl, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: seconds }),
      );
    } catch (err) {
      const name = (err as Error).name ?? '';
      if (/AccessDenied|NotAuthorized/i.test(name)) {
        this.heartbeatRefused = true;
        this.o.log.warn(
          { err: (err as Error).message },
          'the IAM policy does not allow sqs:ChangeMessageVisibility: a message whose phase 1 outlasts the visibility timeout will be delivered again (handled idempotently, but repeated)',
        );
        return;
      }
      if (why === 'keep') {
        this.o.log.warn(
          { messageId: message.MessageId, visibilityTimeout: seconds, err: (err as Error).message },
          'changing the visibility of a kept message failed; it comes back after the receive visibility timeout',
        );
        return;
      }
      this.o.log.warn(
        { messageId: message.MessageId, err: (err as Error).message },
        'extending the message visibility failed; it may be delivered again while it is handled',
      );
    }
  }

  private async delete(message: Message, kind: ReturnType<typeof classify>): Promise<void> {
    if (this.o.dryRun) {
      this.o.log.info({ messageId: message.MessageId }, 'dry run: would delete the message');
      return;
    }
    try {
      const out = await this.o.sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: this.o.queueUrl, Entries: [{ Id: '0', ReceiptHandle: message.ReceiptHandle! }] }),
      );
      if (out.Failed?.length) throw new Error(out.Failed.map((f) => f.Message).join('; '));
      this.o.metrics.messagesDeleted.inc({ kind });
    } catch (err) {
      this.o.metrics.messagesFailed.inc({ kind, stage: 'delete' });
      this.o.log.warn(
        { messageId: message.MessageId, err: (err as Error).message },
        'deleting the message failed; it will be delivered again and handled idempotently',
      );
    }
  }
}
