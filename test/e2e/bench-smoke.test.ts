// The benchmark harness end to end, small (N=10, K=2 of 4 nodes, 3 detection events, one scaling
// point) on the running test ground: it must finish, and write a results file with a row per
// strategy and numbers that are numbers. No timing is asserted: benchmarks are not tests.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadGround } from '../../testground/src/ground.js';
import { BENCH_IDENTITY_NAME, BENCH_IDENTITY_NAMESPACE } from '../../bench/lib/identity.js';

const PROJECT_DIR = new URL('../..', import.meta.url).pathname;
const STRATEGIES = ['controller', 'sequential', 'drain', 'none'];

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: PROJECT_DIR, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Requests the API server has dispatched under this FlowSchema since it started. */
function dispatchedUnder(flowSchema: string): number {
  const ground = loadGround();
  const text = execFileSync(ground.kubectl, ['--kubeconfig', ground.kubeconfig, 'get', '--raw', '/metrics'], { encoding: 'utf8', maxBuffer: 256 << 20 });
  return text
    .split('\n')
    .filter((l) => l.startsWith('apiserver_flowcontrol_dispatched_requests_total{') && l.includes(`flow_schema="${flowSchema}"`))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('benchmark harness (smoke)', () => {
  it('runs every strategy, the floor, phase 1 at N against its three floors, detection and a scaling point, and writes sane results', {
    timeout: 600_000,
  }, async () => {
    mkdirSync(join(PROJECT_DIR, 'bench/results/tmp'), { recursive: true });
    const out = mkdtempSync(join(PROJECT_DIR, 'bench/results/tmp/smoke-'));
    const flowSchema = BENCH_IDENTITY_NAME;
    const before = dispatchedUnder(flowSchema);
    try {
      const { code, output } = await run(
        [
          '--n',
          '10',
          '--k',
          '2',
          '--nodes',
          '4',
          '--detection',
          '3',
          '--scaling',
          '10',
          '--phase1-n',
          '10',
          '--watched-floor',
          '1',
          '--collect-at',
          '3',
          '--controller',
          'tsx',
          '--plots',
          '1',
          '--out',
          out,
        ],
        540_000,
      );
      assert.equal(code, 0, `bench/run.ts failed:\n${output.slice(-4000)}`);
      const files = readdirSync(out);
      const json = files.find((f) => /^\d{4}-\d\d-\d\d-\d{4}\.json$/.test(f));
      const md = files.find((f) => /^\d{4}-\d\d-\d\d-\d{4}\.md$/.test(f));
      assert.ok(json && md, `results files in ${files.join(', ')}`);
      const results = JSON.parse(readFileSync(join(out, json), 'utf8'));
      const table = readFileSync(join(out, md), 'utf8');

      assert.deepEqual(
        results.strategies.map((r: { strategy: string }) => r.strategy),
        STRATEGIES,
      );
      for (const name of STRATEGIES) assert.match(table, new RegExp(`^\\| ${name} \\| \\d+ of 10 \\|`, 'm'), `a table row for ${name}`);
      assert.doesNotMatch(table, /NaN|undefined/);
      for (const r of results.strategies) {
        for (const key of ['affected', 'availableBeforeDeadlinePct', 'replicaSecondsBelowDesired', 'hitZero', 'windowSeconds', 'observedSeconds']) {
          assert.ok(isNumber(r[key]), `${r.strategy}.${key} = ${r[key]}`);
        }
        assert.ok(r.affected > 0 && r.affected <= 10, `${r.strategy}: ${r.affected} affected`);
        assert.ok(r.availableBeforeDeadlinePct >= 0 && r.availableBeforeDeadlinePct <= 100);
        assert.ok(r.replicaSecondsBelowDesired >= 0);
        assert.ok(r.timeline.deficit.length > 0);
      }
      const controller = results.strategies[0];
      assert.ok(isNumber(controller.phase1Seconds) && controller.phase1Seconds > 0, `controller phase 1 ${controller.phase1Seconds}`);
      assert.ok(isNumber(controller.controller.cpuSeconds) && controller.controller.cpuSeconds >= 0);
      assert.ok(isNumber(controller.controller.peakRssMiB) && controller.controller.peakRssMiB > 10, `peak RSS ${controller.controller.peakRssMiB}`);
      assert.equal(results.strategies[3].phase1Seconds, null, 'doing nothing patches nothing');

      assert.ok(isNumber(results.floor.seconds) && results.floor.seconds > 0);
      assert.equal(results.floor.errors, 0);
      // Phase 1 at N against both floors: paused Deployments, and running ones whose patches start rollouts.
      const p1 = results.phase1At;
      assert.ok(isNumber(p1.strategy.phase1Seconds) && p1.strategy.phase1Seconds > 0, `phase 1 at N ${p1.strategy.phase1Seconds}`);
      assert.equal(p1.floor.withRollouts, false);
      assert.equal(p1.rolloutFloor.withRollouts, true);
      // The third: rollouts again, while the controller watches their every change and acts on none.
      assert.equal(p1.watchedFloor.withRollouts, true);
      assert.ok(isNumber(p1.watchedFloor.watchingController.cpuSeconds) && p1.watchedFloor.watchingController.cpuSeconds >= 0);
      assert.ok(p1.watchedFloor.watchingController.peakRssMiB > 10, JSON.stringify(p1.watchedFloor));
      assert.equal(p1.watchedFloor.watchingController.deploymentWrites, 0, 'the watching controller wrote to no Deployment');
      assert.equal(p1.rolloutFloor.watchingController, undefined);
      for (const f of [p1.floor, p1.rolloutFloor, p1.watchedFloor]) {
        assert.ok(isNumber(f.seconds) && f.seconds > 0 && f.deployments > 0, JSON.stringify(f));
        assert.equal(f.errors, 0);
      }
      assert.match(table, /^\| \| seconds \| ÷ floor \(paused\) \| ÷ floor with rollouts \| ÷ floor with rollouts, the controller watching \|/m);
      assert.match(table, /^\| controller: warning → last patch logged \| [\d.]+ s \| [\d.]+× \|/m);
      assert.ok(isNumber(p1.strategy.controller.lastPatchLoggedSeconds) && p1.strategy.controller.lastPatchLoggedSeconds > 0);
      // The controller's own API calls in its phase 1, from its /metrics: at least a patch per Deployment it patched.
      const patchCalls = p1.strategy.controller.apiCalls.calls
        .filter((c: { verb: string; resource: string }) => c.verb === 'patch' && c.resource === 'deployments')
        .reduce((sum: number, c: { count: number }) => sum + c.count, 0);
      assert.ok(patchCalls >= p1.strategy.patched && p1.strategy.patched > 0, JSON.stringify(p1.strategy.controller.apiCalls));
      assert.match(table, /Mean latency of its Deployment patches [\d.]+ ms; the floors' floor \(paused\) [\d.]+ ms/);
      assert.match(table, /^## Phase 1 at N=10, against its floors$/m);
      assert.equal(results.detection.samples.length + results.detection.missed, 3);
      assert.ok(isNumber(results.detection.p50) && isNumber(results.detection.p95));
      assert.equal(results.scaling.length, 1);
      assert.ok(isNumber(results.scaling[0].phase1Seconds) && isNumber(results.scaling[0].peakRssMiB));
      const point = results.scaling[0];
      assert.ok(
        isNumber(point.peakRssBeforeWarningMiB) && point.peakRssBeforeWarningMiB > 10 && point.peakRssBeforeWarningMiB <= point.peakRssMiB,
        `the start-up's high-water mark ${point.peakRssBeforeWarningMiB} MiB, at most the run's ${point.peakRssMiB} MiB`,
      );
      // --collect-at: two full collections forced over the controller's inspector, memory read around them.
      assert.equal(point.collection?.atSeconds, 3, JSON.stringify(point.collection));
      assert.ok(isNumber(point.collection.rssBefore) && isNumber(point.collection.rssAfter) && point.collection.rssAfter > 10);
      assert.ok(isNumber(point.collection.after?.heapUsed) && isNumber(point.collection.after?.external), JSON.stringify(point.collection));
      assert.match(table, /^Two full collections forced at t\+3 s \(N=10\): RSS [\d.]+ → [\d.]+ MiB/m);
      assert.deepEqual(results.errors, []);
      for (const png of results.plots) assert.ok(existsSync(join(out, png)), png);
      assert.ok(results.plots.length >= 3, `plots: ${results.plots.join(', ')}`);
      assert.match(output, /\[\d\d:\d\d:\d\d\] controller +t\+/, 'progress lines while it runs');
      // The controller and the floor ran as the bench's ServiceAccount, under the shipped FlowSchema's rules.
      assert.ok(
        results.environment.controllerIdentity.startsWith(
          `ServiceAccount ${BENCH_IDENTITY_NAMESPACE}/${BENCH_IDENTITY_NAME}, matched by the shipped FlowSchema's rules`,
        ),
        results.environment.controllerIdentity,
      );
      assert.match(table, /\| the controller and the floor call the API server as \| ServiceAccount /);
      const dispatched = dispatchedUnder(flowSchema) - before;
      assert.ok(
        dispatched >= results.floor.deployments,
        `${dispatched} requests dispatched under ${flowSchema}, fewer than the floor's ${results.floor.deployments} patches`,
      );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
