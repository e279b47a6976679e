// The figures of the fault suite. Each scenario (one test file, one process) appends one JSON line
// to FAULTS_LEDGER; test/faults/report.ts adds them up and prints them at the end of the run.
import { appendFileSync } from 'node:fs';
import { FAULTS_SEED, FAULTS_SHORT } from './faults-random.js';

export interface Figures {
  /** Cases tried: fuzz inputs, messages, iterations, config values… whatever the scenario varies. */
  cases: number;
  /** Faults injected: kills, restarts, outages, garbage bodies, conflicting writes, 429s, foreign events. */
  faults: number;
  /** Opted-in Deployments that the scenario put through a move and audited at the end. */
  deployments: number;
  /** Of them: not healthy on Fargate at the end (must be 0). */
  lost: number;
  /** Of them: left with a partial or repeated patch, a move still marked in flight, or a lost strategy (must be 0). */
  halfPatched: number;
  /** Deployments that did not opt in (or live in another namespace), checked unchanged at the end. */
  sentinels: number;
  /** Of them: changed by the controller (must be 0). */
  touched: number;
  /** Occurrences of the Slack webhook URL or the AWS secret key in logs, errors, metrics or Events (must be 0). */
  leaks: number;
}

export const FIGURE_KEYS = ['cases', 'faults', 'deployments', 'lost', 'halfPatched', 'sentinels', 'touched', 'leaks'] as const;
export const MUST_BE_ZERO = ['lost', 'halfPatched', 'touched', 'leaks'] as const;

export interface LedgerLine extends Figures {
  scenario: string;
  order: number;
  status: 'passed' | 'failed';
  seconds: number;
  seed: number;
  short: boolean;
  notes: Record<string, string | number>;
  problems: string[];
}

export class ScenarioLedger {
  readonly figures: Figures = { cases: 0, faults: 0, deployments: 0, lost: 0, halfPatched: 0, sentinels: 0, touched: 0, leaks: 0 };
  readonly notes: Record<string, string | number> = {};
  readonly problems: string[] = [];
  private readonly startedAt = Date.now();
  private failed = false;
  private written = false;

  constructor(
    readonly scenario: string,
    readonly order: number,
  ) {}

  add(key: keyof Figures, n = 1): void {
    this.figures[key] += n;
  }

  note(key: string, value: string | number): void {
    this.notes[key] = value;
  }

  /** Something that must be 0 was not: kept for the report (the test asserts on it too). */
  problem(text: string): void {
    if (this.problems.length < 50) this.problems.push(text);
  }

  /** Runs one test case, remembering whether it failed, so the report can say so. */
  async run(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.failed = true;
      this.problem(`failed: ${(err as Error).message?.split('\n')[0] ?? String(err)}`);
      throw err;
    }
  }

  write(): void {
    if (this.written) return;
    this.written = true;
    const path = process.env.FAULTS_LEDGER;
    const line: LedgerLine = {
      scenario: this.scenario,
      order: this.order,
      status: this.failed ? 'failed' : 'passed',
      seconds: Math.round((Date.now() - this.startedAt) / 100) / 10,
      seed: FAULTS_SEED,
      short: FAULTS_SHORT,
      notes: this.notes,
      problems: this.problems,
      ...this.figures,
    };
    const text = JSON.stringify(line);
    if (path) appendFileSync(path, `${text}\n`);
    else console.log(`# fault figures ${text}`);
  }
}
