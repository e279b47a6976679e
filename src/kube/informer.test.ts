// The resilient informer against a scripted list and watch (client-node's own ListWatch in between):
// restarts with doubling backoff while the list or the watch fails, back to 1 s once a watch is
// accepted; relists on 410 Gone; `synced` only once a list has been loaded; stop() ends it all; and
// the transform applies to listed and watched objects alike; lists are read page by page, each page
// trimmed before the next is asked for, and a page that fails fails the list, retried from the start.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeConfig, Watch, type KubernetesListObject, type V1Pod } from '@kubernetes/client-node';
import { type ListPage, resilientInformer } from './informer.js';

type Callback = (phase: string, obj: unknown) => void;

interface Session {
  queryParams: Record<string, string | number | boolean | undefined>;
  send: Callback;
  end: (err: unknown) => void;
}

/** A Watch whose sessions the test drives; `refuse` makes the next watch fail as the API server would. */
class ScriptedWatch extends Watch {
  readonly sessions: Session[] = [];
  refuse: unknown[] = [];
  throwNext: unknown[] = [];

  constructor() {
    super(new KubeConfig());
  }

  override async watch(
    _path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: Callback,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    if (this.throwNext.length > 0) throw this.throwNext.shift();
    const controller = new AbortController();
    const refusal = this.refuse.shift();
    if (refusal) {
      done(refusal);
      return controller;
    }
    this.sessions.push({ queryParams, send: callback, end: done });
    return controller;
  }

  get last(): Session {
    const s = this.sessions.at(-1);
    assert.ok(s, 'a watch is open');
    return s;
  }
}

const pod = (name: string, resourceVersion: string, extra: Partial<V1Pod['metadata']> = {}): V1Pod => ({
  metadata: { name, namespace: 'ns', resourceVersion, labels: { app: name }, ...extra },
});

/**
 * Lists what `items` holds when called, a page at a time as the API server does (the continue token
 * is the offset), or fails while `failures` lasts. `calls` counts pages; `pages` records what each asked.
 */
function scriptedList() {
  const state = { items: [] as V1Pod[], resourceVersion: '1', failures: [] as unknown[], calls: 0, pages: [] as ListPage[] };
  const list = async (page: ListPage): Promise<KubernetesListObject<V1Pod>> => {
    state.calls++;
    state.pages.push(page);
    const failure = state.failures.shift();
    if (failure) throw failure;
    const from = page._continue === undefined ? 0 : Number(page._continue);
    const to = from + page.limit;
    return {
      metadata: { resourceVersion: state.resourceVersion, _continue: to < state.items.length ? String(to) : '' },
      items: state.items.slice(from, to).map((p) => structuredClone(p)),
    };
  };
  return { state, list };
}

function setUp(options: { transform?: (p: V1Pod) => V1Pod; pageSize?: number } = {}) {
  const watch = new ScriptedWatch();
  const { state, list } = scriptedList();
  const errors: { err: unknown; retryInMs: number }[] = [];
  const delays: number[] = [];
  const informer = resilientInformer<V1Pod>(new KubeConfig(), '/api/v1/namespaces/ns/pods', list, {
    watch,
    onError: (err, retryInMs) => errors.push({ err, retryInMs }),
    delay: async (ms) => {
      delays.push(ms);
    },
    ...(options.transform ? { transform: options.transform } : {}),
    ...(options.pageSize ? { pageSize: options.pageSize } : {}),
  });
  return { watch, state, informer, errors, delays };
}

/** Lets the informer's promise chains and the setImmediate that marks the first list run. */
async function until(what: string, cond: () => boolean, rounds = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (cond()) return;
    await new Promise<void>((r) => setImmediate(r));
  }
  assert.fail(`never happened: ${what}`);
}

const gone = () => Object.assign(new Error('Gone'), { statusCode: 410 });
const refused = (status: number) => Object.assign(new Error(`status ${status}`), { statusCode: status });

describe('resilientInformer', () => {
  it('is synced once the first list is in the cache, then watches from its resourceVersion', async () => {
    const { watch, state, informer } = setUp();
    state.items = [pod('a', '5'), pod('b', '6')];
    state.resourceVersion = '7';
    assert.equal(informer.synced, false);
    await informer.start();
    assert.equal(informer.synced, true);
    assert.deepEqual(
      informer.cache
        .list('ns')
        .map((p) => p.metadata?.name)
        .sort(),
      ['a', 'b'],
    );
    assert.equal(watch.last.queryParams.resourceVersion, '7');

    const seen: string[] = [];
    informer.cache.on('add', (p) => seen.push(`add ${p.metadata?.name}`));
    informer.cache.on('update', (p) => seen.push(`update ${p.metadata?.name}`));
    informer.cache.on('delete', (p) => seen.push(`delete ${p.metadata?.name}`));
    watch.last.send('ADDED', pod('c', '8'));
    watch.last.send('MODIFIED', pod('a', '9'));
    watch.last.send('MODIFIED', pod('a', '9')); // a repeat of the same version is not news
    watch.last.send('DELETED', pod('b', '10'));
    assert.deepEqual(seen, ['add c', 'update a', 'delete b']);
    assert.deepEqual(
      informer.cache
        .list('ns')
        .map((p) => p.metadata?.name)
        .sort(),
      ['a', 'c'],
    );
    await informer.stop();
  });

  it('waits through failing lists with doubling backoff up to 30 s, and is synced only after a list succeeds', async () => {
    const { state, informer, errors } = setUp();
    state.failures = Array.from({ length: 7 }, (_, i) => refused(i % 2 ? 503 : 429));
    state.items = [pod('a', '5')];
    let started = false;
    const starting = informer.start().then(() => {
      started = true;
    });
    await until('eight lists', () => state.calls === 8);
    await starting;
    assert.equal(started, true);
    assert.equal(informer.synced, true);
    assert.deepEqual(
      errors.map((e) => e.retryInMs),
      [1000, 2000, 4000, 8000, 16000, 30000, 30000],
    );
    assert.equal(informer.cache.get('a', 'ns')?.metadata?.resourceVersion, '5');
    await informer.stop();
  });

  it('restarts a failed watch after the backoff from the last resourceVersion; an accepted watch resets the backoff to 1 s', async () => {
    const { watch, state, informer, errors } = setUp();
    state.items = [pod('a', '5'), pod('b', '6')];
    await informer.start();
    assert.equal(state.calls, 1);

    watch.last.send('MODIFIED', pod('a', '11'));
    // The API server goes away: the open watch ends with an error, and the next two watches are refused.
    watch.refuse = [refused(503), refused(503)];
    watch.last.end(new Error('socket hang up'));
    await until('a third watch accepted', () => watch.sessions.length === 2);
    assert.deepEqual(
      errors.map((e) => e.retryInMs),
      [1000, 2000, 4000],
    );
    assert.equal(state.calls, 1, 'the watch resumes without a list (410 Gone would make it relist)');
    assert.equal(watch.last.queryParams.resourceVersion, '11');
    assert.equal(informer.synced, true, 'a restart does not unsync');

    watch.last.end(new Error('socket hang up'));
    await until('a fourth watch', () => watch.sessions.length === 3);
    assert.equal(errors.at(-1)?.retryInMs, 1000);
    await informer.stop();
  });

  it('a watch that cannot even be started (credentials failing) is retried like a failed one', async () => {
    const { watch, state, informer, errors } = setUp();
    watch.throwNext = [new Error('exec plugin: aws failed')];
    await informer.start();
    await until('a watch after the retry', () => watch.sessions.length === 1);
    assert.deepEqual(
      errors.map((e) => [String(e.err), e.retryInMs]),
      [['Error: exec plugin: aws failed', 1000]],
    );
    assert.equal(state.calls, 1);
    await informer.stop();
  });

  it('relists on 410 Gone, from an ERROR event or a refused watch, without reporting an error', async () => {
    const { watch, state, informer, errors } = setUp();
    state.items = [pod('a', '5')];
    await informer.start();

    state.resourceVersion = '20';
    watch.last.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired' });
    state.items = []; // a was deleted while the watch was away
    const deleted: string[] = [];
    informer.cache.on('delete', (p) => deleted.push(p.metadata!.name!));
    watch.last.end(null);
    await until('a relist', () => state.calls === 2 && watch.sessions.length === 2);
    assert.equal(watch.last.queryParams.resourceVersion, '20');
    assert.deepEqual(deleted, ['a'], 'what the relist no longer holds is deleted');

    state.resourceVersion = '30';
    watch.refuse = [gone()];
    watch.last.end(null); // a clean close: the watch resumes, is refused with 410, and relists
    await until('a second relist', () => state.calls === 3 && watch.sessions.length === 3);
    assert.equal(watch.last.queryParams.resourceVersion, '30');
    assert.deepEqual(errors, []);
    await informer.stop();
  });

  it('stop() releases a start() still waiting for its first list, which stays unsynced, and no retry follows', async () => {
    let lists = 0;
    let releaseDelay: (() => void) | undefined;
    const informer = resilientInformer<V1Pod>(
      new KubeConfig(),
      '/api/v1/namespaces/ns/pods',
      async () => {
        lists++;
        throw refused(503);
      },
      { watch: new ScriptedWatch(), delay: () => new Promise<void>((r) => (releaseDelay = r)) },
    );
    const starting = informer.start();
    await until('a retry waiting', () => releaseDelay !== undefined);
    await informer.stop();
    await starting;
    assert.equal(informer.synced, false);
    releaseDelay?.();
    await new Promise<void>((r) => setImmediate(r));
    assert.equal(lists, 1, 'no list after stop()');
  });

  it('the transform applies to listed and watched objects; ERROR and BOOKMARK pass as they are', async () => {
    const seenByTransform: string[] = [];
    const { watch, state, informer } = setUp({
      transform: (p) => {
        seenByTransform.push(p.metadata!.name!);
        return { metadata: { name: p.metadata!.name!, namespace: p.metadata!.namespace!, resourceVersion: p.metadata!.resourceVersion! } };
      },
    });
    state.items = [pod('a', '5')];
    await informer.start();
    const updates: V1Pod[] = [];
    informer.cache.on('update', (p) => updates.push(p));
    watch.last.send('ADDED', pod('b', '6'));
    watch.last.send('MODIFIED', pod('a', '7'));
    watch.last.send('BOOKMARK', { kind: 'Pod', metadata: { resourceVersion: '8' } });
    watch.last.send('DELETED', pod('b', '9'));
    assert.deepEqual(seenByTransform, ['a', 'b', 'a', 'b']);
    assert.deepEqual(informer.cache.get('a', 'ns'), { metadata: { name: 'a', namespace: 'ns', resourceVersion: '7' } });
    assert.deepEqual(updates, [{ metadata: { name: 'a', namespace: 'ns', resourceVersion: '7' } }], 'listeners get the trimmed copy');

    watch.last.send('ERROR', { kind: 'Status', code: 410 });
    watch.last.end(null);
    await until('the relist', () => state.calls === 2);
    assert.deepEqual(seenByTransform, ['a', 'b', 'a', 'b', 'a']);
    await informer.stop();
  });

  it('reads a list page by page, trimming each page before asking for the next, and watches from its resourceVersion', async () => {
    const order: string[] = [];
    let pagesRead = () => 0;
    const { watch, state, informer } = setUp({
      pageSize: 2,
      transform: (p) => {
        order.push(`${p.metadata!.name} trimmed after page ${pagesRead()}`);
        return { metadata: { name: p.metadata!.name!, namespace: 'ns', resourceVersion: p.metadata!.resourceVersion! } };
      },
    });
    state.items = ['a', 'b', 'c', 'd', 'e'].map((n, i) => pod(n, String(i + 1)));
    state.resourceVersion = '9';
    pagesRead = () => state.calls;
    await informer.start();
    assert.deepEqual(
      state.pages.map((p) => [p.limit, p._continue]),
      [
        [2, undefined],
        [2, '2'],
        [2, '4'],
      ],
    );
    assert.deepEqual(
      informer.cache
        .list('ns')
        .map((p) => p.metadata?.name)
        .sort(),
      ['a', 'b', 'c', 'd', 'e'],
    );
    assert.deepEqual(informer.cache.get('c', 'ns'), { metadata: { name: 'c', namespace: 'ns', resourceVersion: '3' } }, 'the cache holds trimmed copies');
    assert.deepEqual(order, ['a trimmed after page 1', 'b trimmed after page 1', 'c trimmed after page 2', 'd trimmed after page 2', 'e trimmed after page 3']);
    assert.equal(watch.last.queryParams.resourceVersion, '9');
    await informer.stop();
  });

  it('a page that fails fails the list: the retry starts again from the first page, and nothing half-listed is cached', async () => {
    const { state, informer, errors } = setUp({ pageSize: 2 });
    state.items = ['a', 'b', 'c'].map((n, i) => pod(n, String(i + 1)));
    // The first page is served; the second is refused as an expired continue token is.
    const expired = Object.assign(new Error('The provided continue parameter is too old'), { statusCode: 410 });
    state.failures = [undefined, expired];
    const adds: string[] = [];
    informer.cache.on('add', (p) => adds.push(p.metadata!.name!));
    await informer.start();
    assert.deepEqual(
      state.pages.map((p) => p._continue),
      [undefined, '2', undefined, '2'],
    );
    assert.deepEqual(
      errors.map((e) => [e.err, e.retryInMs]),
      [[expired, 1000]],
    );
    assert.deepEqual(adds, ['a', 'b', 'c'], 'the first page of the failed list was never cached');
    assert.equal(informer.synced, true);
    await informer.stop();
  });
});
