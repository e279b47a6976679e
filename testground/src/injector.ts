// Spot (and Capacity Reservation) interruptions as AWS delivers them, and AWS Health scheduled
// changes: the event goes through EventBridge to the queue, and when a warning's window ends the
// instance dies: its pods stop being Ready and vanish, then the node goes,
// at once (not when pod garbage collection would notice), so capacity drops exactly when it would.
import { PatchStrategy, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import { publishEc2Events, publishHealthEvents } from './aws.js';
import { scaled, type Ground, type GroundClients } from './ground.js';
import { createPool, instanceIdOf, waitForNodesReady, type PoolSpec } from './nodes.js';

export const WARNING_WINDOW_MS = 120_000;

export interface InterruptedInstance {
  node: string;
  instanceId: string;
  zone: string;
}

export interface Interruption {
  instances: InterruptedInstance[];
  warnedAt: Date;
  /** When the instances die, in simulated (scaled) time. */
  terminatesAt: Date;
  /** Resolves once every instance is gone. */
  terminated: Promise<void>;
}

export class InterruptionInjector {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly ground: Ground,
    private readonly clients: GroundClients,
  ) {}

  private async describe(nodeNames: string[]): Promise<InterruptedInstance[]> {
    return Promise.all(
      nodeNames.map(async (name) => {
        const node: V1Node = await this.clients.core.readNode({ name });
        return { node: name, instanceId: instanceIdOf(node), zone: node.metadata?.labels?.['topology.kubernetes.io/zone'] ?? 'us-east-1a' };
      }),
    );
  }

  /** Warns about the nodes now; terminates them when the (scaled) window ends unless told not to. */
  interrupt(nodeNames: string[], opts: { windowMs?: number; terminate?: boolean } = {}): Promise<Interruption> {
    return this.warn('EC2 Spot Instance Interruption Warning', nodeNames, opts);
  }

  /**
   * An EC2 Capacity Reservation Instance Interruption Warning for the nodes (instances in an
   * interruptible Capacity Reservation): the same two minutes, then the same end.
   */
  interruptCapacityReservation(nodeNames: string[], opts: { windowMs?: number; terminate?: boolean } = {}): Promise<Interruption> {
    return this.warn('EC2 Capacity Reservation Instance Interruption Warning', nodeNames, opts);
  }

  /**
   * An AWS Health EC2 scheduled change (instance retirement by default) for the nodes, starting at
   * `startTime` (whole seconds, as Health writes it). Nothing happens to the nodes: what the change
   * does at startTime is the test's to play (terminateNode, or nothing for a node that survives).
   */
  async scheduleChange(
    nodeNames: string[],
    startTime: Date,
    opts: { eventTypeCode?: string } = {},
  ): Promise<{ instances: InterruptedInstance[]; startTime: Date }> {
    const instances = await this.describe(nodeNames);
    const wholeSeconds = new Date(Math.floor(startTime.getTime() / 1000) * 1000);
    await publishHealthEvents(this.ground, [
      { instanceIds: instances.map((i) => i.instanceId), startTime: wholeSeconds, eventTypeCode: opts.eventTypeCode, time: new Date() },
    ]);
    return { instances, startTime: wholeSeconds };
  }

  private async warn(
    detailType: 'EC2 Spot Instance Interruption Warning' | 'EC2 Capacity Reservation Instance Interruption Warning',
    nodeNames: string[],
    opts: { windowMs?: number; terminate?: boolean },
  ): Promise<Interruption> {
    const instances = await this.describe(nodeNames);
    const warnedAt = new Date();
    await publishEc2Events(
      this.ground,
      instances.map((i) => ({
        detailType,
        instanceId: i.instanceId,
        zone: i.zone,
        detail: { 'instance-action': 'terminate' },
        time: warnedAt,
      })),
    );
    const windowMs = scaled(this.ground, opts.windowMs ?? WARNING_WINDOW_MS);
    const terminatesAt = new Date(warnedAt.getTime() + windowMs);
    const terminated =
      opts.terminate === false
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => {
              this.timers.delete(timer);
              Promise.all(nodeNames.map((n) => this.terminateNode(n))).then(() => resolve(), reject);
            }, windowMs);
            this.timers.add(timer);
          });
    return { instances, warnedAt, terminatesAt, terminated };
  }

  async rebalance(nodeNames: string[]): Promise<InterruptedInstance[]> {
    const instances = await this.describe(nodeNames);
    await publishEc2Events(
      this.ground,
      instances.map((i) => ({
        detailType: 'EC2 Instance Rebalance Recommendation' as const,
        instanceId: i.instanceId,
        zone: i.zone,
        detail: {},
        time: new Date(),
      })),
    );
    return instances;
  }

  /**
   * The instance is gone: its pods lose readiness, the node disappears (so nothing new is bound to
   * it), and the pods are removed without grace, including any bound in the meantime.
   */
  async terminateNode(name: string): Promise<void> {
    const podsOnNode = async () => (await this.clients.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${name}` })).items;
    const notReady = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
    const pods = await podsOnNode();
    await Promise.all(
      pods.map((pod) =>
        this.clients.core
          .patchNamespacedPodStatus(
            {
              name: pod.metadata!.name!,
              namespace: pod.metadata!.namespace!,
              body: { status: { conditions: [{ type: 'Ready', status: 'False', reason: 'InstanceTerminated' }] } },
            },
            notReady,
          )
          .catch(ignoreNotFound),
      ),
    );
    await this.clients.core.deleteNode({ name }).catch(ignoreNotFound);
    for (let pass = 0; pass < 3; pass++) {
      const left = pass === 0 ? pods : await podsOnNode();
      if (pass > 0 && left.length === 0) return;
      await Promise.all(
        left.map((pod) =>
          this.clients.core
            .deleteNamespacedPod({ name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, gracePeriodSeconds: 0 })
            .catch(ignoreNotFound),
        ),
      );
    }
  }

  /** Capacity coming back: fresh spot nodes, Ready before this resolves. */
  async addSpotNodes(count: number, pool: Partial<PoolSpec> = {}): Promise<string[]> {
    const nodes = await createPool(this.clients.core, {
      name: 'spot-fresh',
      capacityType: 'SPOT',
      count,
      suffix: `${Date.now().toString(36)}-`,
      ...pool,
    });
    const names = nodes.map((n) => n.metadata!.name!);
    await waitForNodesReady(this.clients.core, names);
    return names;
  }

  /** Stops pending terminations (for tests that end before the window does). */
  cancel(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

function ignoreNotFound(err: unknown): void {
  if ((err as { code?: number }).code !== 404) throw err;
}
