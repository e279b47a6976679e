// Kubernetes API access shared by the controller: kubeconfig loading, error classification and
// the retry rule for transient failures (throttling, server errors, network).
import { createHash } from 'node:crypto';
import type https from 'node:https';
import {
  type ApiConstructor,
  type ApiType,
  createConfiguration,
  KubeConfig,
  PatchStrategy,
  type PromiseHttpLibrary,
  type RequestContext,
  ResponseContext,
  SelfDecodingBody,
  ServerConfiguration,
  setHeaderOptions,
  wrapHttpLibrary,
} from '@kubernetes/client-node';
import { systemClock } from '../clock.js';
import { DEFAULT_MAX_CONCURRENT_PATCHES } from '../config/config.js';
import { Agent, type Dispatcher, request } from 'undici';

/** Request options that pick the patch format (client-node sends JSON Patch unless told). */
export const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
export const JSON_PATCH = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
export const STRATEGIC_MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

/**
 * The controller's User-Agent. The API server also names the controller's writes after it (the
 * `manager` of their metadata.managedFields entries), which is how an audit tells a write by the
 * controller from everyone else's.
 */
export const USER_AGENT = 'spot-fargate-orchestrator';

/** One API call as it ended: what was asked, the answer's HTTP status ('network' when none came back), how long it took. */
export interface ApiCall {
  verb: string;
  resource: string;
  code: number | 'network';
  seconds: number;
}

const VERB_OF_METHOD: Record<string, string> = { POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

/**
 * The verb and resource of an API call, in RBAC's words: `list` for a GET of a collection, `get` for
 * one object; the resource is the plural, with its subresource (`deployments/scale`). Anything that
 * is not a resource path (discovery, /version) is `other`.
 */
export function describeCall(method: string, url: string): { verb: string; resource: string } {
  const parts = new URL(url).pathname.split('/').filter((p) => p !== '');
  // /api/v1/... or /apis/GROUP/VERSION/...
  const rest = parts[0] === 'api' ? parts.slice(2) : parts[0] === 'apis' ? parts.slice(3) : undefined;
  if (rest === undefined || rest.length === 0) return { verb: method.toLowerCase(), resource: 'other' };
  // A namespaced path names the namespace first; /api/v1/namespaces alone (or /namespaces/NAME) is the Namespace resource.
  const inNamespace = rest[0] === 'namespaces' && rest.length >= 3 ? rest.slice(2) : rest;
  const [plural, name, subresource] = inNamespace;
  const resource = subresource ? `${plural}/${subresource}` : (plural ?? 'other');
  const upper = method.toUpperCase();
  const verb =
    upper === 'GET'
      ? name === undefined
        ? 'list'
        : 'get'
      : upper === 'DELETE' && name === undefined
        ? 'deletecollection'
        : (VERB_OF_METHOD[upper] ?? method.toLowerCase());
  return { verb, resource };
}

/** Connections for a controller that runs `maxConcurrentPatches` patches at once, plus room for the lease, Events, node marks and reads. */
export const callConnectionsFor = (maxConcurrentPatches: number) => maxConcurrentPatches + 16;

/** Enough for phase 1's patches and the calls beside them, for the default MAX_CONCURRENT_PATCHES. */
export const DEFAULT_CALL_CONNECTIONS = callConnectionsFor(DEFAULT_MAX_CONCURRENT_PATCHES);

/**
 * A KubeConfig whose API calls share one keep-alive connection pool. client-node (2.0) hands every
 * request a new undici Agent, so each call pays a fresh TCP and TLS handshake, on the controller and
 * on the API server alike; during phase 1 that is hundreds of handshakes a second on a control plane
 * that is busy with the rollouts we just started. The pooled dispatcher is keyed on everything that
 * shapes the connection (server, CA, client certificate and key, TLS verification), so a changed
 * credential gets a pool of its own.
 *
 * The calls go over HTTP/1.1, one request per connection at a time, on at most `callConnections`
 * connections. Over HTTP/2 all of them shared one connection, and under load that one connection is
 * what the API server serves slowly: with the rollouts of the first patches keeping it busy, phase 1
 * at 1000 Deployments took 11.1 and 11.8 s over HTTP/2 and 7.1 and 7.9 s over 50 HTTP/1.1
 * connections, runs taking turns on one ground (bench/results/2026-12-01-http1-calls.md). The
 * watches share one HTTP/2 connection of their own: a handful of long streams, kept apart so a
 * rollout's event flood never queues in front of a patch. Proxies are left to client-node.
 */
export class PooledKubeConfig extends KubeConfig {
  private readonly pools = new Map<string, Agent>();
  private opened = 0;
  private observer?: (call: ApiCall) => void;

  /**
   * callConnections: the most connections the API calls open (the watches have their own one).
   * transport: how the calls travel on them (see CallTransport).
   */
  constructor(
    private readonly callConnections = DEFAULT_CALL_CONNECTIONS,
    readonly transport: CallTransport = 'request',
    /** Sent on the calls; the API server names their writes after it (see USER_AGENT). */
    readonly userAgent = USER_AGENT,
  ) {
    super();
  }

  /**
   * Told of every API call made through makeApiClient's clients as it ends (the metrics count them).
   * The `request` transport only; the watches are streams, not calls, and are not told.
   */
  observeCalls(observer: (call: ApiCall) => void): void {
    this.observer = observer;
  }

  /** TCP+TLS connections the pools have opened so far (reuse shows as a count well below the calls). */
  get connectionsOpened(): number {
    return this.opened;
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const cluster = this.getCurrentCluster();
    // No dispatcher means no TLS material: fetch's global dispatcher, which keeps connections alive.
    if (context.getDispatcher() === undefined || cluster === null || cluster.proxyUrl) return;
    const tls: https.RequestOptions = {};
    await this.applyToHTTPSOptions(tls);
    const options = this.createDispatcherOptions(cluster, {
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      pfx: tls.pfx,
      passphrase: tls.passphrase,
      rejectUnauthorized: tls.rejectUnauthorized,
      servername: tls.servername,
    });
    if (options.type !== 'agent') return;
    const c = options.connect;
    const watch = new URL(context.getUrl()).searchParams.get('watch') === 'true';
    const key = createHash('sha256')
      .update(
        JSON.stringify(
          [cluster.server, c.ca, c.cert, c.key, c.pfx, c.rejectUnauthorized, c.servername, watch].map((v) =>
            Buffer.isBuffer(v) ? v.toString('base64') : (v ?? null),
          ),
        ),
      )
      .digest('hex');
    let pooled = this.pools.get(key);
    if (!pooled) {
      // undici 8 offers HTTP/2, which the API server takes; the calls decline it (see above).
      pooled = watch ? new Agent({ connect: c }) : new Agent({ connect: c, allowH2: false, connections: this.callConnections });
      pooled.on('connect', () => this.opened++);
      this.pools.set(key, pooled);
    }
    context.setDispatcher(pooled);
  }

  override makeApiClient<T extends ApiType>(apiClientType: ApiConstructor<T>): T {
    if (this.transport === 'fetch') return super.makeApiClient(apiClientType);
    const cluster = this.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig names no current cluster');
    return new apiClientType(
      createConfiguration({
        baseServer: new ServerConfiguration(cluster.server, {}),
        authMethods: { default: this },
        httpApi: wrapHttpLibrary(undiciRequests(this.userAgent, (call) => this.observer?.(call))),
      }),
    );
  }

  /** Closes the pooled connections (at shutdown, so the process can exit without waiting on them). */
  closeConnections(): void {
    for (const agent of this.pools.values()) void agent.destroy().catch(() => undefined);
    this.pools.clear();
  }
}

/**
 * How the API calls travel on the pooled connections. `fetch`: client-node's own HTTP library,
 * undici's WHATWG fetch (Headers, Response and web streams around every call). `request` (the
 * default): undici's request on the same dispatcher, the same HTTP with less machinery around it.
 * Side by side in one process it costs about 35-40 % less CPU per call (`make bench-client`,
 * bench/results/2026-12-02-client-cost.md), and during phase 1 the controller's CPU is taken from the
 * API server's on a busy node. It asks for no compression (fetch asks for gzip): large LISTs cross
 * the wire whole, and neither side spends CPU on gzip. `fetch` stays for that comparison.
 */
export type CallTransport = 'fetch' | 'request';

/** The `request` transport. The response body is read at once, so no body nobody reads holds a connection. */
const undiciRequests = (userAgent: string, observe: (call: ApiCall) => void): PromiseHttpLibrary => ({
  async send(context: RequestContext): Promise<ResponseContext> {
    const body = context.getBody();
    if (body !== undefined && typeof body !== 'string') throw new Error(`unsupported request body for ${context.getUrl()}`);
    const started = performance.now();
    const ended = (code: ApiCall['code']) => {
      try {
        observe({ ...describeCall(context.getHttpMethod(), context.getUrl()), code, seconds: (performance.now() - started) / 1000 });
      } catch {
        // Counting a call never fails it.
      }
    };
    let response: Dispatcher.ResponseData;
    try {
      response = await request(context.getUrl(), {
        method: context.getHttpMethod() as Dispatcher.HttpMethod,
        headers: { 'user-agent': userAgent, ...context.getHeaders() },
        body,
        signal: context.getSignal(),
        dispatcher: context.getDispatcher(),
      });
    } catch (err) {
      ended('network');
      throw err;
    }
    ended(response.statusCode);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    const data = response.body.arrayBuffer().then((b) => Buffer.from(b));
    data.catch(() => undefined); // a body that fails is reported when it is read
    return new ResponseContext(response.statusCode, headers, new SelfDecodingBody(data));
  },
});

export function loadKubeConfig(path = process.env.KUBECONFIG, callConnections = DEFAULT_CALL_CONNECTIONS): PooledKubeConfig {
  const kc = new PooledKubeConfig(callConnections);
  try {
    if (path) kc.loadFromFile(path);
    else kc.loadFromDefault(); // in-cluster service account when running as a pod
  } catch (cause) {
    throw new Error(
      `loading the kubeconfig ${path ? `from KUBECONFIG=${path}` : '(in-cluster or ~/.kube/config)'}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
  if (!kc.getCurrentCluster()) throw new Error(`the kubeconfig ${path ?? ''} names no current cluster`);
  return kc;
}

/** HTTP status of a client-node error, or undefined for a network failure. */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

export const isNotFound = (err: unknown) => statusOf(err) === 404;
export const isConflict = (err: unknown) => statusOf(err) === 409;
/**
 * 422 Invalid: also what the API server answers when a JSON Patch `test` op fails (with no detail),
 * so the caller tells a stale resourceVersion from a truly invalid patch by reading again.
 */
export const isInvalid = (err: unknown) => statusOf(err) === 422;
export const isTransient = (err: unknown) => {
  const status = statusOf(err);
  return status === undefined || status === 429 || status >= 500;
};

export function messageOf(err: unknown): string {
  const body = (err as { body?: unknown })?.body;
  if (typeof body === 'string') {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') {
    return (body as { message: string }).message;
  }
  return err instanceof Error ? err.message : String(err);
}

export interface RetryOptions {
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

const realSleep = (ms: number) => systemClock.sleep(ms);

/** Retries transient failures with doubling backoff; any other error is thrown at once. */
export async function withRetry<T>(fn: () => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const attempts = o.attempts ?? 6;
  let delay = o.baseDelayMs ?? 200;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || attempt >= attempts) throw err;
      const retryAfter = retryAfterMs(err);
      const wait = Math.min(retryAfter ?? delay, o.maxDelayMs ?? 10_000);
      o.onRetry?.(err, attempt, wait);
      await (o.sleep ?? realSleep)(wait);
      delay *= 2;
    }
  }
}

function retryAfterMs(err: unknown): number | undefined {
  const headers = (err as { headers?: Record<string, string> })?.headers;
  const value = headers?.['retry-after'];
  const seconds = value === undefined ? NaN : Number(value);
  return Number.isFinite(seconds) ? seconds * 1000 : undefined;
}
