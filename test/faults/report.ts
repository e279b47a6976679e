// Adds up the figures the fault scenarios wrote to FAULTS_LEDGER and prints them. Exits 1 when a
// must-be-zero figure is not zero, when a scenario failed, or when one never reported.
//   node --import tsx test/faults/report.ts <ledger.jsonl> [total seconds]
import { existsSync, readFileSync } from 'node:fs';
import { FIGURE_KEYS, MUST_BE_ZERO, type Figures, type LedgerLine } from '../support/faults-ledger.js';

const [path, totalSeconds] = process.argv.slice(2);
if (!path) {
  console.error('usage: report.ts <ledger.jsonl> [total seconds]');
  process.exit(2);
}
const lines: LedgerLine[] = existsSync(path)
  ? readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LedgerLine)
      .sort((a, b) => a.order - b.order)
  : [];
const EXPECTED = 6;
const short = lines.some((l) => l.short);
const total = Object.fromEntries(FIGURE_KEYS.map((k) => [k, lines.reduce((n, l) => n + l[k], 0)])) as unknown as Figures;

const rows = [
  ['scenario', 'status', 'cases', 'faults', 'Deployments', 'lost', 'half-patched', 'not opted in', 'touched', 'leaks', 'time'],
  ...lines.map((l) => [l.scenario, l.status, ...FIGURE_KEYS.map((k) => String(l[k])), `${Math.round(l.seconds)} s`]),
  ['total', '', ...FIGURE_KEYS.map((k) => String(total[k])), totalSeconds ? `${totalSeconds} s` : ''],
];
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const format = (r: string[]) => r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');

console.log('');
console.log(`fault suite (${short ? 'short: FAULTS_SHORT=1' : 'full'}), seed ${lines[0]?.seed ?? '?'} (replay with FAULTS_SEED=${lines[0]?.seed ?? '?'})`);
console.log(format(rows[0]!));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows.slice(1, -1)) console.log(format(r));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
console.log(format(rows.at(-1)!));
console.log('');
for (const l of lines) {
  const notes = Object.entries(l.notes).filter(([k]) => k !== 'peakRssMiB');
  if (notes.length === 0) continue;
  console.log(`${l.scenario}:`);
  for (const [k, v] of notes) console.log(`  ${k}: ${v}`);
}
const peak = lines.find((l) => typeof l.notes.peakRssMiB === 'number')?.notes.peakRssMiB;

console.log('');
console.log(`cases tried:        ${total.cases}`);
console.log(`faults injected:    ${total.faults}`);
console.log(`Deployments lost:   ${total.lost} of ${total.deployments} (must be 0)`);
console.log(`half-patched:       ${total.halfPatched} of ${total.deployments} (must be 0)`);
console.log(`not opted in, yet touched: ${total.touched} of ${total.sentinels} checked (must be 0)`);
console.log(`secrets in logs, errors, metrics, Events: ${total.leaks} (must be 0)`);
if (peak !== undefined) console.log(`controller peak RSS under load: ${peak} MiB`);
if (totalSeconds) console.log(`time: ${totalSeconds} s`);

const failures: string[] = [];
for (const k of MUST_BE_ZERO) if (total[k] > 0) failures.push(`${k} = ${total[k]}`);
for (const l of lines) if (l.status === 'failed') failures.push(`${l.scenario} failed`);
for (const l of lines) for (const p of l.problems) console.log(`  problem in ${l.scenario}: ${p}`);
if (lines.length < EXPECTED) failures.push(`${EXPECTED - lines.length} scenario(s) never reported (crashed before the end?)`);
if (failures.length > 0) {
  console.log(`\nFAULT SUITE FAILED: ${failures.join('; ')}`);
  process.exit(1);
}
console.log('\nfault suite passed');
