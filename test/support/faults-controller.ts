// The controller as the fault suite runs it: a process of its own (so it can be SIGKILLed), always
// with a Slack webhook that points at a local receiver under a recognisable secret path and an AWS
// secret key that is just as recognisable, so every scenario can check that neither shows up in the
// controller's logs, errors or /metrics.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ScenarioLedger } from './faults-ledger.js';
import type { TestGround } from './ground.js';
import { spawnController, type ControllerProcess } from './process.js';

/** Receives the controller's Slack messages; fails some on purpose so its error paths run too. */
export class SlackReceiver {
  readonly token = `faultsSlackToken${randomBytes(12).toString('hex')}`;
  readonly path = `/services/TFAULTS00/BFAULTS00/${this.token}`;
  received = 0;
  refused = 0;
  wrongPath = 0;
  readonly bodies: string[] = [];
  private server?: Server;
  private port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}${this.path}`;
  }

  /** Every form in which the webhook could leak. */
  get secretForms(): string[] {
    return [this.url, encodeURIComponent(this.url), this.path, this.token];
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (req.url !== this.path) {
          this.wrongPath++;
          res.writeHead(404).end('no_service');
          return;
        }
        const n = ++this.received;
        // Slack's own failure modes: a 500 now and then, a 429 with Retry-After.
        if (n % 7 === 2) {
          this.refused++;
          res.writeHead(500).end('internal_error');
        } else if (n % 11 === 5) {
          this.refused++;
          res.writeHead(429, { 'Retry-After': '1' }).end('rate_limited');
        } else {
          this.bodies.push(body);
          res.writeHead(200).end('ok');
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Closes the listener: the controller's next posts meet a refused connection (and must not log the URL). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export interface FaultSecrets {
  slack: SlackReceiver;
  awsSecretKey: string;
  forms(): string[];
}

export async function faultSecrets(): Promise<FaultSecrets> {
  const slack = new SlackReceiver();
  await slack.start();
  const awsSecretKey = `faultsAwsSecret${randomBytes(16).toString('hex')}`;
  return { slack, awsSecretKey, forms: () => [...slack.secretForms, awsSecretKey] };
}

/** How many times any secret occurs in the texts. */
export function countLeaks(texts: Iterable<string>, forms: readonly string[]): { count: number; where: string[] } {
  let count = 0;
  const where: string[] = [];
  for (const text of texts) {
    for (const form of forms) {
      let at = text.indexOf(form);
      while (at >= 0) {
        count++;
        if (where.length < 5) where.push(text.slice(Math.max(0, at - 120), at + form.length + 40));
        at = text.indexOf(form, at + form.length);
      }
    }
  }
  return { count, where };
}

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parseMetrics(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the series of `name` whose labels include `match`. */
export function metric(text: string, name: string, match: Record<string, string> = {}): number {
  return parseMetrics(text)
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

export const M = {
  received: 'spot_orchestrator_queue_messages_received_total',
  deleted: 'spot_orchestrator_queue_messages_deleted_total',
  failed: 'spot_orchestrator_queue_messages_failed_total',
  interruptions: 'spot_orchestrator_interruptions_handled_total',
  apiErrors: 'spot_orchestrator_kube_api_errors_total',
  migrated: 'spot_orchestrator_migration_deployments_migrated_total',
};

/** A line of the controller's JSON log, in the Go original's shape (see src/log.ts). */
export interface LogLine {
  level: string;
  message: string;
  [key: string]: unknown;
}

export class FaultController {
  /** Every /metrics text scraped, kept for the secret scan. */
  readonly metricsTexts: string[] = [];
  peakRssKiB = 0;
  killed = false;

  private constructor(
    readonly p: ControllerProcess,
    readonly label: string,
  ) {}

  static async spawn(t: TestGround, secrets: FaultSecrets, env: Record<string, string>, label = 'controller'): Promise<FaultController> {
    const p = await spawnController(t, {
      ALERTS_ENABLED: 'true',
      SLACK_WEBHOOK_URL: secrets.slack.url,
      AWS_SECRET_ACCESS_KEY: secrets.awsSecretKey,
      ...env,
    });
    return new FaultController(p, label);
  }

  get pid(): number {
    return this.p.child.pid!;
  }

  get alive(): boolean {
    return this.p.child.exitCode === null && this.p.child.signalCode === null;
  }

  output(): string {
    return this.p.output();
  }

  /** The JSON log lines so far (anything else on stdout/stderr is kept in output() for the scan). */
  lines(): LogLine[] {
    const out: LogLine[] = [];
    for (const line of this.p.output().split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as LogLine);
      } catch {
        // a line cut at the moment of a SIGKILL
      }
    }
    return out;
  }

  async waitFor(text: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.p.output().includes(text)) {
      if (!this.alive) throw new Error(`${this.label} exited (code ${this.p.child.exitCode}) before logging "${text}":\n${this.p.output().slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`${this.label} did not log "${text}" within ${timeoutMs} ms:\n${this.p.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async metrics(timeoutMs = 3000): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.p.metricsPort}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    this.metricsTexts.push(text);
    return text;
  }

  async readyz(): Promise<{ status: number; body: { status?: string; waitingFor?: string[]; detail?: string } }> {
    const res = await fetch(`http://127.0.0.1:${this.p.metricsPort}/readyz`, { signal: AbortSignal.timeout(3000) });
    return { status: res.status, body: (await res.json()) as { status?: string; waitingFor?: string[]; detail?: string } };
  }

  /** VmHWM: the peak resident set of the process so far, in KiB. */
  samplePeakRss(): number {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kib = Number(status.match(/^VmHWM:\s+(\d+) kB/m)?.[1] ?? 0);
      this.peakRssKiB = Math.max(this.peakRssKiB, kib);
    } catch {
      // already gone
    }
    return this.peakRssKiB;
  }

  /** Scrapes /metrics one last time (for the secret scan), then sends the signal and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL', { scrape = true } = {}): Promise<number | null> {
    if (this.alive) {
      if (scrape) await this.metrics(1000).catch(() => undefined);
      this.samplePeakRss();
      this.killed = signal === 'SIGKILL';
      this.p.child.kill(signal);
    }
    return this.p.exited;
  }
}

/**
 * The secret scan of one scenario: every controller's output and /metrics, and the Kubernetes Events
 * of the namespaces it wrote to. Adds the count to the ledger and returns where they were found.
 */
export async function scanForSecrets(
  t: TestGround,
  ledger: ScenarioLedger,
  secrets: FaultSecrets,
  controllers: FaultController[],
  namespaces: string[],
): Promise<string[]> {
  const texts: string[] = [];
  for (const c of controllers) {
    if (c.alive) await c.metrics().catch(() => undefined);
    texts.push(c.output(), ...c.metricsTexts);
  }
  for (const namespace of [...namespaces, 'default']) {
    const events = await t.core.listNamespacedEvent({ namespace }).catch(() => ({ items: [] }));
    texts.push(JSON.stringify(events.items.map((e) => [e.reason, e.message])));
  }
  const { count, where } = countLeaks(texts, secrets.forms());
  ledger.add('leaks', count);
  for (const w of where) ledger.problem(`secret leaked: …${w}…`);
  ledger.note('slack messages received', secrets.slack.received);
  return where;
}
