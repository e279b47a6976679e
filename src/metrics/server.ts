// The operations endpoint: Prometheus scrapes /metrics, the kubelet probes /healthz (liveness:
// restart when a loop is stuck) and /readyz (readiness: caches synced and the queue reachable).
import { type Clock, systemClock } from '../clock.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

export interface LoopHealth {
  /** Last time the loop showed progress. */
  lastTickAt: Date;
  /** Longer than this without a tick and the loop counts as stuck. */
  maxSilenceMs: number;
}

export interface Readiness {
  cachesSynced: boolean;
  queueReachable: boolean;
  /** Free text shown to whoever reads /readyz (e.g. the last queue error). */
  detail?: string;
}

export interface HealthReport {
  loops: Record<string, LoopHealth>;
  ready: Readiness;
}

export type OpsLogger = Pick<Logger, 'debug' | 'warn' | 'error'>;

export interface OpsServerOptions {
  /** 0 picks a free port; the one chosen is returned. */
  port: number;
  host?: string;
  registry: Registry;
  /** Read on every probe; if it throws, the probe answers 503. */
  health: () => HealthReport;
  logger: OpsLogger;
  /** The clock /healthz compares tick times with. */
  clock?: Pick<Clock, 'now'>;
}

export interface OpsServer {
  /** The port actually listened on. */
  readonly port: number;
  /** Stops listening and drops open connections (Prometheus keeps them alive). */
  close(): Promise<void>;
}

/** Rejects if the port cannot be listened on. */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const { port, host = '0.0.0.0', registry, health, logger } = options;
  const now = () => (options.clock ?? systemClock).now();

  const routes: Record<string, (res: ServerResponse) => Promise<void> | void> = {
    '/metrics': async (res) => {
      let body: string;
      try {
        body = await registry.metrics();
      } catch (err) {
        logger.error({ err }, 'collecting metrics for /metrics');
        sendJson(res, 500, { error: 'collecting metrics failed' });
        return;
      }
      send(res, 200, registry.contentType, body);
    },
    '/healthz': (res) => {
      const report = readHealth(res, '/healthz');
      if (!report) return;
      const at = now().getTime();
      const loops = Object.entries(report.loops).map(([loop, { lastTickAt, maxSilenceMs }]) => ({
        loop,
        silentForMs: at - lastTickAt.getTime(),
        maxSilenceMs,
      }));
      const stuck = loops.filter((l) => l.silentForMs > l.maxSilenceMs);
      if (stuck.length > 0) {
        logger.warn({ stuck }, `loop stuck: ${stuck.map((l) => l.loop).join(', ')}`);
        sendJson(res, 503, { status: 'stuck', stuck });
        return;
      }
      sendJson(res, 200, { status: 'ok', loops });
    },
    '/readyz': (res) => {
      const report = readHealth(res, '/readyz');
      if (!report) return;
      const { cachesSynced, queueReachable, detail } = report.ready;
      const waitingFor = [...(cachesSynced ? [] : ['cachesSynced']), ...(queueReachable ? [] : ['queueReachable'])];
      if (waitingFor.length > 0) {
        // Normal while starting up, so not a warning.
        logger.debug({ waitingFor, detail }, 'not ready');
        sendJson(res, 503, { status: 'not_ready', waitingFor, ...(detail === undefined ? {} : { detail }) });
        return;
      }
      sendJson(res, 200, { status: 'ready', ...(detail === undefined ? {} : { detail }) });
    },
  };

  function readHealth(res: ServerResponse, path: string): HealthReport | undefined {
    try {
      return health();
    } catch (err) {
      logger.error({ err }, `reading health for ${path}`);
      sendJson(res, 503, { status: 'error', error: 'reading health failed' });
      return undefined;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Only the path matters; probes and scrapers may add query strings.
    const path = new URL(req.url ?? '/', 'http://ops.invalid').pathname;
    const route = routes[path];
    if (!route) {
      sendJson(res, 404, { error: `no route ${path}` });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendJson(res, 405, { error: `${req.method ?? '?'} not allowed on ${path}` });
      return;
    }
    await route(res);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err, url: req.url }, 'serving ops request');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(new Error(`starting ops server on ${host}:${port}`, { cause: err }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger.error({ err }, 'ops server error'));

  const address = server.address() as AddressInfo;
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(new Error('closing ops server', { cause: err })) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  // HEAD: headers only; node drops a body written to a HEAD response anyway.
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body));
}

/**
 * Tracks when each control loop last made progress and feeds `HealthReport.loops`.
 * `beat` on a name never registered throws: that is a wiring mistake, caught by the first run.
 */
export class LoopHeartbeat {
  readonly #loops = new Map<string, LoopHealth>();
  readonly #now: () => Date;

  constructor(options: { clock?: Pick<Clock, 'now'> } = {}) {
    const clock = options.clock ?? systemClock;
    this.#now = () => clock.now();
  }

  /** Starts watching a loop; the silence allowance runs from now, so it has time for a first tick. */
  register(name: string, maxSilenceMs: number): void {
    if (!Number.isFinite(maxSilenceMs) || maxSilenceMs <= 0) {
      throw new Error(`registering loop ${name}: maxSilenceMs must be a positive number, got ${maxSilenceMs}`);
    }
    this.#loops.set(name, { lastTickAt: this.#now(), maxSilenceMs });
  }

  /** Stops watching a loop that stopped on purpose (e.g. this replica lost the lease). */
  unregister(name: string): void {
    this.#loops.delete(name);
  }

  beat(name: string): void {
    const loop = this.#loops.get(name);
    if (!loop) throw new Error(`heartbeat for loop ${name}, which was never registered`);
    loop.lastTickAt = this.#now();
  }

  /** A copy: later beats do not change a report already taken. */
  report(): Record<string, LoopHealth> {
    const out: Record<string, LoopHealth> = {};
    for (const [name, { lastTickAt, maxSilenceMs }] of this.#loops) out[name] = { lastTickAt, maxSilenceMs };
    return out;
  }
}
