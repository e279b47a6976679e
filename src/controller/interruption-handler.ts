// From a parsed EC2 event to action. A spot interruption warning cordons and marks the doomed
// nodes, finds every managed Deployment with pods on them, and runs phase 1 for all of them at
// once with bounded concurrency; phase 2 continues in the background, and one summary is sent when
// every rollout has settled (warnings that arrive together share one; see interruption-groups.ts).
// The caller deletes the message only when this reports it safe to.
import type { V1Deployment, V1Node } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import type { Logger } from 'pino';
import type { DeploymentOutcome, DeploymentRef, InterruptionInstance } from '../alerts/alert.js';
import type { ParsedEvent } from '../events/parse.js';
import type { RebalanceRecommendationEvent } from '../events/kinds/rebalance-recommendation.js';
import type { SpotInterruptedEvent } from '../events/kinds/spot-interruption.js';
import type { StateChangeEvent } from '../events/kinds/state-change.js';
import { MERGE_PATCH, messageOf, withRetry } from '../kube/api.js';
import { forecastLaunches } from '../capacity/fargate-budget.js';
import { resolveDeploymentSettings } from '../config/overrides.js';
import { isPodReady, keyOf } from '../kube/cluster-view.js';
import { NODE_ANNOTATIONS } from '../state/annotations.js';
import type { ControllerContext } from '../moves/context.js';
import { InterruptionGroups } from './interruption-groups.js';
import { type Stakes, stakeReason, triageOrder } from './triage.js';
import type { MigrationFlow, PhaseOneResult } from './migration-flow.js';
import { isManaged } from '../config/scope.js';

export interface HandleResult {
  /** Safe to delete the message: phase 1 is done, or the event does not concern this cluster. */
  ack: boolean;
  outcome: 'migrated' | 'partial' | 'nothing_to_do' | 'foreign' | 'noted';
  /** Resolves when phase 2 has settled for every Deployment (tests and the summary wait on it). */
  settled: Promise<void>;
}

const DONE: Promise<void> = Promise.resolve();

export class InterruptionHandler {
  private readonly limit;
  private readonly groups: InterruptionGroups;

  constructor(
    private readonly ctx: ControllerContext,
    private readonly flow: MigrationFlow,
  ) {
    this.limit = pLimit(ctx.config.controller.max_concurrent_patches);
    this.groups = new InterruptionGroups(ctx.alerter, ctx.clock);
  }

  async handle(event: ParsedEvent): Promise<HandleResult> {
    switch (event.kind) {
      case 'spot_interrupted':
        return this.onSpotInterruption(event);
      case 'rebalance_recommendation':
        return this.onAtRisk(event, { [NODE_ANNOTATIONS.rebalanceRecommendedAt]: event.time.toISOString() }, false);
      case 'state_change':
        return this.onStateChange(event);
      case 'unknown':
        return { ack: true, outcome: 'nothing_to_do', settled: DONE };
    }
  }

  private nodesOf(instanceIds: string[]): { node: V1Node; instanceId: string }[] {
    return instanceIds.flatMap((instanceId) => {
      const node = this.ctx.view.nodeForInstance(instanceId);
      return node ? [{ node, instanceId }] : [];
    });
  }

  /** Cordons (when asked) and annotates the nodes, so the verdict outlives this process. */
  private async markNodes(nodes: V1Node[], annotations: Record<string, string>, cordon: boolean): Promise<void> {
    if (this.ctx.config.controller.dry_run) return;
    await Promise.all(
      nodes.map(async (node) => {
        const name = node.metadata!.name!;
        try {
          await withRetry(() =>
            this.ctx.core.patchNode({ name, body: { metadata: { annotations }, ...(cordon ? { spec: { unschedulable: true } } : {}) } }, MERGE_PATCH),
          );
        } catch (err) {
          this.ctx.log.warn({ node: name, err: messageOf(err) }, 'could not mark the node');
        }
      }),
    );
  }

  private async onAtRisk(event: RebalanceRecommendationEvent | StateChangeEvent, annotations: Record<string, string>, cordon: boolean): Promise<HandleResult> {
    const found = this.nodesOf(event.instanceIds);
    if (found.length === 0) return { ack: true, outcome: 'foreign', settled: DONE };
    await this.markNodes(
      found.map((f) => f.node),
      annotations,
      cordon,
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
    if (!['stopping', 'stopped', 'shutting-down', 'terminated'].includes(event.state)) return { ack: true, outcome: 'nothing_to_do', settled: DONE };
    // An instance going away without a warning: treat it as interrupted (no Deployment move here,
    // the interruption warning is what triggers that; this keeps recovery off the node).
    return this.onAtRisk(event, { [NODE_ANNOTATIONS.interruptedAt]: event.time.toISOString() }, true);
  }

  private async onSpotInterruption(event: SpotInterruptedEvent): Promise<HandleResult> {
    const started = this.ctx.clock.now();
    const log = this.ctx.log.child({ eventId: event.id });
    const found = this.nodesOf(event.instanceIds);
    if (found.length === 0) {
      log.info({ instances: event.instanceIds }, 'interruption for instances not in this cluster; ignoring');
      this.ctx.metrics.interruptionsHandled.inc({ outcome: 'foreign' });
      return { ack: true, outcome: 'foreign', settled: DONE };
    }
    const nodes = found.map((f) => f.node);
    const instances: InterruptionInstance[] = found.map((f) => ({ instanceId: f.instanceId, node: f.node.metadata!.name! }));
    // Cordoning and marking the nodes come behind the patches: the patches are what the deadline is for.
    const markNodes = () =>
      this.markNodes(
        nodes,
        { [NODE_ANNOTATIONS.interruptedAt]: event.time.toISOString(), [NODE_ANNOTATIONS.terminationDeadline]: event.deadline.toISOString() },
        true,
      );

    const affected = this.atStake(nodes);
    const order = this.ctx.config.migration.triage ? triageOrder(affected) : affected;
    const deployments = order.map((s) => s.deployment);
    const forecast = this.forecast(order, event.deadline, log);
    log.info({ instances, deployments: deployments.length, deadline: event.deadline.toISOString() }, 'spot interruption warning');
    const refs = deployments.map((d) => ({ namespace: d.metadata!.namespace!, name: d.metadata!.name! }));
    const reportToGroup = this.groups.join({ eventId: event.id, instances, deadline: event.deadline, deployments: refs, expectedLate: forecast.late });
    for (const node of nodes) {
      this.ctx.recorder.record(
        { kind: 'Node', name: node.metadata!.name!, uid: node.metadata?.uid },
        'Warning',
        'SpotInterruption',
        `spot interruption warning (event ${event.id}); instance terminates at ${event.deadline.toISOString()}; cordoned, ${deployments.length} managed Deployment(s) moving to Fargate`,
      );
    }
    if (deployments.length === 0) {
      reportToGroup([]);
      await markNodes();
      this.ctx.metrics.interruptionsHandled.inc({ outcome: 'nothing_to_do' });
      return { ack: true, outcome: 'nothing_to_do', settled: DONE };
    }

    const request = { eventId: event.id, instanceIds: event.instanceIds, reason: 'spot-interruption' as const, deadline: event.deadline };
    let results: PhaseOneResult[] = [];
    try {
      // p-limit starts queued work in the order it was queued: the triage order is the patch order.
      const phaseOne = Promise.all(deployments.map((d) => this.limit(() => this.flow.migrate(d, request))));
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
    await markNodes();
    const phase1Seconds = (phase1Done.getTime() - started.getTime()) / 1000;
    this.ctx.metrics.phase1Seconds.observe(phase1Seconds);
    const retry = results.some((r) => r.retry);
    log.info({ deployments: results.length, phase1Seconds, retry }, 'phase 1 done: every affected Deployment patched');

    const settled = this.phaseTwo(event, results, phase1Done);
    const outcome = retry ? 'partial' : 'migrated';
    this.ctx.metrics.interruptionsHandled.inc({ outcome });
    return { ack: !retry, outcome, settled };
  }

  /** The managed Deployments with pods on the doomed nodes, with what each has at stake there. */
  private atStake(nodes: V1Node[]): (Stakes & { deployment: V1Deployment })[] {
    const { config, view } = this.ctx;
    const serviceName = config.kubernetes.mode === 'single' ? config.kubernetes.service_name : undefined;
    const found = new Map<string, { deployment: V1Deployment; readyOnDoomed: number; podPriority?: number }>();
    for (const node of nodes) {
      for (const pod of view.podsOnNode(node.metadata!.name!)) {
        const deployment = view.deploymentOfPod(pod);
        if (!deployment || !isManaged(config, deployment)) continue;
        const key = keyOf(deployment);
        const entry = found.get(key) ?? { deployment, readyOnDoomed: 0 };
        found.set(key, entry);
        if (isPodReady(pod)) entry.readyOnDoomed++;
        // The value of its PriorityClass, which admission wrote on each pod.
        const podPriority = pod.spec?.priority;
        if (podPriority !== undefined) entry.podPriority = Math.max(entry.podPriority ?? podPriority, podPriority);
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
  private async phaseTwo(event: SpotInterruptedEvent, results: PhaseOneResult[], phase1Done: Date): Promise<void> {
    const outcomes = await Promise.all(results.map(settledOutcome));
    this.ctx.metrics.phase2Seconds.observe((this.ctx.clock.now().getTime() - phase1Done.getTime()) / 1000);
    this.ctx.log.info({ eventId: event.id, outcomes: countBy(outcomes.map((o) => o.result)) }, 'phase 2 done: every rollout settled');
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
