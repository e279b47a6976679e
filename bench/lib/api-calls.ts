// The controller's Kubernetes API calls, from its own /metrics (kube_api_requests_total and
// kube_api_request_duration_seconds): read before the warning and at the end of the observation, the
// difference says which calls the event cost and how long the API server took with each kind.
import { readMetricsText } from './controller-process.js';

export interface ApiCallCount {
  verb: string;
  resource: string;
  code: string;
  count: number;
}

export interface ApiCallLatency {
  verb: string;
  resource: string;
  count: number;
  meanMs: number;
}

export interface ApiCalls {
  calls: ApiCallCount[];
  latency: ApiCallLatency[];
}

export interface Reading {
  counts: Map<string, number>;
  sums: Map<string, number>;
  observations: Map<string, number>;
}

const LABELS = /(\w+)="([^"]*)"/g;

function labelsOf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(LABELS)) out[m[1]!] = m[2]!;
  return out;
}

/** The counters in a /metrics text, keyed `verb resource code` and `verb resource`. */
export function readApiCalls(text: string): Reading {
  const r: Reading = { counts: new Map(), sums: new Map(), observations: new Map() };
  for (const line of text.split('\n')) {
    const m = /^spot_orchestrator_kube_api_(requests_total|request_duration_seconds_sum|request_duration_seconds_count)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const l = labelsOf(m[2]!);
    const value = Number(m[3]);
    if (m[1] === 'requests_total') r.counts.set(`${l.verb} ${l.resource} ${l.code}`, value);
    else (m[1] === 'request_duration_seconds_sum' ? r.sums : r.observations).set(`${l.verb} ${l.resource}`, value);
  }
  return r;
}

/** What happened between two readings: the calls by kind and outcome, most first, and each kind's mean latency. */
export function apiCallsBetween(before: Reading, after: Reading): ApiCalls {
  const calls: ApiCallCount[] = [];
  for (const [key, value] of after.counts) {
    const count = value - (before.counts.get(key) ?? 0);
    if (count <= 0) continue;
    const [verb, resource, code] = key.split(' ') as [string, string, string];
    calls.push({ verb, resource, code, count });
  }
  const latency: ApiCallLatency[] = [];
  for (const [key, value] of after.observations) {
    const count = value - (before.observations.get(key) ?? 0);
    if (count <= 0) continue;
    const seconds = after.sums.get(key)! - (before.sums.get(key) ?? 0);
    const [verb, resource] = key.split(' ') as [string, string];
    latency.push({ verb, resource, count, meanMs: Math.round((seconds / count) * 10000) / 10 });
  }
  calls.sort((a, b) => b.count - a.count);
  latency.sort((a, b) => b.count - a.count);
  return { calls, latency };
}

/** One reading of the controller's /metrics; null when it does not answer. */
export async function sampleApiCalls(metricsPort: number): Promise<Reading | null> {
  const text = await readMetricsText(metricsPort);
  return text === null ? null : readApiCalls(text);
}
