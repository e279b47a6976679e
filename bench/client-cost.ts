// `make bench-client`: what an API call costs the controller's own process, for each way the kube
// client can carry it (CallTransport in src/kube/api.ts), measured side by side in one process on
// the running test ground. Phase 1 runs on a machine the API server needs too, so every CPU
// millisecond the client spends per patch is one the API server does not get.
//
// Each round patches every Deployment once (a merge patch of one annotation, answered with the whole
// Deployment, as phase 1's patches are) and reads it once, MAX in flight, first with one transport,
// then with the other; the order alternates between rounds (ABBA) so a drifting machine favours
// neither. The Deployments have no replicas, so no patch starts any work on the ground.
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { AppsV1Api, CoreV1Api, type V1Deployment } from '@kubernetes/client-node';
import { type CallTransport, MERGE_PATCH, PooledKubeConfig } from '../src/kube/api.js';
import { kubeConfigFrom, loadGround } from '../testground/src/ground.js';
import { mapLimit, retrying, shortId } from './lib/context.js';
import { appName } from './lib/scenario.js';
import { percentile, round } from './lib/stats.js';

const TRANSPORTS: readonly CallTransport[] = ['fetch', 'request'];

interface Settings {
  deployments: number;
  rounds: number;
  inFlight: number;
}

function settingsFromEnv(env = process.env): Settings {
  const whole = (name: string, fallback: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: got ${JSON.stringify(raw)}; expected a whole number >= 1`);
    return n;
  };
  return { deployments: whole('BENCH_CLIENT_N', 300), rounds: whole('BENCH_CLIENT_ROUNDS', 8), inFlight: whole('BENCH_CLIENT_IN_FLIGHT', 50) };
}

interface RoundResult {
  transport: CallTransport;
  calls: number;
  cpuMicrosPerCall: number;
  callsPerSecond: number;
  latencyP50Ms: number;
}

function deployment(name: string): V1Deployment {
  const labels = { app: name };
  return {
    metadata: { name, labels },
    spec: {
      replicas: 0,
      paused: true,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] } },
    },
  };
}

async function measureRound(kc: PooledKubeConfig, namespace: string, names: string[], settings: Settings, round: number): Promise<RoundResult> {
  const apps = kc.makeApiClient(AppsV1Api);
  const latencies: number[] = [];
  const cpu = process.cpuUsage();
  const started = performance.now();
  await mapLimit(names, settings.inFlight, async (name) => {
    const t = performance.now();
    const body = { metadata: { annotations: { 'bench.spot-fargate.io/round': `${round}-${kc.transport}` } } };
    await apps.patchNamespacedDeployment({ name, namespace, body }, MERGE_PATCH);
    await apps.readNamespacedDeployment({ name, namespace });
    latencies.push(performance.now() - t);
  });
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const calls = names.length * 2;
  return {
    transport: kc.transport,
    calls,
    cpuMicrosPerCall: round1((used.user + used.system) / calls),
    callsPerSecond: round1(calls / seconds),
    latencyP50Ms: round1(percentile(latencies, 50) / 2),
  };
}

const round1 = (n: number) => round(n, 1);

function clientFor(kubeconfig: string, transport: CallTransport, inFlight: number): PooledKubeConfig {
  const kc = new PooledKubeConfig(inFlight + 16, transport);
  kc.loadFromFile(kubeconfig);
  return kc;
}

function summary(results: RoundResult[]): string {
  const lines = ['| transport | rounds | CPU per call, median (range) | calls/s, median (range) | latency p50, median |', '|---|---|---|---|---|'];
  for (const transport of TRANSPORTS) {
    const mine = results.filter((r) => r.transport === transport);
    const cpu = mine.map((r) => r.cpuMicrosPerCall);
    const rate = mine.map((r) => r.callsPerSecond);
    lines.push(
      `| ${transport} | ${mine.length} | ${round1(percentile(cpu, 50))} µs (${Math.min(...cpu)}–${Math.max(...cpu)}) | ${round1(percentile(rate, 50))} (${Math.min(...rate)}–${Math.max(...rate)}) | ${round1(
        percentile(
          mine.map((r) => r.latencyP50Ms),
          50,
        ),
      )} ms |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const settings = settingsFromEnv();
  const ground = loadGround();
  const vars = Object.keys(process.env)
    .filter((k) => k.startsWith('BENCH_CLIENT_'))
    .sort();
  const command = ['make bench-client', ...vars.map((k) => `${k}=${process.env[k]}`)].join(' ');
  const admin = kubeConfigFrom(ground.kubeconfig);
  const core = admin.makeApiClient(CoreV1Api);
  const apps = admin.makeApiClient(AppsV1Api);
  const namespace = `client-cost-${shortId()}`;
  const clients = new Map(TRANSPORTS.map((t) => [t, clientFor(ground.kubeconfig, t, settings.inFlight)]));
  try {
    await retrying(() => core.createNamespace({ body: { metadata: { name: namespace } } }));
    const names = Array.from({ length: settings.deployments }, (_, i) => appName(i));
    await mapLimit(names, 20, (name) => retrying(() => apps.createNamespacedDeployment({ namespace, body: deployment(name) })));
    console.log(
      `${names.length} Deployments in ${namespace}; ${settings.rounds} rounds of ${names.length * 2} calls per transport, ${settings.inFlight} in flight`,
    );
    // A warm-up round each, not counted: connections opened, code compiled.
    for (const t of TRANSPORTS) await measureRound(clients.get(t)!, namespace, names, settings, 0);
    const results: RoundResult[] = [];
    for (let r = 1; r <= settings.rounds; r++) {
      const order = r % 2 === 1 ? TRANSPORTS : [...TRANSPORTS].reverse();
      for (const t of order) {
        const result = await measureRound(clients.get(t)!, namespace, names, settings, r);
        results.push(result);
        console.log(`round ${r} ${t.padEnd(7)} ${result.cpuMicrosPerCall} µs CPU/call, ${result.callsPerSecond} calls/s, p50 ${result.latencyP50Ms} ms`);
      }
    }
    const table = summary(results);
    const stamp = new Date().toISOString().slice(0, 19).replace('T', '-').replaceAll(':', '');
    const page = `bench/results/${stamp}-client-cost.md`;
    const text = [
      `# Kube client cost per call, ${stamp}`,
      '',
      `Command: \`${command}\` (on a running ground; ${ground.apiServer}), host ${hostname()}, Node.js ${process.version}.`,
      '',
      `Each round: ${names.length} merge patches and ${names.length} reads, ${settings.inFlight} in flight, one transport; the two take turns (ABBA) over ${settings.rounds} rounds each. CPU is this process's user + system time over the round, divided by its calls; latency is half the median time of a patch and its read.`,
      '',
      table,
      '',
      '| round | transport | CPU per call | calls/s | latency p50 |',
      '|---|---|---|---|---|',
      ...results.map((r, i) => `| ${Math.floor(i / 2) + 1} | ${r.transport} | ${r.cpuMicrosPerCall} µs | ${r.callsPerSecond} | ${r.latencyP50Ms} ms |`),
      '',
    ].join('\n');
    writeFileSync(page, text);
    console.log(`\n${table}\n\ncommand: ${command}\nwritten: ${page}`);
  } finally {
    for (const kc of clients.values()) kc.closeConnections();
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    admin.closeConnections();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  // exitCode, not exit(): the message is flushed and the connections main's finally closed finish closing.
  process.exitCode = 1;
});
