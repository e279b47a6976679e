// The Grafana dashboard must only query series this controller actually exposes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createMetrics } from './metrics.js';

const dashboardUrl = new URL('../../deploy/grafana/spot-orchestrator-dashboard.json', import.meta.url);
const dashboard = JSON.parse(readFileSync(dashboardUrl, 'utf8')) as Record<string, unknown>;

/** Every value of `key` anywhere in the JSON tree. */
function collect(node: unknown, key: string, out: unknown[] = []): unknown[] {
  if (Array.isArray(node)) for (const item of node) collect(item, key, out);
  else if (typeof node === 'object' && node !== null) {
    for (const [k, v] of Object.entries(node)) {
      if (k === key) out.push(v);
      collect(v, key, out);
    }
  }
  return out;
}

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects: identifiers left once strings, label matchers,
 * range/subquery brackets, grouping clauses and function calls are taken out.
 */
function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\boffset\s+-?[0-9a-z]+/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = match[0];
    const next = stripped.slice((match.index ?? 0) + word.length).trimStart();
    if (next.startsWith('(') || PROMQL_WORDS.has(word.toLowerCase())) continue;
    names.push(word);
  }
  return names;
}

/** Series names the registry exposes: a histogram `h` exposes `h_bucket`, `h_sum` and `h_count`. */
async function exposedSeries(): Promise<Set<string>> {
  const { registry } = createMetrics();
  const series = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    // prom-client types `type` as a numeric enum, but at run time it is the string ('counter', ...).
    const type = String(m.type);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) series.add(m.name + suffix);
    else if (type === 'summary') for (const suffix of ['', '_sum', '_count']) series.add(m.name + suffix);
    else series.add(m.name);
  }
  return series;
}

describe('metricNamesIn', () => {
  it('finds selectors and skips functions, labels, ranges and grouping', () => {
    assert.deepEqual(metricNamesIn('histogram_quantile(0.95, sum by (le) (rate(a_seconds_bucket{job="x"}[$__rate_interval])))'), ['a_seconds_bucket']);
    assert.deepEqual(metricNamesIn('topk(10, max by (namespace, deployment) (b)) / on (ns) group_left c offset 5m'), ['b', 'c']);
  });
});

describe('Grafana dashboard', () => {
  const exprs = collect(dashboard, 'expr');

  it('is a schemaVersion 39 dashboard importing its Prometheus data source as ${DS_PROMETHEUS}', () => {
    assert.equal(dashboard.schemaVersion, 39);
    assert.deepEqual(
      (dashboard.__inputs as Array<{ name: string; pluginId: string }>).map(({ name, pluginId }) => ({ name, pluginId })),
      [{ name: 'DS_PROMETHEUS', pluginId: 'prometheus' }],
    );
    const sources = collect(dashboard.panels, 'datasource') as Array<{ type: string; uid: string }>;
    assert.ok(sources.length > 0);
    for (const source of sources) assert.deepEqual(source, { type: 'prometheus', uid: '${DS_PROMETHEUS}' });
  });

  it('gives every panel a unique id', () => {
    const ids = (dashboard.panels as Array<{ id: number }>).map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('queries only series the registry exposes', async () => {
    const series = await exposedSeries();
    assert.ok(exprs.length >= 10, `found ${exprs.length} queries`);
    for (const expr of exprs) {
      assert.equal(typeof expr, 'string');
      const names = metricNamesIn(expr as string);
      assert.ok(names.length > 0, `no metric in ${expr}`);
      for (const name of names) assert.ok(series.has(name), `${name} (in ${expr}) is not exposed`);
    }
  });

  it('shows every controller metric somewhere', async () => {
    const used = new Set(exprs.flatMap((e) => metricNamesIn(e as string)).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    const { registry } = createMetrics();
    const ours = (await registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => !/^spot_orchestrator_(process|nodejs)_/.test(n));
    assert.deepEqual(
      ours.filter((n) => !used.has(n)),
      [],
    );
  });
});
