// `make bench`: one spot interruption scenario per strategy (this controller, sequential, drain,
// none), the floor for phase 1, the detection latency and the scaling series, on the test ground
// named by TESTGROUND_FILE (default .testground/ground.json). Writes <out>/<stamp>.md, .json and
// PNG plots. Progress goes to stdout as plain lines. See bench/README-fragment.md for the summary.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { loadGround } from '../testground/src/ground.js';
import { makeBench, type Bench } from './lib/context.js';
import { buildController, PROJECT_DIR } from './lib/controller-process.js';
import { runDetection } from './lib/detection.js';
import { captureEnvironment } from './lib/environment.js';
import { type FloorResult, runFloor } from './lib/floor.js';
import { controllerIdentity } from './lib/identity.js';
import { parseOptions, USAGE, type BenchOptions } from './lib/options.js';
import { mainTable, renderReadmeFragment, renderResults, type BenchResults } from './lib/report.js';
import { runStrategy } from './lib/run-strategy.js';
import { mainSpec } from './lib/scenario.js';
import { runScalingPoint } from './lib/scaling.js';
import { controllerStrategy } from './strategies/controller.js';
import { drainStrategy } from './strategies/drain.js';
import { noneStrategy } from './strategies/none.js';
import { sequentialStrategy } from './strategies/sequential.js';
import type { Strategy } from './lib/strategy.js';

function stampOf(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

function commandLine(o: BenchOptions, argv: string[]): string {
  if (o.command) return o.command;
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_') || k === 'TESTGROUND_FILE')
    .map(([k, v]) => `${k}=${v}`);
  return [...env, 'node --import tsx bench/run.ts', ...argv].join(' ');
}

function strategyFor(name: BenchOptions['strategies'][number], entry: string | undefined): Strategy {
  switch (name) {
    case 'controller':
    case 'controller-no-triage':
      return controllerStrategy(entry, name);
    case 'sequential':
      return sequentialStrategy();
    case 'drain':
      return drainStrategy();
    case 'none':
      return noneStrategy();
  }
}

/** Ctrl-C: stop the controllers this run started and delete what it made, without waiting. */
function onInterrupt(b: Bench): void {
  let once = false;
  const handler = () => {
    if (once) process.exit(130);
    once = true;
    console.log(`\ninterrupted: stopping ${b.live.pids.size} controller(s), deleting ${b.live.namespaces.size} namespace(s) and ${b.live.nodes.size} node(s)`);
    for (const pid of b.live.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const deletions = [
      ...[...b.live.namespaces].map((name) => b.core.deleteNamespace({ name }).catch(() => undefined)),
      ...[...b.live.nodes].map((name) => b.core.deleteNode({ name }).catch(() => undefined)),
    ];
    void Promise.all(deletions).finally(() => process.exit(130));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const options = parseOptions(argv);
  const started = new Date();
  const stamp = stampOf(started);
  const ground = loadGround();
  const outDir = resolve(PROJECT_DIR, options.outDir);
  mkdirSync(outDir, { recursive: true });
  // Logs of the run: under bench/results/tmp (ignored by git), or beside the results elsewhere.
  const defaultOut = outDir === join(PROJECT_DIR, 'bench/results');
  const workDir = join(defaultOut ? join(PROJECT_DIR, 'bench/results/tmp') : outDir, `run-${stamp}-${process.pid}`);
  const b = makeBench(ground, options, workDir);
  onInterrupt(b);
  const environment = await captureEnvironment(b);
  const command = commandLine(options, argv);
  b.say(
    'bench',
    `ground ${ground.apiServer}, time scale ${ground.timeScale} (Fargate start ${(environment.fargateDelayMs / 1000).toFixed(2)} s, window ${(environment.windowMs / 1000).toFixed(2)} s wall clock)`,
  );
  b.say(
    'bench',
    `N=${options.n} K=${options.k} of ${options.nodes} nodes; strategies ${options.strategies.join(', ') || '(none)'}; floor ${options.floor ? 'yes' : 'no'}; detection ${options.detection}; scaling ${options.scaling.join(', ') || '(none)'}`,
  );
  b.say('bench', `logs of this run: ${relative(PROJECT_DIR, workDir)}`);

  const needsController =
    options.strategies.some((s) => s.startsWith('controller')) || options.detection > 0 || options.scaling.length > 0 || options.phase1N > 0;
  let entry: string | undefined;
  if (needsController && options.controllerRuntime === 'build') {
    b.say('bench', 'building the controller (scripts/build.ts, as the image)');
    entry = await buildController((line) => b.say('bench', line));
  }

  if (needsController || options.floor) {
    const identity = await controllerIdentity(b);
    b.controllerKubeconfig = identity.kubeconfig;
    environment.controllerIdentity = identity.describe;
    b.say('bench', `the controller and the floor call the API server as ${identity.describe}`);
  }

  const results: BenchResults = { stamp, command, options, environment, strategies: [], scaling: [], plots: [], errors: [], durationSeconds: 0 };
  const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
      results.errors.push(message);
      b.say('bench', `FAILED ${message}`);
      return undefined;
    }
  };

  for (const [i, name] of options.strategies.entries()) {
    b.say('bench', `strategy ${i + 1}/${options.strategies.length}: ${name}`);
    const r = await attempt(`strategy ${name}`, () => runStrategy(b, strategyFor(name, entry)));
    if (r) results.strategies.push(r);
  }
  if (options.floor) {
    const ctl = results.strategies.find((r) => r.strategy === 'controller');
    const count = ctl && ctl.patched > 0 ? ctl.patched : options.n;
    b.say('bench', `floor: ${count} patches`);
    results.floor = await attempt('floor', () => runFloor(b, count));
  }
  if (options.phase1N > 0) {
    // The controller and its floor back to back, at another N than the strategies'.
    const n = options.phase1N;
    b.say('bench', `phase 1 at N=${n}: the controller on the main scenario, observed until phase 1 is done, then the floor`);
    const spec = { ...mainSpec(b, 'p1'), deployments: n };
    const strategy = await attempt(`phase 1 at N=${n}`, () => runStrategy(b, controllerStrategy(entry), spec, { phase1Only: true }));
    if (strategy) {
      b.say('bench', `phase 1 at N=${n}: floor, ${strategy.patched} patches`);
      const count = strategy.patched > 0 ? strategy.patched : n;
      const floor = await attempt(`floor at N=${n}`, () => runFloor(b, count));
      let rolloutFloor: FloorResult | undefined;
      if (options.rolloutFloor) {
        b.say('bench', `phase 1 at N=${n}: floor with rollouts, ${count} patches to running Deployments`);
        rolloutFloor = await attempt(`floor with rollouts at N=${n}`, () => runFloor(b, count, { withRollouts: true }));
      }
      let watchedFloor: FloorResult | undefined;
      if (options.watchedFloor) {
        b.say('bench', `phase 1 at N=${n}: floor with rollouts while the controller watches, ${count} patches`);
        watchedFloor = await attempt(`watched floor at N=${n}`, () => runFloor(b, count, { withRollouts: true, watchedBy: { entry } }));
      }
      results.phase1At = { n, strategy, floor, rolloutFloor, watchedFloor };
    }
  }
  if (options.detection > 0) {
    b.say('bench', `detection latency: ${options.detection} single events`);
    results.detection = await attempt('detection', () => runDetection(b, options.detection, entry));
  }
  for (const n of options.scaling) {
    for (const namespaces of options.scalingNamespaces) {
      for (const nodeFlags of options.nodeFlags) {
        const flags = nodeFlags.flags.join(' ') || 'no node flags';
        b.say('bench', `scaling: N=${n} in ${namespaces} namespace(s), ${flags}`);
        const p = await attempt(`scaling N=${n} in ${namespaces} namespace(s) (${flags})`, () => runScalingPoint(b, n, entry, nodeFlags, namespaces));
        if (p) results.scaling.push(p);
      }
    }
  }
  results.durationSeconds = (Date.now() - started.getTime()) / 1000;

  const jsonPath = join(outDir, `${stamp}.json`);
  writeFileSync(jsonPath, JSON.stringify(results, null, 1));
  if (options.plots) {
    try {
      const installed = execFileSync('bash', [join(PROJECT_DIR, 'bench/scripts/install-matplotlib.sh')], { encoding: 'utf8' })
        .trim()
        .split('\n');
      const python = installed[installed.length - 1]!;
      const made = execFileSync(python, [join(PROJECT_DIR, 'bench/plot.py'), jsonPath, outDir], { encoding: 'utf8' }).trim();
      results.plots = made ? made.split('\n') : [];
      writeFileSync(jsonPath, JSON.stringify(results, null, 1));
    } catch (err) {
      results.errors.push(`plots: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const mdPath = join(outDir, `${stamp}.md`);
  writeFileSync(mdPath, renderResults(results));
  const fragment = renderReadmeFragment(results, relative(PROJECT_DIR, mdPath));
  // The fragment's table is one row a strategy: a run of none (phase 1 at N, scaling) has nothing for the README's table.
  if (results.strategies.length > 0) writeFileSync(join(outDir, `${stamp}-readme-fragment.md`), fragment);
  if (options.readmeFragment) {
    const fragmentPath = resolve(PROJECT_DIR, options.readmeFragment);
    writeFileSync(fragmentPath, fragment);
    b.say('bench', `README fragment: ${relative(PROJECT_DIR, fragmentPath)}`);
  }
  b.say('bench', `results: ${relative(PROJECT_DIR, mdPath)} (${results.plots.length} plots) in ${(results.durationSeconds / 60).toFixed(1)} min`);
  console.log('');
  if (results.strategies.length > 0) console.log(mainTable(results));
  return results.errors.length > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
