// The fargate-scheduler as EKS runs it: every pod handed to it gets a micro-VM of its own, which
// appears as a node (fargate-ip-…) after a provisioning delay; the pod is bound to it and the node
// goes when the pod goes. A pod Fargate cannot run stays Pending with an Event that says why.
import { CoreV1Api, type KubeConfig, type V1Node, type V1Pod } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { resilientInformer, type ResilientInformer } from '../../../src/kube/informer.js';
import { KWOK_ANNOTATION } from '../nodes.js';
import { fargateRejects } from './refusal.js';
import { FARGATE_SCHEDULER } from './webhook.js';

export const FARGATE_NODE_LABEL = 'eks.amazonaws.com/compute-type';

export interface FargateSchedulerOptions {
  /** Time from a pod's arrival to its node existing and the pod being bound to it (scaled). */
  provisioningDelayMs: number;
  log?: (line: string) => void;
  /** Concurrent API calls, so a wave of thousands of pods does not flood the API server. */
  concurrency?: number;
}

const key = (pod: V1Pod) => `${pod.metadata?.namespace}/${pod.metadata?.name}`;

export class FargateScheduler {
  private readonly core: CoreV1Api;
  private readonly informer: ResilientInformer<V1Pod>;
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly refused = new Set<string>();
  private readonly limit;
  private nextIp = 0;

  constructor(
    kc: KubeConfig,
    private readonly options: FargateSchedulerOptions,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.limit = pLimit(options.concurrency ?? 50);
    this.informer = resilientInformer<V1Pod>(kc, '/api/v1/pods', () => this.core.listPodForAllNamespaces(), {
      onError: (err, wait) => this.log(`pod watch failed, restarting in ${wait} ms: ${String(err)}`),
    });
    this.informer.cache.on('add', (pod) => this.consider(pod));
    this.informer.cache.on('update', (pod) => this.consider(pod));
    this.informer.cache.on('delete', (pod) => this.forget(pod));
  }

  async start(): Promise<void> {
    await this.informer.start();
  }

  async stop(): Promise<void> {
    for (const timer of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
    await this.informer.stop();
  }

  private log(line: string) {
    this.options.log?.(line);
  }

  private consider(pod: V1Pod): void {
    const k = key(pod);
    if (pod.spec?.schedulerName !== FARGATE_SCHEDULER || pod.spec.nodeName || pod.metadata?.deletionTimestamp) return;
    if (this.pending.has(k) || this.refused.has(k)) return;
    const why = fargateRejects(pod);
    if (why) {
      this.refused.add(k);
      void this.limit(() => this.refuse(pod, why));
      return;
    }
    this.pending.set(
      k,
      setTimeout(() => {
        this.pending.delete(k);
        void this.limit(() => this.provision(pod));
      }, this.options.provisioningDelayMs),
    );
  }

  private forget(pod: V1Pod): void {
    const k = key(pod);
    const timer = this.pending.get(k);
    if (timer) clearTimeout(timer);
    this.pending.delete(k);
    this.refused.delete(k);
    const node = pod.spec?.nodeName;
    if (node?.startsWith('fargate-')) {
      void this.limit(async () => {
        try {
          await this.core.deleteNode({ name: node });
        } catch (err) {
          if ((err as { code?: number }).code !== 404) this.log(`deleting ${node}: ${String(err)}`);
        }
      });
    }
  }

  private fargateNode(pod: V1Pod): V1Node {
    const n = this.nextIp++;
    const ip = `10.200.${(n >> 8) & 255}.${n & 255}`;
    const zone = ['us-east-1a', 'us-east-1b', 'us-east-1c'][n % 3]!;
    const name = `fargate-ip-${ip.replaceAll('.', '-')}.ec2.internal`;
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        annotations: { ...KWOK_ANNOTATION, 'testground.spot-fargate.io/pod': key(pod) },
        labels: {
          [FARGATE_NODE_LABEL]: 'fargate',
          'kubernetes.io/hostname': name,
          'kubernetes.io/os': 'linux',
          'topology.kubernetes.io/zone': zone,
          type: 'kwok',
        },
      },
      spec: {
        providerID: `aws:///${zone}/fargate-${n.toString(16).padStart(8, '0')}`,
        taints: [{ key: FARGATE_NODE_LABEL, value: 'fargate', effect: 'NoSchedule' }],
      },
      status: {
        allocatable: { cpu: '4', memory: '30Gi', pods: '1' },
        capacity: { cpu: '4', memory: '30Gi', pods: '1' },
      },
    };
  }

  private async provision(pod: V1Pod): Promise<void> {
    const namespace = pod.metadata!.namespace!;
    const name = pod.metadata!.name!;
    const current = this.informer.cache.get(name, namespace);
    if (!current || current.spec?.nodeName || current.metadata?.deletionTimestamp) return;
    const node = this.fargateNode(pod);
    try {
      await this.core.createNode({ body: node });
      await this.core.createNamespacedBinding({
        namespace,
        body: { apiVersion: 'v1', kind: 'Binding', metadata: { name, namespace }, target: { apiVersion: 'v1', kind: 'Node', name: node.metadata!.name! } },
      });
    } catch (err) {
      this.log(`provisioning Fargate capacity for ${namespace}/${name}, retrying in 1 s: ${String(err)}`);
      await this.core.deleteNode({ name: node.metadata!.name! }).catch(() => undefined);
      const k = key(pod);
      this.pending.set(
        k,
        setTimeout(() => {
          this.pending.delete(k);
          void this.limit(() => this.provision(pod));
        }, 1000),
      );
    }
  }

  private async refuse(pod: V1Pod, why: string): Promise<void> {
    const namespace = pod.metadata!.namespace!;
    const name = pod.metadata!.name!;
    this.log(`refusing ${namespace}/${name}: ${why}`);
    const now = new Date();
    try {
      await this.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${name}.`, namespace },
          involvedObject: { kind: 'Pod', namespace, name, uid: pod.metadata?.uid, apiVersion: 'v1' },
          reason: 'FailedScheduling',
          message: `Pod not supported on Fargate: ${why}`,
          type: 'Warning',
          source: { component: FARGATE_SCHEDULER },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      this.log(`recording the refusal of ${namespace}/${name}: ${String(err)}`);
    }
  }
}
