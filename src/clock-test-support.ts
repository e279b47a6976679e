// A Clock for unit tests: time stands still until the test advances it, and every timer due by then
// fires in order, with the promise jobs it starts run to completion before the next one.
import type { Clock, Timer } from './clock.js';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  every?: number;
  cancelled: boolean;
}

export class ManualClock implements Clock {
  private ms: number;
  private seq = 0;
  private pending: Pending[] = [];

  constructor(start: Date | string = '2026-01-01T00:00:00Z') {
    this.ms = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.ms);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = this.setTimer(resolve, ms);
      signal?.addEventListener(
        'abort',
        () => {
          timer.cancel();
          resolve();
        },
        { once: true },
      );
    });
  }

  setTimer(fn: () => void, ms: number): Timer {
    return this.add(fn, ms);
  }

  setRepeating(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, Math.max(1, ms));
  }

  /** Timers not yet fired or cancelled. */
  get timers(): number {
    return this.pending.filter((p) => !p.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const until = this.ms + ms;
    for (;;) {
      await settle();
      const next = this.pending.filter((p) => !p.cancelled && p.at <= until).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.ms = Math.max(this.ms, next.at);
      if (next.every) next.at += next.every;
      else next.cancelled = true;
      next.fn();
    }
    this.pending = this.pending.filter((p) => !p.cancelled);
    this.ms = until;
    await settle();
  }

  private add(fn: () => void, ms: number, every?: number): Timer {
    const entry: Pending = { at: this.ms + Math.max(0, ms), seq: this.seq++, fn, every, cancelled: false };
    this.pending.push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }
}

/** Lets every promise job queued so far (and those they queue) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}
