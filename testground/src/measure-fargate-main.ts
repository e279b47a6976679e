// What launching Fargate pods costs the ground: creates one Deployment of N Fargate pods on the
// running ground, waits until all are Ready, holds them, deletes them and waits until their Fargate
// nodes are gone. Per phase it reports the API server's requests (from its /metrics) and the CPU
// time of every ground process (from /proc), so a change to the simulator is compared by a figure
// anyone can rerun:
//
//   node --import tsx testground/src/measure-fargate-main.ts [pods=300] [hold seconds=30]
//
// It reads the ground from TESTGROUND_FILE (default .testground/ground.json), like the tests.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DEFAULT_GROUND_FILE, groundClients, loadGround } from './ground.js';

const pods = Number(process.argv[2] ?? 300);
const holdSeconds = Number(process.argv[3] ?? 30);
if (!Number.isInteger(pods) || pods < 1 || !Number.isFinite(holdSeconds) || holdSeconds < 0) {
  console.error('usage: measure-fargate-main.ts [pods >= 1] [hold seconds >= 0]');
  process.exit(2);
}

const groundFile = process.env.TESTGROUND_FILE ?? DEFAULT_GROUND_FILE;
const ground = loadGround(groundFile);
const { core, apps } = groundClients(ground.kubeconfig);
const pidDir = join(dirname(groundFile), 'pids');
const CLOCK_TICKS = 100; // USER_HZ on Linux

type Counts = Map<string, number>;

function requestCounts(): Counts {
  const text = execFileSync(ground.kubectl, ['--kubeconfig', ground.kubeconfig, 'get', '--raw', '/metrics'], { encoding: 'utf8', maxBuffer: 256 << 20 });
  const counts: Counts = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    const k = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    counts.set(k, (counts.get(k) ?? 0) + value);
  }
  return counts;
}

function cpuSeconds(): Map<string, number> {
  const out = new Map<string, number>();
  for (const file of readdirSync(pidDir)) {
    const pid = readFileSync(join(pidDir, file), 'utf8').trim();
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(file.replace(/\.pid$/, ''), (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS);
    } catch {
      // a process that is gone counts nothing
    }
  }
  return out;
}

interface Sample {
  at: number;
  requests: Counts;
  cpu: Map<string, number>;
}

const sample = (): Sample => ({ at: Date.now(), requests: requestCounts(), cpu: cpuSeconds() });

const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY']);

function report(phase: string, from: Sample, to: Sample) {
  const diff = [...to.requests].map(([k, v]) => [k, v - (from.requests.get(k) ?? 0)] as const).filter(([, v]) => v > 0);
  const writes = diff.filter(([k]) => WRITE_VERBS.has(k.split(' ')[0]!)).reduce((s, [, v]) => s + v, 0);
  const all = diff.reduce((s, [, v]) => s + v, 0);
  const cpu = [...to.cpu].map(([k, v]) => [k, v - (from.cpu.get(k) ?? 0)] as const);
  const cpuTotal = cpu.reduce((s, [, v]) => s + v, 0);
  const seconds = (to.at - from.at) / 1000;
  console.log(`\n== ${phase}: ${seconds.toFixed(1)} s`);
  console.log(
    `API requests: ${all} (${(all / pods).toFixed(2)} per pod), writes ${writes} (${(writes / pods).toFixed(2)} per pod, ${(writes / seconds).toFixed(1)}/s)`,
  );
  console.log(
    `  top writes: ${diff
      .filter(([k]) => WRITE_VERBS.has(k.split(' ')[0]!))
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  console.log(
    `ground CPU: ${cpuTotal.toFixed(1)} s (${((cpuTotal / pods) * 1000).toFixed(1)} ms per pod, ${((cpuTotal / seconds) * 100).toFixed(0)} % of one core): ${cpu
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(', ')}`,
  );
  return { writes, all, cpuTotal, seconds };
}

const isReady = (p: { status?: { conditions?: { type: string; status: string }[] } }) =>
  p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const namespace = `measure-${Date.now().toString(36)}`;
await core.createNamespace({ body: { metadata: { name: namespace } } });
console.log(`ground time scale ${ground.timeScale}; ${pods} Fargate pods in namespace ${namespace}, hold ${holdSeconds} s`);
const start = sample();
await apps.createNamespacedDeployment({
  namespace,
  body: {
    metadata: { name: 'load', namespace },
    spec: {
      replicas: pods,
      selector: { matchLabels: { app: 'load' } },
      template: {
        metadata: { labels: { app: 'load', 'compute-type': 'fargate' } },
        spec: { containers: [{ name: 'app', image: 'registry.example/app:1.0' }] },
      },
    },
  },
});
const readyAt = new Map<string, number>();
const createdAt = new Map<string, number>();
for (;;) {
  const list = (await core.listNamespacedPod({ namespace })).items;
  for (const p of list) {
    const name = p.metadata!.name!;
    if (p.metadata?.creationTimestamp) createdAt.set(name, new Date(p.metadata.creationTimestamp).getTime());
    if (isReady(p) && !readyAt.has(name)) readyAt.set(name, Date.now());
  }
  if (readyAt.size >= pods) break;
  await sleep(1000);
}
const launched = sample();
const launch = report('launch (create until all Ready)', start, launched);
const startTimes = [...readyAt].map(([n, t]) => (t - (createdAt.get(n) ?? start.at)) / 1000).sort((a, b) => a - b);
const pct = (q: number) => startTimes[Math.min(startTimes.length - 1, Math.floor(q * startTimes.length))]!.toFixed(1);
console.log(`creation to Ready (s, polled each 1 s): p0 ${pct(0)}, p50 ${pct(0.5)}, p90 ${pct(0.9)}, p100 ${pct(1)}`);

await sleep(holdSeconds * 1000);
const held = sample();
const hold = report(`hold (${holdSeconds} s with all pods Ready)`, launched, held);

const nodesOf = async () =>
  (await core.listNode({ labelSelector: 'eks.amazonaws.com/compute-type=fargate' })).items.filter((n) =>
    n.metadata?.annotations?.['testground.spot-fargate.io/pod']?.startsWith(`${namespace}/`),
  );
const fargateNodes = (await nodesOf()).length;
await core.deleteNamespace({ name: namespace });
for (;;) {
  const left = await core.listNamespacedPod({ namespace }).catch(() => ({ items: [] }));
  if (left.items.length === 0 && (await nodesOf()).length === 0) break;
  await sleep(1000);
}
const done = sample();
const teardown = report('teardown (delete until pods and their Fargate nodes are gone)', held, done);
const total = report('total', start, done);
console.log(
  `\nsummary: pods ${pods}, Fargate nodes at hold ${fargateNodes}, launch ${launch.seconds.toFixed(1)} s, ` +
    `writes per pod: launch ${(launch.writes / pods).toFixed(2)}, hold ${(hold.writes / pods / Math.max(hold.seconds, 1)).toFixed(3)}/s, teardown ${(teardown.writes / pods).toFixed(2)}; ` +
    `ground CPU per pod: ${((total.cpuTotal / pods) * 1000).toFixed(0)} ms`,
);
