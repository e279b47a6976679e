// From a parsed EC2 event to action. A spot interruption warning cordons and marks the doomed
// nodes, finds every managed Deployment with pods on them, and runs phase 1 for all of them at
// once with bounded concurrency; phase 2 continues in the background, and one summary is sent when
// every rollout has settled (warnings that arrive together share one; see interruption-groups.ts).
// The caller deletes the message only when this reports it safe to.
import type { V1Deployment, V1Node } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import type { DeploymentOutcome, DeploymentRef, InterruptionInstance } from '../alerts/alert.js';
import type { ParsedEvent } from '../events/parse.js';
import type { RebalanceRecommendationEvent } from '../events/kinds/rebalance-recommendation.js';
import type { SpotInterruptedEvent } from '../events/kinds/spot-interruption.js';
import type { StateChangeEvent } from '../events/kinds/state-change.js';
import { MERGE_PATCH, messageOf, withRetry } from '../kube/api.js';
import { keyOf } from '../kube/cluster-view.js';
import { NODE_ANNOTATIONS } from '../state/annotations.js';
import type { ControllerContext } from '../moves/context.js';
import { InterruptionGroups } from './interruption-groups.js';
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
    const marking = this.markNodes(
      nodes,
      { [NODE_ANNOTATIONS.interruptedAt]: event.time.toISOString(), [NODE_ANNOTATIONS.terminationDeadline]: event.deadline.toISOString() },
      true,
    );

    const deployments = new Map<string, V1Deployment>();
    for (const node of nodes) {
      for (const pod of this.ctx.view.podsOnNode(node.metadata!.name!)) {
        const d = this.ctx.view.deploymentOfPod(pod);
        if (d && isManaged(this.ctx.config, d)) deployments.set(keyOf(d), d);
      }
    }
    log.info({ instances, deployments: deployments.size, deadline: event.deadline.toISOString() }, 'spot interruption warning');
    const refs = [...deployments.values()].map((d) => ({ namespace: d.metadata!.namespace!, name: d.metadata!.name! }));
    const reportToGroup = this.groups.join({ eventId: event.id, instances, deadline: event.deadline, deployments: refs });
    for (const node of nodes) {
      this.ctx.recorder.record(
        { kind: 'Node', name: node.metadata!.name!, uid: node.metadata?.uid },
        'Warning',
        'SpotInterruption',
        `spot interruption warning (event ${event.id}); instance terminates at ${event.deadline.toISOString()}; cordoned, ${deployments.size} managed Deployment(s) moving to Fargate`,
      );
    }
    if (deployments.size === 0) {
      reportToGroup([]);
      await marking;
      this.ctx.metrics.interruptionsHandled.inc({ outcome: 'nothing_to_do' });
      return { ack: true, outcome: 'nothing_to_do', settled: DONE };
    }

    const request = { eventId: event.id, instanceIds: event.instanceIds, reason: 'spot-interruption' as const, deadline: event.deadline };
    let results: PhaseOneResult[] = [];
    try {
      results = await Promise.all([...deployments.values()].map((d) => this.limit(() => this.flow.migrate(d, request))));
    } finally {
      reportToGroup(
        results.map((r) => ({
          ref: refOf(r.key),
          outcome: settledOutcome(r),
          joined: r.joined === true || (r.outcome.result === 'skipped' && r.outcome.reason === 'already_on_fargate'),
        })),
      );
    }
    await marking;
    const phase1Done = this.ctx.clock.now();
    const phase1Seconds = (phase1Done.getTime() - started.getTime()) / 1000;
    this.ctx.metrics.phase1Seconds.observe(phase1Seconds);
    const retry = results.some((r) => r.retry);
    log.info({ deployments: results.length, phase1Seconds, retry }, 'phase 1 done: every affected Deployment patched');

    const settled = this.phaseTwo(event, results, phase1Done);
    const outcome = retry ? 'partial' : 'migrated';
    this.ctx.metrics.interruptionsHandled.inc({ outcome });
    return { ack: !retry, outcome, settled };
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
