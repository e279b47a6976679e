// The order of phase 1 when not everything can make it. AWS throttles Fargate launches, so under a
// large interruption the Deployments patched first are the ones that come up before the deadline.
// What is at stake decides the order:
//   1. a Deployment whose Ready replicas are all on the doomed nodes, since it would hit zero;
//   2. then one behind a Service, whose users see the errors;
//   3. then higher pod priority (the spot-orchestrator/priority annotation, else the pods' priority
//      from their PriorityClass);
//   4. then fewer replicas, which keeps more Deployments whole for the same launches.
// Late Deployments are still moved, last: their old pods serve until the instance dies.

export interface Stakes {
  key: string;
  /** Desired replicas: the launches its move needs. */
  replicas: number;
  /** Ready replicas anywhere. */
  ready: number;
  /** Ready replicas on the nodes under the warning. */
  readyOnDoomed: number;
  behindService: boolean;
  priority: number;
}

export type StakeReason = 'would-hit-zero' | 'behind-service' | 'other';

export function stakeReason(s: Stakes): StakeReason {
  if (s.readyOnDoomed >= s.ready) return 'would-hit-zero';
  return s.behindService ? 'behind-service' : 'other';
}

const TIER: Record<StakeReason, number> = { 'would-hit-zero': 0, 'behind-service': 1, other: 2 };

/** Negative when `a` has more at stake than `b`; the key breaks ties so the order is stable. */
export function compareStakes(a: Stakes, b: Stakes): number {
  return TIER[stakeReason(a)] - TIER[stakeReason(b)] || b.priority - a.priority || a.replicas - b.replicas || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

/** The Deployments in the order phase 1 patches them. */
export function triageOrder<T extends Stakes>(stakes: readonly T[]): T[] {
  return [...stakes].sort(compareStakes);
}

/**
 * Phase 1's bounded concurrency, shared by every warning handled at once. AWS sends one warning per
 * instance, so an interruption of ten nodes is ten messages handled side by side: a slot that frees
 * goes to the waiting patch with the most at stake, whichever message it came from, not to the
 * message that happened to be read first. With triage off, slots go in the order asked.
 */
export class StakeQueue {
  private running = 0;
  private seq = 0;
  private readonly waiting: { stakes: Stakes; seq: number; start: () => void }[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly byStakes: boolean,
  ) {}

  run<T>(stakes: Stakes, task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.running++;
        task()
          .then(resolve, reject)
          .finally(() => {
            this.running--;
            this.next();
          });
      };
      // Kept in start order, so a freed slot takes the head: no scan per patch on phase 1's hot path.
      const entry = { stakes, seq: this.seq++, start };
      let lo = 0;
      let hi = this.waiting.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.before(this.waiting[mid]!, entry)) lo = mid + 1;
        else hi = mid;
      }
      this.waiting.splice(lo, 0, entry);
      this.next();
    });
  }

  private before(a: { stakes: Stakes; seq: number }, b: { stakes: Stakes; seq: number }): boolean {
    const byStakes = this.byStakes ? compareStakes(a.stakes, b.stakes) : 0;
    return (byStakes || a.seq - b.seq) < 0;
  }

  private next(): void {
    while (this.running < this.concurrency && this.waiting.length > 0) this.waiting.shift()!.start();
  }
}
