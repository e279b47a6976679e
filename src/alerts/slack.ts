// Sends alerts to a Slack incoming webhook. notify() only queues; one background sender posts the
// queue in order, retrying what Slack or the network failed, so a slow or broken Slack never slows
// a migration. The webhook URL is a credential: it is kept in a private field and never logged
// (errors are logged as redacted text, and the URL only ever as "slack webhook").

import { type Clock, systemClock } from '../clock.js';
import type { Logger } from 'pino';

import type { Alert, Alerter } from './alert.js';
import { describeError, redact, secretFormsOfUrl } from './redact.js';
import { formatSlackMessage } from './slack-format.js';

export interface SlackAlerterOptions {
  /** Secret. Must be an http(s) URL. */
  webhookUrl: string;
  logger: Logger;
  /** Shown on every message. */
  clusterName?: string;
  /** Test seam; the global fetch otherwise. */
  fetch?: typeof fetch;
  /** Retry delays and when an alert counts as raised ("seconds left" is counted from it). */
  clock?: Pick<Clock, 'now' | 'sleep'>;
  /** Tries per alert, the first included, before it is dropped. */
  maxAttempts?: number;
  /** Alerts waiting to be sent; past it the oldest is dropped. */
  maxQueue?: number;
  /** First retry delay after a 5xx or network error; doubles each retry up to maxBackoffMs. */
  backoffBaseMs?: number;
  maxBackoffMs?: number;
  /** One POST, response included; past it the try counts as a network error. */
  requestTimeoutMs?: number;
}

export interface SlackAlerterStats {
  /** Posted and accepted by Slack. */
  sent: number;
  /** Given up on: refused (4xx), out of attempts, or impossible to format. */
  failed: number;
  /** Thrown out unsent because the queue was full. */
  dropped: number;
  /** Waiting, the one being sent included. */
  pending: number;
}

export const SLACK_DEFAULTS = {
  maxAttempts: 5,
  maxQueue: 1000,
  backoffBaseMs: 1000,
  maxBackoffMs: 30_000,
  requestTimeoutMs: 10_000,
  flushTimeoutMs: 10_000,
  /** A Retry-After beyond this is taken as this: an absurd value must not park the sender for hours. */
  maxRetryAfterMs: 5 * 60_000,
} as const;

/** What one POST came to. */
type PostResult = { outcome: 'sent' } | { outcome: 'retry'; why: string; retryAfterMs?: number } | { outcome: 'refused'; status: number; response: string };

interface Queued {
  alert: Alert;
  raisedAt: Date;
}

/** Never throws from notify() or flush(): alerting is best effort (see Alerter). */
export class SlackAlerter implements Alerter {
  // A private field, so neither JSON.stringify nor util.inspect of the alerter shows the URL.
  readonly #webhookUrl: string;
  readonly #secrets: readonly string[];
  readonly #log: Logger;
  readonly #clusterName: string | undefined;
  readonly #fetch: typeof fetch;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #now: () => Date;
  readonly #maxAttempts: number;
  readonly #maxQueue: number;
  readonly #backoffBaseMs: number;
  readonly #maxBackoffMs: number;
  readonly #requestTimeoutMs: number;

  readonly #queue: Queued[] = [];
  /** The running sender, settled once the queue is empty; undefined while idle. */
  #sender: Promise<void> | undefined;
  #inFlight = 0;
  /** Drops since the queue last overflowed without draining: one warning per burst, not per drop. */
  #burstDrops = 0;
  readonly #stats = { sent: 0, failed: 0, dropped: 0 };

  /** Throws (without quoting the URL) if webhookUrl is not an http(s) URL. */
  constructor(options: SlackAlerterOptions) {
    if (!isHttpUrl(options.webhookUrl)) throw new Error('slack webhook URL is not an http:// or https:// URL');
    this.#webhookUrl = options.webhookUrl;
    this.#secrets = secretFormsOfUrl(options.webhookUrl);
    this.#log = options.logger.child({ component: 'alerts', sink: 'slack webhook' });
    this.#clusterName = options.clusterName;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    const clock = options.clock ?? systemClock;
    this.#sleep = (ms) => clock.sleep(ms);
    this.#now = () => clock.now();
    this.#maxAttempts = atLeast(1, options.maxAttempts ?? SLACK_DEFAULTS.maxAttempts);
    this.#maxQueue = atLeast(1, options.maxQueue ?? SLACK_DEFAULTS.maxQueue);
    this.#backoffBaseMs = atLeast(0, options.backoffBaseMs ?? SLACK_DEFAULTS.backoffBaseMs);
    this.#maxBackoffMs = atLeast(0, options.maxBackoffMs ?? SLACK_DEFAULTS.maxBackoffMs);
    this.#requestTimeoutMs = atLeast(1, options.requestTimeoutMs ?? SLACK_DEFAULTS.requestTimeoutMs);
  }

  notify(alert: Alert): void {
    try {
      if (this.#queue.length >= this.#maxQueue) {
        this.#queue.shift();
        this.#stats.dropped++;
        this.#burstDrops++;
        if (this.#burstDrops === 1) {
          this.#log.warn({ maxQueue: this.#maxQueue }, 'alert queue full: dropping the oldest alerts until slack webhook catches up');
        }
      }
      this.#queue.push({ alert: snapshot(alert), raisedAt: this.#now() });
      this.#sender ??= this.#runSender();
    } catch (error) {
      this.#logSafely('error', { kind: kindOf(alert), error: describeError(error, this.#secrets) }, 'could not queue alert');
    }
  }

  async flush(timeoutMs: number = SLACK_DEFAULTS.flushTimeoutMs): Promise<void> {
    const sender = this.#sender;
    if (!sender) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), Math.max(0, timeoutMs));
    });
    try {
      if (await Promise.race([sender.then(() => false), timedOut])) {
        this.#logSafely('warn', { pending: this.stats.pending, timeoutMs }, 'alert flush timed out: some alerts not sent yet');
      }
    } finally {
      clearTimeout(timer);
    }
  }

  get stats(): SlackAlerterStats {
    return { ...this.#stats, pending: this.#queue.length + this.#inFlight };
  }

  /** Sends until the queue is empty. Never rejects. */
  async #runSender(): Promise<void> {
    // Let notify() return (and its caller carry on) before any formatting or network work.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      for (let next = this.#queue.shift(); next; next = this.#queue.shift()) {
        this.#inFlight = 1;
        try {
          await this.#deliver(next);
        } finally {
          this.#inFlight = 0;
        }
      }
    } catch (error) {
      // #deliver catches everything; this is only a last guard so the sender can never wedge.
      this.#logSafely('error', { error: describeError(error, this.#secrets) }, 'alert sender failed');
    } finally {
      if (this.#burstDrops > 0) {
        this.#logSafely('warn', { dropped: this.#burstDrops }, 'alert queue drained; oldest alerts were dropped while it was full');
        this.#burstDrops = 0;
      }
      // No await since the loop saw the queue empty, so nothing waits; the next notify() starts a new sender.
      // (After the guard above, whatever is left waits for that next notify, rather than looping on a fault.)
      this.#sender = undefined;
    }
  }

  /** Formats and posts one alert, retrying as its failures allow; logs and counts the outcome. */
  async #deliver({ alert, raisedAt }: Queued): Promise<void> {
    const kind = alert.kind;
    let body: string;
    try {
      body = JSON.stringify(formatSlackMessage(alert, { clusterName: this.#clusterName, now: raisedAt }));
    } catch (error) {
      this.#stats.failed++;
      this.#log.error({ kind, error: describeError(error, this.#secrets) }, 'could not format alert for slack webhook; alert dropped');
      return;
    }

    for (let attempt = 1; ; attempt++) {
      const result = await this.#post(body);
      if (result.outcome === 'sent') {
        this.#stats.sent++;
        if (attempt > 1) this.#log.info({ kind, attempts: attempt }, 'alert sent to slack webhook after retrying');
        else this.#log.debug({ kind }, 'alert sent to slack webhook');
        return;
      }
      if (result.outcome === 'refused') {
        // A 4xx other than 429 means the message or the webhook is wrong (invalid_blocks, no_service,
        // channel_is_archived): sending it again would fail the same way.
        this.#stats.failed++;
        this.#log.warn({ kind, status: result.status, response: result.response }, `slack webhook refused the alert (HTTP ${result.status}); alert dropped`);
        return;
      }
      if (attempt >= this.#maxAttempts) {
        this.#stats.failed++;
        this.#log.warn(
          { kind, attempts: attempt, lastError: result.why },
          `slack webhook still failing after ${attempt} attempt${attempt === 1 ? '' : 's'}; alert dropped`,
        );
        return;
      }
      const delayMs = result.retryAfterMs ?? this.#backoff(attempt);
      this.#log.info({ kind, attempt, delayMs, why: result.why }, 'sending alert to slack webhook failed; retrying');
      try {
        await this.#sleep(delayMs);
      } catch {
        // A broken sleep seam must not lose the alert: retry at once.
      }
    }
  }

  async #post(body: string): Promise<PostResult> {
    let response: Response;
    let responseText: string;
    try {
      response = await this.#fetch(this.#webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body,
        signal: AbortSignal.timeout(this.#requestTimeoutMs),
      });
      // Read to the end (it is a word like "ok" or "invalid_blocks") so the connection can be reused.
      responseText = redact((await response.text()).slice(0, 200), this.#secrets);
    } catch (error) {
      return { outcome: 'retry', why: describeError(error, this.#secrets) };
    }
    if (response.ok) return { outcome: 'sent' };
    const why = `HTTP ${response.status}${responseText ? `: ${responseText}` : ''}`;
    if (response.status === 429) {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), this.#now());
      return retryAfterMs === undefined ? { outcome: 'retry', why } : { outcome: 'retry', why, retryAfterMs };
    }
    if (response.status >= 500) return { outcome: 'retry', why };
    return { outcome: 'refused', status: response.status, response: responseText };
  }

  /** 1 s, 2 s, 4 s… capped: the delay after the given failed attempt. */
  #backoff(attempt: number): number {
    return Math.min(this.#maxBackoffMs, this.#backoffBaseMs * 2 ** (attempt - 1));
  }

  #logSafely(level: 'warn' | 'error', fields: Record<string, unknown>, message: string): void {
    try {
      this.#log[level](fields, message);
    } catch {
      // Nowhere left to report to.
    }
  }
}

/**
 * Retry-After in milliseconds: delta-seconds (what Slack sends) or an HTTP date; capped at
 * SLACK_DEFAULTS.maxRetryAfterMs. Undefined when absent or unreadable (the caller backs off instead).
 */
export function parseRetryAfter(value: string | null, now: Date): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else {
    const date = Date.parse(text);
    if (Number.isNaN(date)) return undefined;
    ms = Math.max(0, date - now.getTime());
  }
  return Math.min(Math.round(ms), SLACK_DEFAULTS.maxRetryAfterMs);
}

function isHttpUrl(url: string): boolean {
  if (!URL.canParse(url)) return false;
  const { protocol } = new URL(url);
  return protocol === 'http:' || protocol === 'https:';
}

function atLeast(min: number, value: number): number {
  return Number.isFinite(value) ? Math.max(min, value) : min;
}

function kindOf(alert: unknown): string {
  return typeof alert === 'object' && alert !== null && typeof (alert as { kind?: unknown }).kind === 'string' ? (alert as { kind: string }).kind : 'unknown';
}

/**
 * A copy of the alert as it is now: it is formatted later, and the caller may go on changing the
 * arrays it passed (a summary's outcomes). Falls back to the alert itself if it cannot be copied.
 */
function snapshot(alert: Alert): Alert {
  try {
    return structuredClone(alert);
  } catch {
    return alert;
  }
}
