// A watch-fed cache that keeps itself alive: client-node's informer stops on a watch error or a
// failed list, so it is restarted with doubling backoff (1 s up to 30 s, back to 1 s once a watch is
// accepted). A restart resumes the watch from the last resourceVersion; on 410 Gone client-node
// relists by itself.
// It can also store a trimmed copy of each object (see trim.ts): client-node's ListWatch has no
// transform hook, so the list function and the Watch it is given are wrapped instead, which covers
// the initial list, every relist and every watch event.
import { ListWatch, Watch, type Informer, type KubeConfig, type KubernetesListObject, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';

export type Cache<T extends KubernetesObject> = Informer<T> & ObjectCache<T>;

/** Objects per LIST page: client-go's reflector default, which API servers are tuned for. */
export const LIST_PAGE_SIZE = 500;

/** Which page of a LIST to read: the first (no token) or the one a previous page's `continue` names. */
export interface ListPage {
  limit: number;
  _continue?: string;
}

/** One page of a LIST. The API server holds every page of one list to the first page's resourceVersion. */
export type PagedList<T extends KubernetesObject> = (page: ListPage) => Promise<KubernetesListObject<T>>;

export interface ResilientInformerOptions<T extends KubernetesObject = KubernetesObject> {
  onError?: (err: unknown, retryInMs: number) => void;
  /** Test seam: how to wait before a restart (and before client-node's own watch reconnects). */
  delay?: (ms: number) => Promise<void>;
  labelSelector?: string;
  /** What the cache stores of each listed or watched object; the listeners see the same copy. */
  transform?: (obj: T) => T;
  /** Test seam: the watch to use instead of client-node's Watch on `kc`. */
  watch?: Watch;
  /** Objects per LIST page (LIST_PAGE_SIZE unless told). */
  pageSize?: number;
}

export interface ResilientInformer<T extends KubernetesObject> {
  cache: Cache<T>;
  /** Resolves once the first list has been loaded into the cache (retrying while it fails), or on stop(). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True after the first successful list. */
  readonly synced: boolean;
}

/**
 * Wraps the Watch that ListWatch is given: hands each watched object through `transform` before it is
 * cached, and says when the API server has accepted a watch (ListWatch's own 'connect' event fires
 * before it lists, so it cannot tell a healthy watch from a failing list).
 */
class InformerWatch<T> extends Watch {
  constructor(
    private readonly inner: Watch,
    private readonly transform: ((obj: T) => T) | undefined,
    private readonly onAccepted: () => void,
  ) {
    super(inner.config);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const transform = this.transform;
    let failed = false;
    let finished = false;
    const doneOnce = (err: unknown) => {
      if (finished) return;
      finished = true;
      if (err) failed = true;
      done(err);
    };
    let controller: AbortController;
    try {
      controller = await this.inner.watch(
        path,
        queryParams,
        // ERROR carries a Status (410 Gone is read from it) and BOOKMARK only a resourceVersion: both
        // pass as they are. The raw event is not passed on, so it does not keep the full object alive.
        transform
          ? (phase, obj) => callback(phase, phase === 'ADDED' || phase === 'MODIFIED' || phase === 'DELETED' ? transform(obj as T) : obj)
          : (phase, obj) => callback(phase, obj),
        doneOnce,
      );
    } catch (err) {
      // Watch.watch throws when the credentials cannot be had (an exec plugin failing, say): handed
      // to ListWatch as a failed watch, it becomes an 'error' and is retried like any other.
      doneOnce(err);
      return new AbortController();
    }
    // Watch.watch resolves once the response status is known; a refusal has called done(err) by then.
    if (!failed) this.onAccepted();
    return controller;
  }
}

/**
 * Every page of a LIST, each one's objects handed through `transform` before the next page is read.
 * The result carries the last page's list metadata: its resourceVersion, the one the watch resumes
 * from, is the same on every page. A page that fails (a continue token expired after etcd's
 * compaction answers 410) fails the whole list, which the informer retries from the first page.
 */
async function listAllPages<T extends KubernetesObject>(
  list: PagedList<T>,
  pageSize: number,
  transform: ((obj: T) => T) | undefined,
): Promise<KubernetesListObject<T>> {
  const items: T[] = [];
  let page: KubernetesListObject<T>;
  let token: string | undefined;
  do {
    page = await list({ limit: pageSize, _continue: token });
    for (const item of page.items) items.push(transform ? transform(item) : item);
    token = page.metadata?._continue || undefined;
  } while (token !== undefined);
  return { ...page, items };
}

export function resilientInformer<T extends KubernetesObject>(
  kc: KubeConfig,
  path: string,
  list: PagedList<T>,
  options: ResilientInformerOptions<T> = {},
): ResilientInformer<T> {
  const transform = options.transform;
  const delay = options.delay ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref()));
  // A failed list does not make cache.start() reject: the informer emits 'error' (and is retried
  // below) while start() resolves with an empty cache. Synced must mean "holds a list", so the
  // first successful list is awaited. It resolves on the next macrotask, once the informer has
  // put the listed items into the cache.
  let listed = false;
  let firstList!: () => void;
  const firstListDone = new Promise<void>((resolve) => (firstList = resolve));
  let backoffMs = 1000;
  const watch = new InformerWatch(options.watch ?? new Watch(kc), transform, () => {
    backoffMs = 1000;
  });
  const cache = new ListWatch<T>(
    path,
    watch,
    async () => {
      const result = await listAllPages(list, options.pageSize ?? LIST_PAGE_SIZE, transform);
      if (!listed) {
        listed = true;
        setImmediate(firstList);
      }
      return result;
    },
    false,
    options.labelSelector,
    undefined,
    options.delay ? { delayFn: options.delay } : undefined,
  );
  let stopped = false;
  let synced = false;
  const restartAfterBackoff = (err: unknown) => {
    if (stopped) return;
    const wait = backoffMs;
    backoffMs = Math.min(backoffMs * 2, 30_000);
    options.onError?.(err, wait);
    void delay(wait).then(async () => {
      if (stopped) return;
      try {
        await cache.start();
      } catch (restartErr) {
        // A failed list or watch comes back as 'error', not as a rejection; whatever else rejects
        // must not leave the cache without a watch.
        restartAfterBackoff(restartErr);
      }
    });
  };
  cache.on('error', restartAfterBackoff);
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
