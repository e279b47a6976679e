// A watch-fed cache that keeps itself alive: client-node's informer stops on a watch error, so it
// is restarted with doubling backoff (1 s up to 30 s); a restart relists, which also covers 410 Gone.
import { makeInformer, type Informer, type KubeConfig, type KubernetesObject, type ListPromise, type ObjectCache } from '@kubernetes/client-node';

export type Cache<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

export interface ResilientInformerOptions {
  onError?: (err: unknown, retryInMs: number) => void;
  /** Test seam: how to wait before a restart. */
  delay?: (ms: number) => Promise<void>;
  labelSelector?: string;
}

export interface ResilientInformer<T extends KubernetesObject> {
  cache: Cache<T>;
  /** Resolves once the first list has been loaded into the cache (retrying while it fails), or on stop(). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True after the first successful list. */
  readonly synced: boolean;
}

export function resilientInformer<T extends KubernetesObject>(
  kc: KubeConfig,
  path: string,
  list: ListPromise<T>,
  options: ResilientInformerOptions = {},
): ResilientInformer<T> {
  // A failed list does not make cache.start() reject: the informer emits 'error' (and is retried
  // below) while start() resolves with an empty cache. Synced must mean "holds a list", so the
  // first successful list is awaited. It resolves on the next macrotask, once the informer has
  // put the listed items into the cache.
  let listed = false;
  let firstList!: () => void;
  const firstListDone = new Promise<void>((resolve) => (firstList = resolve));
  const cache = makeInformer<T>(
    kc,
    path,
    async () => {
      const result = await list();
      if (!listed) {
        listed = true;
        setImmediate(firstList);
      }
      return result;
    },
    options.labelSelector,
  );
  const delay = options.delay ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref()));
  let stopped = false;
  let synced = false;
  let backoffMs = 1000;
  cache.on('connect', () => {
    backoffMs = 1000;
  });
  cache.on('error', (err: unknown) => {
    if (stopped) return;
    const wait = backoffMs;
    backoffMs = Math.min(backoffMs * 2, 30_000);
    options.onError?.(err, wait);
    void delay(wait).then(async () => {
      if (stopped) return;
      try {
        await cache.start();
      } catch (restartErr) {
        // start() rejects when the relist fails; the informer emits 'error' again, which schedules the next try.
        options.onError?.(restartErr, backoffMs);
      }
    });
  });
  return {
    cache,
    get synced() {
      return synced;
    },
    async start() {
      stopped = false;
      await cache.start();
      await firstListDone;
      synced = listed;
    },
    async stop() {
      stopped = true;
      firstList(); // a start() still waiting for its first list gives up
      await cache.stop();
    },
  };
}
