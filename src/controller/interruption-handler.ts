// From a parsed EC2 event to action. A spot (or capacity-reservation) interruption warning finds every
// managed Deployment with pods on the doomed nodes, runs phase 1 for all of them at once with bounded
// concurrency, then seals the nodes off (node-marks.ts). An AWS Health scheduled change only marks its
// nodes; scheduled-changes.ts starts the same phase 1 when the lead time comes. Phase 2 continues in
// the background, and one summary is sent when every rollout has settled (warnings that arrive
// together share one; see interruption-groups.ts).
// The caller deletes the message only when this reports it safe to.
import type { V1Deployment, V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { DeploymentOutcome, DeploymentRef, InterruptionInstance } from '../alerts/alert.js';
import type { ParsedEvent } from '../events/parse.js';
import type { RebalanceRecommendationEvent } from '../events/kinds/rebalance-recommendation.js';
import type { CapacityReservationInterruptedEvent } from '../events/kinds/capacity-reservation-interruption.js';
import type { ScheduledChangeEvent } from '../events/kinds/scheduled-change.js';
import { SPOT_INTERRUPTION_NOTICE_MS, type SpotInterruptedEvent } from '../events/kinds/spot-interruption.js';
import { isActedOnState, type StateChangeEvent } from '../events/kinds/state-change.js';
import { forecastLaunches } from '../capacity/fargate-budget.js';
import { isSpotNode, spotCapacityLabels } from '../capacity/spot-nodes.js';
import { resolveDeploymentSettings } from '../config/overrides.js';
import { isPodReady, keyOf } from '../kube/cluster-view.js';
import { NODE_ANNOTATIONS } from '../state/annotations.js';
import type { ControllerContext } from '../moves/context.js';
import { GROUP_WINDOW_MS, InterruptionGroups } from './interruption-groups.js';
import { NodeMarker } from './node-marker.js';
import { type DueChange, markedDoomed, planMark, planSeal, withMovedScope } from './node-marks.js';
import { StakeQueue, type Stakes, stakeReason, triageOrder } from './triage.js';
import type { MigrationFlow, PhaseOneResult } from './migration-flow.js';
import { isManaged, scopeKey } from '../config/scope.js';

export interface HandleResult {
  /** Safe to delete the message: phase 1 is done, or the event does not concern this cluster. */
  ack: boolean;
  /** not_spot: a spot-only signal whose nodes are all on capacity that is not spot; reported, nothing done. */
  outcome: 'migrated' | 'partial' | 'nothing_to_do' | 'foreign' | 'noted' | 'not_spot';
  /** Resolves when phase 2 has settled for every Deployment (tests and the summary wait on it). */
  settled: Promise<void>;
}

const DONE: Promise<void> = Promise.resolve();

/** Node annotations, or how to make them from the node's newest copy (a mark that merges with others'). */
/** A node of this cluster, found from an instance id an event names. */
interface Found {
  node: V1Node;
  instanceId: string;
}

type Marks = Record<string, string> | ((node: V1Node) => Record<string, string>);
const marksFor = (marks: Marks | undefined, node: V1Node) => (typeof marks === 'function' ? marks(node) : (marks ?? {}));

/** What phase 1 needs to know of a warning, or of a scheduled change whose lead time has come. */
interface Doom {
  kind: 'spot_interrupted' | 'capacity_reservation_interrupted' | 'scheduled_change' | 'rebalance_recommendation';
  eventId: string;
  found: { node: V1Node; instanceId: string }[];
  /** Noted on the nodes as interrupted-at. */
  warnedAt: Date;
  deadline: Date;
  /** For logs and Events: "spot interruption warning". */
  what: string;
  /** Node marks written only once phase 1 is done (no retry): what says the move was made. */
  doneMarks?: Marks;
  /** Node marks written with the seal; default interrupted-at and termination-deadline. */
  marks?: Record<string, string>;
  /** Only these of the managed Deployments on the nodes move (a rebalance moves those that opted in). */
  only?: (d: V1Deployment) => boolean;
}

export class InterruptionHandler {
  private readonly patches: StakeQueue;
  /** The Deployments of the warnings arriving together, for one forecast over the one launch bucket. */
  private wave?: { openedAt: number; stakes: Map<string, Stakes>; deadline: Date };
  private readonly groups: InterruptionGroups;
  private readonly marker: NodeMarker;
  /**
   * Nodes going away (warned, or a scheduled change that is due), by name, until their deadline, from
   * the moment a warning is handled: their marks are written only after phase 1. A Deployment whose
   * Ready replicas are spread over several of them would hit zero, though each node's warning holds
   * only part of them. Nodes already marked (by this process or an earlier one) are read from the marks.
   */
  private readonly doomedNodes = new Map<string, number>();

  /** onScheduledChangeNoted: the nodes of a scheduled change were marked (the sweep may want to look now). */
  constructor(
    private readonly ctx: ControllerContext,
    private readonly flow: MigrationFlow,
    private readonly onScheduledChangeNoted: () => void = () => {},
  ) {
    this.patches = new StakeQueue(ctx.config.controller.max_concurrent_patches, ctx.config.migration.triage);
    this.groups = new InterruptionGroups(ctx.alerter, ctx.clock);
    this.marker = new NodeMarker(ctx);
  }

  async handle(event: ParsedEvent): Promise<HandleResult> {
    switch (event.kind) {
      case 'spot_interrupted':
      case 'capacity_reservation_interrupted':
        return this.onWarning(event);
      case 'scheduled_change':
        return this.onScheduledChange(event);
      case 'rebalance_recommendation':
        return this.onRebalance(event);
      case 'state_change':
        return this.onStateChange(event);
      case 'unknown':
        return { ack: true, outcome: 'nothing_to_do', settled: DONE };
    }
  }

  /**
   * A scheduled change's lead time has come (the ScheduledChanges sweep says so, from the node marks):
   * phase 1 for its nodes, as for a warning whose deadline is the change's startTime.
   */
  moveScheduledChange(change: DueChange): Promise<HandleResult> {
    const at = change.startTime.toISOString();
    return this.interrupt({
      kind: 'scheduled_change',
      eventId: change.eventId,
      found: change.nodes,
      warnedAt: this.ctx.clock.now(),
      deadline: change.startTime,
      what: 'AWS Health scheduled change',
      // Written only once phase 1 is done: until then a restart, or the next sweep, moves it again.
      doneMarks: (node) => ({ [NODE_ANNOTATIONS.scheduledChangeMoved]: withMovedScope(node, scopeKey(this.ctx.config.kubernetes), at) }),
    });
  }

  private nodesOf(instanceIds: string[]): { node: V1Node; instanceId: string }[] {
    return instanceIds.flatMap((instanceId) => {
      const node = this.ctx.view.nodeForInstance(instanceId);
      return node ? [{ node, instanceId }] : [];
    });
  }

  /**
   * Annotates the nodes (cordons when asked), so the verdict outlives this process; doomed nodes are
   * sealed off as well (node-marks.ts). True when every node was written.
   */
  private async markNodes(nodes: V1Node[], annotations: Marks, how: 'note' | 'cordon' | 'seal'): Promise<boolean> {
    const now = this.ctx.clock.now();
    const written = await Promise.all(
      nodes.map((node) =>
        how === 'seal'
          ? this.marker.write(node, (n) => planSeal(n, marksFor(annotations, n), now), 'seal off the node')
          : this.marker.write(node, (n) => planMark(marksFor(annotations, n), how === 'cordon'), 'mark the node'),
      ),
    );
    return written.every(Boolean);
  }

  /**
   * A spot warning and a rebalance recommendation are sent for spot instances only. One that names a
   * node on other capacity (on-demand, by its labels) did not come from EC2's spot service, or names the
   * wrong instance: each such node is reported (log line, NotSpotCapacity Event, counted) and left
   * alone. Capacity Reservation warnings, scheduled changes and state changes concern any capacity and
   * are not filtered.
   */
  private spotOnly(event: SpotInterruptedEvent | RebalanceRecommendationEvent, found: Found[]): Found[] {
    const { compute } = this.ctx.config;
    const spot = found.filter((f) => isSpotNode(f.node, compute));
    const notSpot = found.filter((f) => !spot.includes(f));
    if (notSpot.length === 0) return spot;
    this.ctx.metrics.eventsDropped.inc({ kind: event.kind, reason: 'not_spot_capacity' });
    const what = event.kind === 'spot_interrupted' ? 'spot interruption warning' : 'rebalance recommendation';
    const labels = spotCapacityLabels(compute);
    for (const { node, instanceId } of notSpot) {
      const name = node.metadata!.name!;
      const own = node.metadata?.labels ?? {};
      this.ctx.log.warn(
        {
          eventId: event.id,
          kind: event.kind,
          node: name,
          instance: instanceId,
          capacityLabels: Object.fromEntries(labels.map(([key]) => [key, own[key] ?? null])),
        },
        'spot signal for a node that is not spot capacity; not acting on it',
      );
      this.ctx.recorder.record(
        { kind: 'Node', name, uid: node.metadata?.uid },
        'Warning',
        'NotSpotCapacity',
        `${what} for ${instanceId} (event ${event.id}), but the node is not spot capacity (none of ${labels.map(([k, v]) => `${k}=${v}`).join(', ')}): nothing done`,
      );
    }
    return spot;
  }

  private async onAtRisk(
    event: RebalanceRecommendationEvent | StateChangeEvent,
    found: Found[],
    annotations: Record<string, string>,
    seal: boolean,
  ): Promise<HandleResult> {
    await this.markNodes(
      found.map((f) => f.node),
      annotations,
      seal ? 'seal' : 'note',
    );
    for (const { node } of found) {
      this.ctx.recorder.record(
        { kind: 'Node', name: node.metadata!.name!, uid: node.metadata?.uid },
        'Warning',
        event.kind === 'state_change' ? 'InstanceStateChanged' : 'RebalanceRecommended',
        `${event.kind} for ${event.instanceIds.join(', ')} (event ${event.id})`,
      );
    }
    this.ctx.log.info({ eventId: event.id, kind: event.kind, nodes: found.map((f) => f.node.metadata!.name) }, 'noted: spot capacity at risk');
    return { ack: true, outcome: 'noted', settled: DONE };
  }

  private async onStateChange(event: StateChangeEvent): Promise<HandleResult> {
    // Foreign first, whatever the state: in a shared queue (aws.keep_foreign_messages) another
    // cluster's consumer may want a state this controller ignores.
    if (this.nodesOf(event.instanceIds).length === 0) return { ack: true, outcome: 'foreign', settled: DONE };
    if (!isActedOnState(event.state)) return { ack: true, outcome: 'nothing_to_do', settled: DONE };
    // An instance going away without a warning: treat it as interrupted (no Deployment move here,
    // the interruption warning is what triggers that; this keeps recovery off the node).
    return this.onAtRisk(event, this.nodesOf(event.instanceIds), { [NODE_ANNOTATIONS.interruptedAt]: event.time.toISOString() }, true);
  }

  /**
   * The nodes get the change's startTime, and that is all until the lead time comes: the node mark is
   * what makes the move happen, after a restart too, so the message may go once every node has it.
   */
  private async onScheduledChange(event: ScheduledChangeEvent): Promise<HandleResult> {
    const log = this.ctx.log.child({ eventId: event.id });
    const found = this.nodesOf(event.instanceIds);
    if (found.length === 0) {
      log.info({ instances: event.instanceIds }, 'scheduled change for instances not in this cluster; ignoring');
      return { ack: true, outcome: 'foreign', settled: DONE };
    }
    const lead = this.ctx.config.migration.scheduled_change_lead;
    const moveAt = new Date(Math.max(this.ctx.clock.now().getTime(), event.startTime.getTime() - lead));
    const marked = await this.markNodes(
      found.map((f) => f.node),
      { [NODE_ANNOTATIONS.scheduledChangeAt]: event.startTime.toISOString(), [NODE_ANNOTATIONS.scheduledChangeEvent]: event.id },
      'note',
    );
    for (const { node } of found) {
      this.ctx.recorder.record(
        { kind: 'Node', name: node.metadata!.name!, uid: node.metadata?.uid },
        'Warning',
        'ScheduledChange',
        `AWS Health ${event.eventTypeCode} (event ${event.id}) at ${event.startTime.toISOString()}; its managed Deployments move to Fargate at ${moveAt.toISOString()}`,
      );
    }
    log.info(
      {
        instances: event.instanceIds,
        nodes: found.map((f) => f.node.metadata!.name),
        type: event.eventTypeCode,
        startTime: event.startTime.toISOString(),
        moveAt: moveAt.toISOString(),
        marked,
      },
      'AWS Health scheduled change noted on the nodes',
    );
    this.onScheduledChangeNoted();
    return { ack: marked, outcome: 'noted', settled: DONE };
  }

  /**
   * Noted on the node, as always; and when migration.on_rebalance or a Deployment's move-on-rebalance
   * says so, the Deployments that want it move now, once per node: the node's rebalance-moved-at mark
   * keeps a repeated or later recommendation from moving them again (no thrash).
   */
  private async onRebalance(event: RebalanceRecommendationEvent): Promise<HandleResult> {
    const ours = this.nodesOf(event.instanceIds);
    if (ours.length === 0) return { ack: true, outcome: 'foreign', settled: DONE };
    const spot = this.spotOnly(event, ours);
    if (spot.length === 0) return { ack: true, outcome: 'not_spot', settled: DONE };
    const noted = await this.onAtRisk(event, spot, { [NODE_ANNOTATIONS.rebalanceRecommendedAt]: event.time.toISOString() }, false);
    const found = spot.filter((f) => f.node.metadata?.annotations?.[NODE_ANNOTATIONS.rebalanceMovedAt] === undefined);
    const wants = (d: V1Deployment) => resolveDeploymentSettings(this.ctx.config, d.metadata?.annotations).settings.moveOnRebalance;
    if (found.length === 0 || !this.atStake(found.map((f) => f.node)).some((s) => wants(s.deployment))) return noted;
    return this.interrupt({
      kind: 'rebalance_recommendation',
      eventId: event.id,
      found,
      warnedAt: event.time,
      // No deadline comes with a recommendation: the soonest the instance could go is a warning now.
      deadline: new Date(event.time.getTime() + SPOT_INTERRUPTION_NOTICE_MS),
      what: 'rebalance recommendation, moving the Deployments that opted in',
      marks: {},
      doneMarks: { [NODE_ANNOTATIONS.rebalanceMovedAt]: event.time.toISOString() },
      only: wants,
    });
  }

  private onWarning(event: SpotInterruptedEvent | CapacityReservationInterruptedEvent): Promise<HandleResult> {
    const ours = this.nodesOf(event.instanceIds);
    // A Capacity Reservation's instances are on-demand capacity: only the spot warning is checked.
    const found = event.kind === 'spot_interrupted' && ours.length > 0 ? this.spotOnly(event, ours) : ours;
    if (ours.length > 0 && found.length === 0) return Promise.resolve({ ack: true, outcome: 'not_spot', settled: DONE });
    for (const { node } of found) {
      const a = node.metadata?.annotations ?? {};
      // The first warning for a node whose Deployments a recommendation moved: that move was worth it.
      if (a[NODE_ANNOTATIONS.rebalanceMovedAt] !== undefined && a[NODE_ANNOTATIONS.interruptedAt] === undefined) {
        this.ctx.metrics.rebalanceMoves.inc({ followed_by_warning: 'true' });
      }
    }
    const what = event.kind === 'spot_interrupted' ? 'spot interruption warning' : 'capacity reservation interruption warning';
    if (found.length === 0) {
      this.ctx.log.info({ eventId: event.id, kind: event.kind, instances: event.instanceIds }, 'interruption for instances not in this cluster; ignoring');
      this.ctx.metrics.interruptionsHandled.inc({ outcome: 'foreign' });
      return Promise.resolve({ ack: true, outcome: 'foreign', settled: DONE });
    }
    return this.interrupt({ kind: event.kind, eventId: event.id, found, warnedAt: event.time, deadline: event.deadline, what });
  }

  /** Phase 1 for every managed Deployment on the doomed nodes, then the nodes sealed off. */
  private async interrupt(doom: Doom): Promise<HandleResult> {
    const started = this.ctx.clock.now();
    const log = this.ctx.log.child({ eventId: doom.eventId });
    const { found } = doom;
    const instanceIds = found.map((f) => f.instanceId);
    const nodes = found.map((f) => f.node);
    const instances: InterruptionInstance[] = found.map((f) => ({ instanceId: f.instanceId, node: f.node.metadata!.name! }));
    const marks = doom.marks ?? {
      [NODE_ANNOTATIONS.interruptedAt]: doom.warnedAt.toISOString(),
      [NODE_ANNOTATIONS.terminationDeadline]: doom.deadline.toISOString(),
    };
    // Sealing the nodes off comes behind the patches: the patches are what the deadline is for. The
    // nodes' pods keep serving until then, and the taint only keeps new pods off, which the
    // patches' Fargate template already does for the moved Deployments.
    const markNodes = (done: boolean) => this.markNodes(nodes, done ? (n: V1Node) => ({ ...marks, ...marksFor(doom.doneMarks, n) }) : marks, 'seal');

    if (doom.kind !== 'rebalance_recommendation') this.noteDoomed(nodes, doom.deadline);
    const affected = this.atStake(nodes).filter((s) => doom.only?.(s.deployment) ?? true);
    const order = this.ctx.config.migration.triage ? triageOrder(affected) : affected;
    const deployments = order.map((s) => s.deployment);
    const stakesOf = new Map(order.map((s) => [s.deployment, s]));
    const forecast = this.forecastWave(affected, doom.deadline, log);
    log.info({ instances, deployments: deployments.length, deadline: doom.deadline.toISOString() }, doom.what);
    const refs = deployments.map((d) => ({ namespace: d.metadata!.namespace!, name: d.metadata!.name! }));
    const reportToGroup = this.groups.join({ eventId: doom.eventId, instances, deadline: doom.deadline, deployments: refs, expectedLate: forecast.late });
    for (const node of nodes) {
      this.ctx.recorder.record(
        { kind: 'Node', name: node.metadata!.name!, uid: node.metadata?.uid },
        'Warning',
        doom.kind === 'spot_interrupted'
          ? 'SpotInterruption'
          : doom.kind === 'capacity_reservation_interrupted'
            ? 'CapacityReservationInterruption'
            : doom.kind === 'scheduled_change'
              ? 'ScheduledChangeDue'
              : 'RebalanceMove',
        `${doom.what} (event ${doom.eventId}); the instance goes at ${doom.deadline.toISOString()}; sealed off (cordoned, tainted, out of external load balancers), ${deployments.length} managed Deployment(s) moving to Fargate`,
      );
    }
    if (deployments.length === 0) {
      reportToGroup([]);
      const marked = await markNodes(true);
      this.ctx.metrics.interruptionsHandled.inc({ outcome: 'nothing_to_do' });
      // A scheduled change is remembered by its done mark alone: without it, the next sweep tries again.
      return { ack: doom.doneMarks === undefined || marked, outcome: 'nothing_to_do', settled: DONE };
    }

    const request = { eventId: doom.eventId, instanceIds, reason: 'spot-interruption' as const, deadline: doom.deadline };
    let results: PhaseOneResult[] = [];
    try {
      // One queue for every warning handled at once: the triage order holds across messages. A slot
      // is held while this message's own patch is in flight. A Deployment on two doomed nodes is found
      // by both messages, and the second joins the first's move: waiting on that patch in a slot would
      // keep a slot from a patch that could be in flight.
      const phaseOne = Promise.all(
        deployments.map(async (d) => {
          const move = await this.patches.run(stakesOf.get(d)!, async () => {
            const begun = this.flow.begin(d, request);
            if (!begun.joined) await begun.result;
            return begun;
          });
          return move.result;
        }),
      );
      this.ctx.recorder.holdWhile?.(phaseOne);
      results = await phaseOne;
    } finally {
      reportToGroup(
        results.map((r) => ({
          ref: refOf(r.key),
          outcome: settledOutcome(r),
          joined: r.joined === true || (r.outcome.result === 'skipped' && r.outcome.reason === 'already_on_fargate'),
        })),
      );
    }
    const phase1Done = this.ctx.clock.now();
    const retry = results.some((r) => r.retry);
    const marked = await markNodes(!retry);
    const phase1Seconds = (phase1Done.getTime() - started.getTime()) / 1000;
    this.ctx.metrics.phase1Seconds.observe(phase1Seconds);
    log.info({ deployments: results.length, phase1Seconds, retry }, 'phase 1 done: every affected Deployment patched');

    const settled = this.phaseTwo(doom.eventId, results, phase1Done);
    const outcome = retry ? 'partial' : 'migrated';
    this.ctx.metrics.interruptionsHandled.inc({ outcome });
    return { ack: !retry && (doom.doneMarks === undefined || marked), outcome, settled };
  }

  /** Remembers nodes going away until their deadline (forgetting those whose deadline has passed). */
  private noteDoomed(nodes: V1Node[], deadline: Date): void {
    const now = this.ctx.clock.now().getTime();
    for (const [name, until] of this.doomedNodes) if (until < now) this.doomedNodes.delete(name);
    for (const node of nodes) this.doomedNodes.set(node.metadata!.name!, Math.max(deadline.getTime(), this.doomedNodes.get(node.metadata!.name!) ?? 0));
  }

  /**
   * The managed Deployments with pods on these nodes, with what each has at stake. Ready replicas on
   * doomed nodes are counted on every node going away, not on these alone: AWS warns one instance
   * per message, and a Deployment spread over several of them loses all of its replicas.
   */
  private atStake(nodes: V1Node[]): (Stakes & { deployment: V1Deployment })[] {
    const { config, view } = this.ctx;
    const serviceName = config.kubernetes.mode === 'single' ? config.kubernetes.service_name : undefined;
    const found = new Map<string, { deployment: V1Deployment; readyOnDoomed: number; podPriority?: number }>();
    for (const node of nodes) {
      for (const pod of view.podsOnNode(node.metadata!.name!)) {
        const deployment = view.deploymentOfPod(pod);
        if (!deployment || !isManaged(config, deployment, view.inScope)) continue;
        const key = keyOf(deployment);
        const entry = found.get(key) ?? { deployment, readyOnDoomed: 0 };
        found.set(key, entry);
        // The value of its PriorityClass, which admission wrote on each pod.
        const podPriority = pod.spec?.priority;
        if (podPriority !== undefined) entry.podPriority = Math.max(entry.podPriority ?? podPriority, podPriority);
      }
    }
    const now = this.ctx.clock.now();
    const marked = view.listNodes().filter((n) => markedDoomed(n, now));
    const doomed = new Set([...nodes, ...marked].map((n) => n.metadata!.name!).concat([...this.doomedNodes.keys()]));
    for (const name of doomed) {
      for (const pod of view.podsOnNode(name)) {
        if (!isPodReady(pod)) continue;
        const deployment = view.deploymentOfPod(pod);
        const entry = deployment && found.get(keyOf(deployment));
        if (entry) entry.readyOnDoomed++;
      }
    }
    return [...found].map(([key, { deployment: d, readyOnDoomed, podPriority }]) => ({
      key,
      deployment: d,
      replicas: d.spec?.replicas ?? 1,
      ready: d.status?.readyReplicas ?? 0,
      readyOnDoomed,
      behindService: view.servicesFor(d, serviceName).length > 0,
      // A bad annotation is reported by the migration flow's settings; here it only falls back.
      priority: resolveDeploymentSettings(config, d.metadata?.annotations).settings.priority ?? podPriority ?? 0,
    }));
  }

  /**
   * What AWS's Fargate launch throttle lets through before the deadline, in this order: logged,
   * exported, and the late ones named (with why) in the interruption's summary.
   */
  /**
   * The forecast for every warning of this wave, not this message alone. AWS sends one warning per
   * instance, and the warnings of one reclaim (those within GROUP_WINDOW_MS of the first, as the alert
   * groups count them) draw on one launch bucket: each new message's forecast covers them all, and its
   * late list replaces the group's.
   */
  private forecastWave(affected: readonly Stakes[], deadline: Date, log: Logger): { late: (DeploymentRef & { why: string })[] } {
    const now = this.ctx.clock.now().getTime();
    if (!this.wave || now - this.wave.openedAt >= GROUP_WINDOW_MS) this.wave = { openedAt: now, stakes: new Map(), deadline };
    const wave = this.wave;
    for (const s of affected) if (!wave.stakes.has(s.key)) wave.stakes.set(s.key, s);
    if (deadline < wave.deadline) wave.deadline = deadline;
    const all = [...wave.stakes.values()];
    return this.forecast(this.ctx.config.migration.triage ? triageOrder(all) : all, wave.deadline, log);
  }

  private forecast(order: readonly Stakes[], deadline: Date, log: Logger): { late: (DeploymentRef & { why: string })[] } {
    const { migration } = this.ctx.config;
    const budget = { burst: migration.fargate_launch_burst, ratePerSecond: migration.fargate_launch_rate, startEstimateMs: migration.fargate_start_estimate };
    const windowMs = deadline.getTime() - this.ctx.clock.now().getTime();
    const f = forecastLaunches(
      order.map((s) => ({ key: s.key, launches: s.replicas })),
      budget,
      windowMs,
    );
    const m = this.ctx.metrics.fargateForecast;
    m.set({ what: 'launches_needed' }, f.launchesNeeded);
    m.set({ what: 'launches_in_time' }, f.launchesInTime);
    m.set({ what: 'deployments_whole' }, f.expectedWhole);
    m.set({ what: 'deployments_late' }, f.expectedLate);
    const stakes = new Map(order.map((s) => [s.key, s]));
    let before = 0;
    const late: (DeploymentRef & { why: string })[] = [];
    for (const d of f.deployments) {
      if (!d.whole) {
        const s = stakes.get(d.key)!;
        late.push({
          ...refOf(d.key),
          why:
            `its ${d.launches} Fargate launch(es) come after ${before} others (${stakeReason(s)}, priority ${s.priority}): ` +
            `Ready about ${Math.round(d.readyAfterMs / 1000)} s after the warning, the instance dies at ${Math.round(windowMs / 1000)} s ` +
            `(AWS launches ${budget.burst} at once, then ${budget.ratePerSecond}/s)`,
        });
      }
      before += d.launches;
    }
    const level = f.expectedLate > 0 ? 'warn' : 'info';
    log[level](
      {
        launchesNeeded: f.launchesNeeded,
        launchesInTime: f.launchesInTime,
        expectedWhole: f.expectedWhole,
        expectedLate: f.expectedLate,
        triage: migration.triage,
        late: late.slice(0, 20).map((l) => `${l.namespace}/${l.name}`),
      },
      'Fargate launch forecast',
    );
    return { late };
  }

  /** Waits for this message's phase 2 (the group's summary is sent by InterruptionGroups). */
  private async phaseTwo(eventId: string, results: PhaseOneResult[], phase1Done: Date): Promise<void> {
    const outcomes = await Promise.all(results.map(settledOutcome));
    this.ctx.metrics.phase2Seconds.observe((this.ctx.clock.now().getTime() - phase1Done.getTime()) / 1000);
    this.ctx.log.info({ eventId, outcomes: countBy(outcomes.map((o) => o.result)) }, 'phase 2 done: every rollout settled');
  }
}

function refOf(key: string): DeploymentRef {
  const [namespace, name] = key.split('/') as [string, string];
  return { namespace, name };
}

/** The outcome once phase 2 settles (the phase 1 outcome when no rollout was started). */
function settledOutcome(r: PhaseOneResult): Promise<DeploymentOutcome> {
  return r.settled ? r.settled.catch((err): DeploymentOutcome => ({ result: 'failed', reason: String(err), rolledBack: false })) : Promise.resolve(r.outcome);
}

function countBy(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
}
