// The one source of time for the controller: every part that reads the time, waits or sets a timer
// gets a Clock passed in, so tests drive time with ManualClock (clock-test-support.ts) instead of
// waiting for it, and a pause in a test cannot drift from the time the code under test reads.

/** A pending callback; cancel() is safe to call more than once and after it fired. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): Date;
  /** Resolves after `ms`, or as soon as `signal` aborts (it never rejects). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` once after `ms`. Never keeps the process alive on its own. */
  setTimer(fn: () => void, ms: number): Timer;
  /** Calls `fn` every `ms` until cancelled. Never keeps the process alive on its own. */
  setRepeating(fn: () => void, ms: number): Timer;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep(ms, signal) {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
    });
  },
  setTimer(fn, ms) {
    const timer = setTimeout(fn, Math.max(0, ms));
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
  setRepeating(fn, ms) {
    const timer = setInterval(fn, ms);
    timer.unref();
    return { cancel: () => clearInterval(timer) };
  },
};
