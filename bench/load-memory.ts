// What the built controller holds once loaded, before it caches anything: the bundle as the image
// ships it (ASCII-only) against the same bundle as esbuild writes it (scripts/build.ts), each
// imported in a fresh `node --expose-gc` with the image's node flags, collected once, then read.
// The two take turns, BENCH_LOAD_ROUNDS times (default 5). Prints a table and the command.
//
// Usage: make bench-load   (node --import tsx bench/load-memory.ts)
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundleController } from '../scripts/build.js';
import { imageCommand } from '../testground/src/image.js';
import { PROJECT_DIR } from './lib/controller-process.js';

const rounds = Number(process.env.BENCH_LOAD_ROUNDS ?? '5');
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`BENCH_LOAD_ROUNDS must be an integer >= 1, got "${process.env.BENCH_LOAD_ROUNDS}"`);

// Importing the CLI does not run it (it runs only when it is node's entry point).
const PROBE = `await import(process.argv[1]); globalThis.gc(); await new Promise((r) => setTimeout(r, 500)); globalThis.gc();
const m = process.memoryUsage(); console.log(JSON.stringify({ rss: m.rss, heapTotal: m.heapTotal, external: m.external }));`;

interface Reading {
  rss: number;
  heapTotal: number;
  external: number;
}

const variants = [
  { name: 'ASCII-only (shipped)', ascii: true },
  { name: 'as esbuild writes it', ascii: false },
];
// The image's node flags and ENV, as it ships.
const image = imageCommand();
const built = [];
for (const v of variants) {
  // Under the project, so the unbundled packages (pino) resolve from its node_modules as in the image.
  const entry = await bundleController(join(PROJECT_DIR, 'bench/results/tmp', `load-${v.ascii ? 'ascii' : 'esbuild'}`), 'src/cli.ts', { ascii: v.ascii });
  built.push({ ...v, entry, readings: [] as Reading[] });
}
for (let round = 0; round < rounds; round++) {
  for (const v of round % 2 === 0 ? built : [...built].reverse()) {
    const out = execFileSync(process.execPath, [...image.nodeFlags, '--expose-gc', '--input-type=module', '-e', PROBE, pathToFileURL(v.entry).href], {
      encoding: 'utf8',
      env: { ...process.env, ...image.env },
    });
    v.readings.push(JSON.parse(out.trim().split('\n').pop()!) as Reading);
  }
}

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
const range = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return `${mib(sorted[0]!)} / ${mib(sorted[Math.floor(sorted.length / 2)]!)} / ${mib(sorted[sorted.length - 1]!)}`;
};
console.log(
  `BENCH_LOAD_ROUNDS=${rounds} make bench-load   (node ${process.version}, flags ${[...image.nodeFlags, '--expose-gc'].join(' ')}, the image's ENV ${Object.entries(
    image.env,
  )
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')})\n`,
);
console.log('| bundle | RSS min / median / max, MiB | heap total | external |');
console.log('|---|---:|---:|---:|');
for (const v of built) {
  console.log(
    `| ${v.name} | ${range(v.readings.map((r) => r.rss))} | ${range(v.readings.map((r) => r.heapTotal))} | ${range(v.readings.map((r) => r.external))} |`,
  );
}
