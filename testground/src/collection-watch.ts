// A list-then-watch of one collection that keeps going: the initial LIST gives the starting state
// and a resourceVersion; the watch resumes from the last version it saw when the server closes it
// or when client-node's Watch gives up on a quiet stream (it aborts after 30 s without a byte), and
// relists on 410 Gone. Shared by the benchmark's trackers and the tests' samplers. Every event carries the time it arrived (Date.now()), which is what the
// benchmark integrates over. Objects are the API server's JSON (camelCase), never deserialized.
import { Watch, type KubeConfig } from '@kubernetes/client-node';

export interface RawObject {
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: unknown;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ListResult {
  items: RawObject[];
  resourceVersion: string;
}

export interface CollectionWatchOptions {
  kc: KubeConfig;
  /** e.g. /apis/apps/v1/namespaces/ns/deployments */
  path: string;
  list: () => Promise<ListResult>;
  onEvent: (type: WatchEventType, obj: RawObject, at: number) => void;
  /** Called with the whole fresh list after a relist (410 Gone), so the caller can reconcile. */
  onRelist?: (items: RawObject[], at: number) => void;
  log?: (line: string) => void;
}

export class CollectionWatch {
  private abort?: AbortController;
  private stopped = false;
  private resourceVersion = '';
  restarts = 0;
  relists = 0;

  constructor(private readonly o: CollectionWatchOptions) {}

  /** Lists, reports every item as ADDED, and starts watching from the list's version. */
  async start(): Promise<void> {
    const listed = await this.o.list();
    const at = Date.now();
    for (const item of listed.items) this.o.onEvent('ADDED', item, at);
    this.resourceVersion = listed.resourceVersion;
    await this.watch();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    const watch = new Watch(this.o.kc);
    let gone = false;
    this.abort = await watch.watch(
      this.o.path,
      { resourceVersion: this.resourceVersion, allowWatchBookmarks: true },
      (type: string, obj: RawObject & { code?: number }) => {
        const at = Date.now();
        if (type === 'ERROR') {
          if (obj.code === 410) gone = true;
          return;
        }
        this.backoffMs = 200;
        const rv = obj.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (type === 'BOOKMARK') return;
        this.o.onEvent(type as WatchEventType, obj, at);
      },
      (err: unknown) => {
        if (this.stopped) return;
        this.restarts++;
        if (err) this.o.log?.(`watch of ${this.o.path} ended (${String(err)}); resuming`);
        void this.resume(gone).catch((e: unknown) => this.o.log?.(`watch of ${this.o.path} could not resume: ${String(e)}`));
      },
    );
  }

  private backoffMs = 200;

  private async resume(gone: boolean): Promise<void> {
    await new Promise((r) => setTimeout(r, this.backoffMs));
    this.backoffMs = Math.min(this.backoffMs * 2, 5000);
    if (this.stopped) return;
    if (gone || !this.resourceVersion) {
      this.relists++;
      const listed = await this.o.list();
      this.resourceVersion = listed.resourceVersion;
      this.o.onRelist?.(listed.items, Date.now());
    }
    await this.watch();
  }
}
