// Whether an event may act on this cluster at all, judged before any handler sees it. The queue policy
// lets only the cluster's EventBridge rule send, but a queue can still hold what it should not act on:
// - an event of another account or Region (a bus forwarding more than it should, a hand-made message,
//   a queue shared across accounts): the instance ids it names may collide with nothing here, or with
//   something;
// - an old event: a dead-letter queue redriven days later, or a backlog after an outage. A spot warning
//   is worthless two minutes after its time, and a state change or a warning acted on late cordons a
//   node that is healthy by now.
// Such events are counted, logged (rate-limited: a redrive can bring thousands) and deleted without
// touching the cluster.
//
// An AWS Health scheduled change is the exception to the age rule while its startTime is still ahead:
// the event announces a change days ahead, what it says stays true until then, and the node mark it
// leaves is what moves the Deployments at the lead time. Once its startTime has passed it is judged by
// age like any other event.
import type { ParsedEvent } from '../events/parse.js';

export const UNTRUSTED_REASONS = ['foreign_account', 'foreign_region', 'stale'] as const;
export type UntrustedReason = (typeof UNTRUSTED_REASONS)[number];

/** What an event must match to be acted on. */
export interface TrustedOrigin {
  /** undefined: the account is not checked (the queue URL names none and aws.event_account is unset). */
  account?: string;
  region: string;
  maxAgeMs: number;
}

export type TrustVerdict = { trusted: true } | { trusted: false; reason: UntrustedReason; detail: string };

/**
 * The account of an SQS queue URL: `https://sqs.<region>.amazonaws.com/<account>/<name>` (and the
 * legacy `https://<region>.queue.amazonaws.com/...`, and local servers, which keep the same path).
 */
export function accountOfQueueUrl(queueUrl: string): string | undefined {
  if (!URL.canParse(queueUrl)) return undefined;
  const [account, name, ...rest] = new URL(queueUrl).pathname.split('/').filter((part) => part !== '');
  return account !== undefined && name !== undefined && rest.length === 0 && /^\d{12}$/.test(account) ? account : undefined;
}

export function trustedOriginOf(aws: {
  region: string;
  sqs_queue_url: string;
  max_event_age: number;
  event_account?: string;
  event_region?: string;
}): TrustedOrigin {
  const account = aws.event_account ?? accountOfQueueUrl(aws.sqs_queue_url);
  return { ...(account === undefined ? {} : { account }), region: aws.event_region ?? aws.region, maxAgeMs: aws.max_event_age };
}

/** Unknown kinds are left alone: they change nothing whatever their origin, and are counted as unknown. */
export function judgeEvent(event: ParsedEvent, origin: TrustedOrigin, now: Date): TrustVerdict {
  if (event.kind === 'unknown') return { trusted: true };
  if (origin.account !== undefined && event.account !== origin.account) {
    return {
      trusted: false,
      reason: 'foreign_account',
      detail:
        event.account === ''
          ? `the event names no account; only events of account ${origin.account} are acted on`
          : `the event is from account ${event.account}; only events of account ${origin.account} are acted on`,
    };
  }
  if (event.region !== origin.region) {
    return {
      trusted: false,
      reason: 'foreign_region',
      detail: `the event is from Region ${event.region}; only events of Region ${origin.region} are acted on`,
    };
  }
  const ageMs = now.getTime() - event.time.getTime();
  if (ageMs > origin.maxAgeMs) {
    if (event.kind === 'scheduled_change' && event.startTime.getTime() > now.getTime()) return { trusted: true };
    const what = event.kind === 'scheduled_change' ? `, and its startTime ${event.startTime.toISOString()} has passed` : '';
    return {
      trusted: false,
      reason: 'stale',
      detail: `the event's time ${event.time.toISOString()} is ${Math.round(ageMs / 1000)} s ago, more than aws.max_event_age (${Math.round(origin.maxAgeMs / 1000)} s)${what}`,
    };
  }
  return { trusted: true };
}

/**
 * One log line per dropped event, until a flood: per reason, the first line is written, then at most one
 * per `intervalMs`, which says how many were dropped silently since the last.
 */
export class DropLogLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly intervalMs = 60_000) {}

  /** undefined: do not log this one. Otherwise log it, with how many went unlogged before it. */
  admit(reason: string, nowMs: number): { suppressed: number } | undefined {
    const entry = this.last.get(reason);
    if (entry !== undefined && nowMs - entry.at < this.intervalMs) {
      entry.suppressed++;
      return undefined;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.last.set(reason, { at: nowMs, suppressed: 0 });
    return { suppressed };
  }
}
