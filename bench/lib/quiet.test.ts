import assert from 'node:assert/strict';
import test from 'node:test';
import { awaitQuietMachine, idleShare, parseProcStat } from './quiet.js';

// user nice system idle iowait irq softirq steal guest guest_nice
const stat = (busy: number, idle: number) => `cpu  ${busy} 0 0 ${idle} 0 0 0 0 7 7\ncpu0 1 2 3 4 5 6 7 8 0 0\nintr 1\n`;

test('the machine-wide line: idle and iowait are idle, guest time is not counted twice', () => {
  assert.deepEqual(parseProcStat('cpu  10 1 2 100 5 1 1 0 4 0\ncpu0 9 9 9 9 9 9 9 9 9 9\n'), { idle: 105, total: 120 });
  assert.throws(() => parseProcStat('cpu0 1 2 3 4\n'), /no "cpu " line/);
  assert.throws(() => parseProcStat('cpu  1 x 3 4\n'), /unreadable/);
});

test('idle share between two readings', () => {
  assert.equal(idleShare({ idle: 100, total: 200 }, { idle: 190, total: 300 }), 0.9);
  assert.equal(idleShare({ idle: 5, total: 10 }, { idle: 5, total: 10 }), 1);
});

/** A /proc/stat that advances 100 jiffies per read, `busy` of them busy, from a script of shares. */
function machine(busyPerSecond: number[]) {
  let busy = 0;
  let idle = 0;
  let i = 0;
  return async () => {
    const b = busyPerSecond[Math.min(i, busyPerSecond.length - 1)]!;
    if (i > 0) {
      busy += b;
      idle += 100 - b;
    }
    i++;
    return stat(busy, idle);
  };
}

test('waits until the machine has been quiet for the seconds asked, in a row', async () => {
  const lines: string[] = [];
  // Reading 0 is the baseline; then busy 60, 5, 50 (the run restarts), 5, 5, 5, 5, 5, 5.
  const q = await awaitQuietMachine((l) => lines.push(l), { read: machine([0, 60, 5, 50, 5, 5, 5, 5, 5, 5, 5]), wait: async () => {} });
  assert.deepEqual(q, { waitedSeconds: 6, idlePct: 95, quiet: true });
  assert.match(lines.join('\n'), /waiting for a quiet machine .*\nquiet after 6 s \(95 % idle\)/);
});

test('gives up after the longest wait and says the measurement ran on a busy machine', async () => {
  const lines: string[] = [];
  const q = await awaitQuietMachine((l) => lines.push(l), { read: machine([0, 40]), wait: async () => {}, maxWaitMs: 10_000 });
  assert.deepEqual(q, { waitedSeconds: 10, idlePct: 60, quiet: false });
  assert.match(lines.at(-1)!, /did not become quiet in 10 s \(60 % idle\); measuring anyway, marked busy/);
});
