// Messages about instances that have no Node in this cluster ("foreign" messages): what the intake
// does with each one, and whether there are so many of them that the queue must be shared with
// another cluster's consumer. Pure: the caller passes the time in and makes the SQS calls.
//
// A queue of one's own sees a foreign message now and then: the EventBridge rule catches every EC2
// event of the account and Region, so a spot instance outside any cluster (a batch fleet, a build
// agent) sends its warning here too. A queue shared with another cluster sees them all the time,
// and then the default (delete them) takes the other cluster's warnings away from its consumer.
// With aws.keep_foreign_messages the intake leaves them in the queue instead (see keptHideSeconds).
import type { MessageKind } from '../metrics/metrics.js';

/**
 * This many distinct foreign messages within SHARED_QUEUE_WINDOW_MS say the queue is shared. A queue
 * of one's own gets one now and then (a spot instance outside the cluster, a warning for a node that
 * has not registered yet), while a second cluster of any size sends several an hour: ten within ten
 * minutes is more than strays explain and few enough that a shared queue is named within minutes
 * of a start. A reclaim of a large spot fleet outside any cluster can also reach it; the warning
 * says so.
 */
export const SHARED_QUEUE_FOREIGN_MESSAGES = 10;
export const SHARED_QUEUE_WINDOW_MS = 10 * 60_000;

/**
 * The kinds whose instance is still running when the event is sent, so its Node would be here if the
 * instance were this cluster's. A state change does not count: the Node of an instance that stopped
 * or terminated is often deleted before its state change arrives, and one that is starting has not
 * registered yet, so even a queue of one's own sees many foreign state changes.
 */
export const SHARED_QUEUE_SIGNS: ReadonlySet<MessageKind> = new Set<MessageKind>([
  'spot_interrupted',
  'capacity_reservation_interrupted',
  'rebalance_recommendation',
  'scheduled_change',
]);

/**
 * A kept message seen again (nobody took it after it was released) is hidden this long, doubled at
 * each further sighting up to KEPT_MAX_HIDE_SECONDS. Every receive counts toward the queue's
 * maxReceiveCount (5 with aws-setup.sh), so each sighting spends one of the message's lives: the
 * backoff spends few (about five within the default 300 s retention) while a message that no
 * consumer claims ages out, and never makes a receive loop of it.
 */
export const KEPT_FIRST_HIDE_SECONDS = 30;
/** SQS allows 12 h; a message older than 15 minutes is of no use to anyone's two-minute window. */
export const KEPT_MAX_HIDE_SECONDS = 900;

/**
 * Message ids remembered, newest sightings kept: enough for any backlog of foreign messages within a
 * queue's retention. A forgotten message is only released at once again and counted again.
 */
export const FOREIGN_MEMORY = 10_000;

/** What to do with a foreign message: delete it (the default), or keep it, visible again in hideSeconds. */
export type ForeignAction = { action: 'deleted' } | { action: 'released' | 'held'; hideSeconds: number };

export interface SharedQueueSign {
  /** Distinct foreign messages of the SHARED_QUEUE_SIGNS kinds within the window. */
  messages: number;
  windowMs: number;
  byKind: Partial<Record<MessageKind, number>>;
}

export type ForeignVerdict = ForeignAction & {
  /** This process's sightings of the message, this one included (1: the first). */
  sightings: number;
  /** Set once in the life of the process: on the message that reaches the threshold. */
  sharedQueue?: SharedQueueSign;
};

/**
 * How long a kept message stays hidden after its nth sighting. The first time it is released at
 * once, so the consumer it belongs to gets it within its next receive (it loses nothing of a
 * two-minute window); seen again, its owner did not take it (it is down, or no consumer owns the
 * instance), so it is hidden for longer and longer.
 */
export function keptHideSeconds(sightings: number): number {
  if (sightings <= 1) return 0;
  return Math.min(KEPT_FIRST_HIDE_SECONDS * 2 ** (sightings - 2), KEPT_MAX_HIDE_SECONDS);
}

export class ForeignMessages {
  /** Sightings per message id, oldest sighting first (a Map keeps insertion order). */
  private readonly seen = new Map<string, number>();
  /** First sightings of SHARED_QUEUE_SIGNS kinds within the window, until the warning is given. */
  private signs: { at: number; kind: MessageKind }[] = [];
  private warned = false;

  constructor(private readonly keep: boolean) {}

  observe(messageId: string, kind: MessageKind, nowMs: number): ForeignVerdict {
    const sightings = (this.seen.get(messageId) ?? 0) + 1;
    this.seen.delete(messageId);
    this.seen.set(messageId, sightings);
    while (this.seen.size > FOREIGN_MEMORY) this.seen.delete(this.seen.keys().next().value!);

    // A message seen again (kept and back, or its delete failed) counts once.
    const sharedQueue = sightings === 1 ? this.count(kind, nowMs) : undefined;
    const action: ForeignAction = !this.keep
      ? { action: 'deleted' }
      : sightings === 1
        ? { action: 'released', hideSeconds: 0 }
        : { action: 'held', hideSeconds: keptHideSeconds(sightings) };
    return { ...action, sightings, ...(sharedQueue ? { sharedQueue } : {}) };
  }

  private count(kind: MessageKind, nowMs: number): SharedQueueSign | undefined {
    if (this.warned || !SHARED_QUEUE_SIGNS.has(kind)) return undefined;
    this.signs = this.signs.filter((s) => nowMs - s.at < SHARED_QUEUE_WINDOW_MS);
    this.signs.push({ at: nowMs, kind });
    if (this.signs.length < SHARED_QUEUE_FOREIGN_MESSAGES) return undefined;
    this.warned = true;
    const byKind: Partial<Record<MessageKind, number>> = {};
    for (const s of this.signs) byKind[s.kind] = (byKind[s.kind] ?? 0) + 1;
    const sign = { messages: this.signs.length, windowMs: SHARED_QUEUE_WINDOW_MS, byKind };
    this.signs = [];
    return sign;
  }
}
