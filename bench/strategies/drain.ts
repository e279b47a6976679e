// Cordon and drain, as aws-node-termination-handler does: the real kubectl, one
// `kubectl drain NODE --ignore-daemonsets --delete-emptydir-data --force --timeout` per warned node,
// all at once (one handler per node). Evictions respect the PodDisruptionBudgets. It starts the
// moment the warning is sent (no queue in between), which only flatters it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join, relative } from 'node:path';
import { PROJECT_DIR } from '../lib/controller-process.js';
import type { Strategy, StrategyRun } from '../lib/strategy.js';

export function drainStrategy(): Strategy {
  const children: ChildProcess[] = [];
  const exits: Promise<number | null>[] = [];
  const exitedAt: number[] = [];
  let command = '';
  return {
    name: 'drain',
    describe: 'kubectl drain --ignore-daemonsets --delete-emptydir-data --force --timeout=<window>, one per warned node, in parallel',
    patches: false,
    async act(run: StrategyRun) {
      const b = run.bench;
      const timeoutSeconds = Math.max(1, Math.ceil((run.deadline - Date.now()) / 1000));
      for (const node of run.doomed) {
        const args = [
          '--kubeconfig',
          b.ground.kubeconfig,
          'drain',
          node,
          '--ignore-daemonsets',
          '--delete-emptydir-data',
          '--force',
          `--timeout=${timeoutSeconds}s`,
        ];
        command = `kubectl ${args.slice(2).join(' ').replace(node, 'NODE')}`;
        const log = createWriteStream(join(b.workDir, `drain-${node}.log`));
        const child = spawn(b.ground.kubectl, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout!.pipe(log);
        child.stderr!.pipe(log);
        children.push(child);
        exits.push(
          new Promise((resolve) =>
            child.on('exit', (code) => {
              if (code === 0) exitedAt.push(Date.now());
              resolve(code);
            }),
          ),
        );
      }
      run.signal.addEventListener('abort', () => {
        for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
      });
      await Promise.all(exits);
    },
    async finish(run) {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      await Promise.all(exits);
      const beforeDeadline = exitedAt.filter((t) => t <= run.deadline).length;
      return {
        notes: [
          `\`${command}\`: ${beforeDeadline} of ${children.length} drains completed before the deadline; logs in ${relative(PROJECT_DIR, run.bench.workDir)}/drain-*.log`,
        ],
      };
    },
    async dispose() {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    },
  };
}
