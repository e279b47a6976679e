// The sweep over the Node cache that acts on what the node marks say is due, so it needs no message and
// survives a restart: a scheduled change whose lead time has come gets phase 1 (the handler's), and a
// sealed node still Ready well after its deadline gets its seal taken back. It runs when acting starts,
// every check_interval, at the moment the next scheduled change comes due, and when the handler has
// just noted one. It also removes rebalance recommendation marks older than migration.rebalance_mark_ttl,
// so one recommendation that no warning followed does not keep recovery off the node for its whole life.
import type { Clock, Timer } from '../clock.js';
import type { ControllerContext } from '../moves/context.js';
import type { HandleResult } from './interruption-handler.js';
import { NODE_ANNOTATIONS } from '../state/annotations.js';
import { NodeMarker } from './node-marker.js';
import { type DueChange, dueScheduledChanges, planRebalanceExpiry, planUnseal, rebalanceMarkExpired, survivors } from './node-marks.js';
import { scopeKey } from '../config/scope.js';

export interface ScheduledChangeMover {
  moveScheduledChange(change: DueChange): Promise<HandleResult>;
}

export class ScheduledChanges {
  private timer?: Timer;
  private running?: Promise<void>;
  private again = false;
  private stopped = true;
  private readonly marker: NodeMarker;
  private readonly clock: Clock;
  private readonly moved = new Set<string>();

  constructor(
    private readonly ctx: ControllerContext,
    private readonly mover: ScheduledChangeMover,
  ) {
    this.marker = new NodeMarker(ctx);
    this.clock = ctx.clock;
  }

  start(): void {
    this.stopped = false;
    this.wake();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** Sweeps now, or right after the sweep in progress (which may have read the nodes too early). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.timer?.cancel();
    this.running = this.sweep()
      .catch((err) => this.ctx.log.error({ err: String(err) }, 'node sweep failed; trying again at the next one'))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  /** Resolves when the sweep in progress (if any) is done: for tests and an orderly stop. */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async sweep(): Promise<void> {
    const { config, view, log } = this.ctx;
    const now = this.clock.now();
    const nodes = view.listNodes();
    const { due: found, nextAt } = dueScheduledChanges(nodes, now, config.migration.scheduled_change_lead, scopeKey(config.kubernetes));
    // The node cache can lag behind this process's own done mark by a watch event.
    const due = found.filter((change) => change.nodes.some((n) => !this.moved.has(movedKey(n.node.metadata!.name!, change.startTime))));
    for (const change of due) {
      if (this.stopped) return;
      log.info(
        { eventId: change.eventId, startTime: change.startTime.toISOString(), nodes: change.nodes.map((n) => n.node.metadata!.name) },
        'scheduled change: the lead time has come; moving its Deployments',
      );
      const result = await this.mover.moveScheduledChange(change);
      // The node's done mark is the record; without it (a transient failure) the next sweep tries again.
      if (result.ack) for (const n of change.nodes) this.moved.add(movedKey(n.node.metadata!.name!, change.startTime));
      else log.warn({ eventId: change.eventId }, 'scheduled change: phase 1 not done; trying again at the next sweep');
    }
    for (const node of survivors(nodes, now, config.migration.survivor_grace)) {
      if (this.stopped) return;
      const name = node.metadata!.name!;
      const ok = await this.marker.write(node, (n) => planUnseal(n, this.clock.now()), 'take the seal back from a node that survived');
      if (!ok) continue;
      const a = node.metadata?.annotations ?? {};
      if (a[NODE_ANNOTATIONS.rebalanceMovedAt] !== undefined && a[NODE_ANNOTATIONS.interruptedAt] === undefined) {
        this.ctx.metrics.rebalanceMoves.inc({ followed_by_warning: 'false' });
      }
      log.info({ node: name }, 'the node is still Ready well after its deadline: took back the taint, label and cordon the controller added');
      this.ctx.recorder.record(
        { kind: 'Node', name, uid: node.metadata?.uid },
        'Normal',
        'NodeSurvived',
        `still Ready ${Math.round(config.migration.survivor_grace / 1000)} s after its deadline: the taint, the load-balancer exclusion and the cordon the controller added are removed`,
      );
    }
    const ttl = config.migration.rebalance_mark_ttl;
    for (const node of nodes.filter((n) => rebalanceMarkExpired(n, now, ttl))) {
      if (this.stopped) return;
      const name = node.metadata!.name!;
      const at = node.metadata?.annotations?.[NODE_ANNOTATIONS.rebalanceRecommendedAt];
      const ok = await this.marker.write(node, (n) => planRebalanceExpiry(n, this.clock.now(), ttl), 'remove an expired rebalance recommendation mark');
      if (!ok) continue;
      log.info({ node: name, recommendedAt: at }, 'rebalance recommendation mark expired: recovery may use the node again');
      this.ctx.recorder.record(
        { kind: 'Node', name, uid: node.metadata?.uid },
        'Normal',
        'RebalanceMarkExpired',
        `no interruption followed the rebalance recommendation of ${at} within ${Math.round(ttl / 1000)} s (migration.rebalance_mark_ttl): the mark is removed, and recovery may use the node again`,
      );
    }
    this.schedule(nextAt);
  }

  private schedule(nextAt: Date | undefined): void {
    if (this.stopped) return;
    const interval = this.ctx.config.monitoring.check_interval;
    const untilNext = nextAt === undefined ? interval : Math.max(0, nextAt.getTime() - this.clock.now().getTime());
    this.timer = this.clock.setTimer(() => this.wake(), Math.min(interval, untilNext));
  }
}

const movedKey = (node: string, startTime: Date) => `${node}@${startTime.toISOString()}`;
