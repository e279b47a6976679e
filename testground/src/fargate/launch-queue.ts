// Pods waiting for a Fargate launch token, served first come first served as AWS serves launch
// requests. Creation order is the pod's creationTimestamp (whole seconds in the API), ties broken by
// the order the scheduler saw the pods in: a watch delivers creations in resourceVersion order, and
// the sort keeps a relist after a restart from putting a newer pod ahead of an older one.
import type { TokenBucket } from './token-bucket.js';

interface Waiting<T> {
  key: string;
  item: T;
  createdAt: number;
}

export class LaunchQueue<T> {
  private readonly waiting: Waiting<T>[] = [];
  /** The keys in `waiting`: every pod update asks, so the answer must not cost a scan. */
  private readonly keys = new Set<string>();

  constructor(private readonly bucket: TokenBucket) {}

  get size(): number {
    return this.waiting.length;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Queues `item` behind every pod created before it (no-op if `key` already waits). */
  add(key: string, item: T, createdAt: number): void {
    if (this.keys.has(key)) return;
    this.keys.add(key);
    const entry = { key, item, createdAt };
    // Nearly always the newest: search from the back, and stop at an equal time so ties keep arrival order.
    let at = this.waiting.length;
    while (at > 0 && this.waiting[at - 1]!.createdAt > createdAt) at--;
    this.waiting.splice(at, 0, entry);
  }

  remove(key: string): boolean {
    if (!this.keys.has(key)) return false;
    const at = this.waiting.findIndex((w) => w.key === key);
    if (at < 0) return false;
    this.waiting.splice(at, 1);
    this.keys.delete(key);
    return true;
  }

  /** Takes a token for each waiting pod in order while tokens last; `retryInMs` is when the next one frees. */
  launchable(now: number): { launch: T[]; retryInMs?: number } {
    let n = 0;
    while (n < this.waiting.length && this.bucket.tryTake(now)) n++;
    const launched = this.waiting.splice(0, n);
    for (const w of launched) this.keys.delete(w.key);
    const launch = launched.map((w) => w.item);
    return this.waiting.length === 0 ? { launch } : { launch, retryInMs: this.bucket.msUntilToken(now) };
  }
}
