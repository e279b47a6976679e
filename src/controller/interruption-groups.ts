// What people are told about an interruption, grouped. AWS sends one warning per instance, so an
// interruption of ten nodes is ten SQS messages, handled at once. Each message still runs its own
// phase 1 without waiting for the others; only the alerts are grouped: warnings that arrive within
// GROUP_WINDOW_MS of the first make one group, announced once when the window closes, and summed
// up once when the phase 2 of every member has settled.
import { type Clock, systemClock } from '../clock.js';
import type { Alerter, DeploymentOutcome, DeploymentRef, InterruptionInstance } from '../alerts/alert.js';

/** Long enough for the warnings of one reclaim (sent within a second) to arrive; short next to the two minutes. */
export const GROUP_WINDOW_MS = 2000;

export interface GroupMember {
  eventId: string;
  instances: InterruptionInstance[];
  deadline: Date;
  deployments: DeploymentRef[];
  /** Deployments the Fargate launch forecast expects late, and why. */
  expectedLate?: (DeploymentRef & { why: string })[];
}

/**
 * One member's phase 1 results: for each Deployment, its outcome once phase 2 settles. `joined`
 * marks a Deployment this member found already moved by another warning: the other member's
 * outcome is the one to report.
 */
export type MemberOutcomes = { ref: DeploymentRef; outcome: Promise<DeploymentOutcome>; joined?: boolean }[];

class Group {
  readonly eventIds: string[] = [];
  readonly instances = new Map<string, InterruptionInstance>();
  readonly deployments = new Map<string, DeploymentRef>();
  readonly expectedLate = new Map<string, DeploymentRef & { why: string }>();
  readonly outcomes = new Map<string, MemberOutcomes[number]>();
  deadline?: Date;
  open = true;
  /** Members whose phase 1 has not reported yet. */
  waiting = 0;
  summarised = false;

  constructor(readonly startedAt: Date) {}

  get eventLabel(): string {
    const [first, ...rest] = this.eventIds;
    return rest.length === 0 ? first! : `${first} (+${rest.length} more)`;
  }
}

const keyOf = (r: DeploymentRef) => `${r.namespace}/${r.name}`;

export class InterruptionGroups {
  private current?: Group;

  constructor(
    private readonly alerter: Alerter,
    private readonly clock: Pick<Clock, 'now' | 'setTimer'> = systemClock,
    private readonly windowMs = GROUP_WINDOW_MS,
  ) {}

  /**
   * Adds a warning to the open group (or opens one) and returns the callback its handler calls
   * with its phase 1 results; until then the group's summary waits for it.
   */
  join(member: GroupMember): (outcomes: MemberOutcomes) => void {
    const group = this.current?.open ? this.current : this.open();
    group.eventIds.push(member.eventId);
    for (const i of member.instances) group.instances.set(i.instanceId, i);
    for (const d of member.deployments) group.deployments.set(keyOf(d), d);
    // Each member's forecast covers every warning of the wave so far: the newest one is the whole story.
    if (member.expectedLate) {
      group.expectedLate.clear();
      for (const l of member.expectedLate) group.expectedLate.set(keyOf(l), l);
    }
    if (!group.deadline || member.deadline < group.deadline) group.deadline = member.deadline;
    group.waiting++;
    let reported = false;
    return (outcomes) => {
      if (reported) return;
      reported = true;
      // A Deployment on two warned nodes is in two members; its move is one (joined in phase 1).
      for (const o of outcomes) {
        const known = group.outcomes.get(keyOf(o.ref));
        if (!known || (known.joined && !o.joined)) group.outcomes.set(keyOf(o.ref), o);
      }
      group.waiting--;
      this.maybeSummarise(group);
    };
  }

  private open(): Group {
    const group = new Group(this.clock.now());
    this.current = group;
    this.clock.setTimer(() => this.close(group), this.windowMs);
    return group;
  }

  private close(group: Group): void {
    group.open = false;
    if (this.current === group) this.current = undefined;
    const instances = [...group.instances.values()];
    const deployments = [...group.deployments.values()];
    this.alerter.notify({ kind: 'interruption_detected', eventId: group.eventLabel, instances, deadline: group.deadline!, deployments: deployments.length });
    if (deployments.length > 0) this.alerter.notify({ kind: 'migration_started', eventId: group.eventLabel, deployments });
    this.maybeSummarise(group);
  }

  private maybeSummarise(group: Group): void {
    if (group.open || group.waiting > 0 || group.summarised) return;
    group.summarised = true;
    if (group.deployments.size === 0) return;
    const members = [...group.outcomes.values()];
    void Promise.all(members.map((m) => m.outcome.catch((err): DeploymentOutcome => ({ result: 'failed', reason: String(err), rolledBack: false })))).then(
      (outcomes) => {
        this.alerter.notify({
          kind: 'migration_summary',
          eventId: group.eventLabel,
          instances: [...group.instances.values()],
          durationMs: this.clock.now().getTime() - group.startedAt.getTime(),
          outcomes: members.map((m, i) => ({ ...m.ref, ...outcomes[i]! })),
          ...(group.expectedLate.size > 0 ? { expectedLate: [...group.expectedLate.values()] } : {}),
        });
      },
    );
  }
}
