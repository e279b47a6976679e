// The fargate-scheduler as EKS runs it. A pod handed to it asks AWS for a launch; launches are
// throttled per account by a token bucket (token-bucket.ts), so a pod that finds the bucket empty
// stays Pending, with a FargateLaunchThrottled Event, until a token frees, and pods launch in
// creation order. A launched pod gets a micro-VM of its own after a start-up time drawn from a
// seeded distribution (timing.ts); the micro-VM appears as a node (fargate-ip-…), the pod is bound to
// it once its kubelet (KWOK) heartbeats, and the node goes when the pod goes. A pod Fargate cannot run
// stays Pending with an Event that says why.
import { CoordinationV1Api, CoreV1Api, type KubeConfig, type V1Lease, type V1Node, type V1Pod } from '@kubernetes/client-node';
import pLimit from 'p-limit';
import { type Clock, systemClock, type Timer } from '../../../src/clock.js';
import { resilientInformer, type ResilientInformer } from '../../../src/kube/informer.js';
import { KWOK_ANNOTATION } from '../nodes.js';
import { LaunchQueue } from './launch-queue.js';
import { type Random, seededRandom } from './random.js';
import { fargateRejects } from './refusal.js';
import { type FargateSettings, realThrottle } from './settings.js';
import { drawStartMs } from './timing.js';
import { TokenBucket } from './token-bucket.js';
import { FARGATE_SCHEDULER } from './webhook.js';

export const FARGATE_NODE_LABEL = 'eks.amazonaws.com/compute-type';
export const THROTTLED_REASON = 'FargateLaunchThrottled';
/** On each Fargate node: the pod it was made for (namespace/name). */
export const NODE_POD_ANNOTATION = 'testground.spot-fargate.io/pod';
/**
 * On each Fargate node: `<draw index>/<start-up ms>`, the index of its pod's start-up draw in the
 * simulator's seeded sequence (0 for the first launch since the simulator started) and the time drawn
 * (real ms, unscaled), so a benchmark can model the same launches from the seed.
 */
export const NODE_DRAW_ANNOTATION = 'testground.spot-fargate.io/start-draw';

export interface FargateSchedulerOptions {
  settings: FargateSettings;
  /** The ground's time scale: start-up times and the throttle's refill are simulated time. */
  timeScale: number;
  /**
   * Pods with this schedulerName are this scheduler's (default fargate-scheduler, which the webhook
   * sets). A test can run a scheduler of its own beside the ground's under another name.
   */
  schedulerName?: string;
  /** First two octets of the node IPs, so two schedulers on one ground never name a node alike. */
  subnet?: string;
  log?: (line: string) => void;
  /** Concurrent API calls, so a wave of thousands of pods does not flood the API server. */
  concurrency?: number;
  clock?: Clock;
}

function nodeConditions(now: Date) {
  const condition = (type: string, status: 'True' | 'False', reason: string, message: string) => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: now,
  });
  return [
    condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
    condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
    condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
    condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
    condition('NetworkUnavailable', 'False', 'RouteCreated', 'RouteController created a route'),
  ];
}

/** How long a created node may wait for KWOK to take it before the pod is bound regardless. */
const NODE_HEARTBEAT_WAIT_MS = 120_000;

const key = (pod: V1Pod) => `${pod.metadata?.namespace}/${pod.metadata?.name}`;
const isConflict = (err: unknown) => (err as { code?: number }).code === 409;

export class FargateScheduler {
  private readonly core: CoreV1Api;
  private readonly informer: ResilientInformer<V1Pod>;
  /** Node Leases: KWOK holds a node's Lease once it plays that node's kubelet. */
  private readonly leases: ResilientInformer<V1Lease>;
  private readonly leaseWaiters = new Map<string, () => void>();
  private readonly clock: Clock;
  private readonly queue: LaunchQueue<V1Pod>;
  private readonly random: Random;
  /** Launched pods whose micro-VM is starting. */
  private readonly starting = new Map<string, Timer>();
  /** Launched pods' start-up draws (index in the sequence, real ms), written on their nodes. */
  private readonly draws = new Map<string, string>();
  private drawn = 0;
  private readonly refused = new Set<string>();
  /** Pods told they are throttled: one Event each, not one per retry. */
  private readonly throttled = new Set<string>();
  private readonly limit;
  private readonly schedulerName: string;
  private readonly subnet: string;
  private pumpTimer: Timer | undefined;
  private nextIp = 0;

  constructor(
    kc: KubeConfig,
    private readonly options: FargateSchedulerOptions,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.clock = options.clock ?? systemClock;
    this.schedulerName = options.schedulerName ?? FARGATE_SCHEDULER;
    this.subnet = options.subnet ?? '10.200';
    this.queue = new LaunchQueue(new TokenBucket(realThrottle(options.settings.throttle, options.timeScale), this.clock.now().getTime()));
    this.random = seededRandom(options.settings.seed);
    this.limit = pLimit(options.concurrency ?? 50);
    this.informer = resilientInformer<V1Pod>(kc, '/api/v1/pods', () => this.core.listPodForAllNamespaces(), {
      onError: (err, wait) => this.log(`pod watch failed, restarting in ${wait} ms: ${String(err)}`),
    });
    this.informer.cache.on('add', (pod) => this.consider(pod));
    this.informer.cache.on('update', (pod) => this.consider(pod));
    this.informer.cache.on('delete', (pod) => this.forget(pod));
    const coordination = kc.makeApiClient(CoordinationV1Api);
    this.leases = resilientInformer<V1Lease>(
      kc,
      '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases',
      () => coordination.listNamespacedLease({ namespace: 'kube-node-lease' }),
      { onError: (err, wait) => this.log(`lease watch failed, restarting in ${wait} ms: ${String(err)}`) },
    );
    const heldLease = (lease: V1Lease) => {
      const name = lease.metadata?.name;
      const waiter = name ? this.leaseWaiters.get(name) : undefined;
      if (waiter && lease.spec?.holderIdentity) waiter();
    };
    this.leases.cache.on('add', heldLease);
    this.leases.cache.on('update', heldLease);
  }

  async start(): Promise<void> {
    // Leases first: the pod informer's first list can already provision.
    await this.leases.start();
    await this.informer.start();
  }

  async stop(): Promise<void> {
    for (const timer of this.starting.values()) timer.cancel();
    this.starting.clear();
    this.pumpTimer?.cancel();
    for (const wake of this.leaseWaiters.values()) wake();
    await this.informer.stop();
    await this.leases.stop();
  }

  private log(line: string) {
    this.options.log?.(line);
  }

  private scaled(realMs: number): number {
    return Math.max(1, Math.round(realMs * this.options.timeScale));
  }

  private consider(pod: V1Pod): void {
    const k = key(pod);
    if (pod.spec?.schedulerName !== this.schedulerName || pod.spec.nodeName || pod.metadata?.deletionTimestamp) return;
    if (this.starting.has(k) || this.refused.has(k) || this.queue.has(k)) return;
    const why = fargateRejects(pod);
    if (why) {
      this.refused.add(k);
      void this.limit(() => this.refuse(pod, why));
      return;
    }
    const created = pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : this.clock.now().getTime();
    this.queue.add(k, pod, created);
    this.pump();
    if (this.queue.has(k) && !this.throttled.has(k)) {
      this.throttled.add(k);
      void this.limit(() => this.recordThrottled(pod));
    }
  }

  /** Launches what the bucket allows and wakes up when the next token frees. */
  private pump(): void {
    const { launch, retryInMs } = this.queue.launchable(this.clock.now().getTime());
    for (const pod of launch) this.launch(pod);
    if (retryInMs !== undefined && !this.pumpTimer) {
      this.pumpTimer = this.clock.setTimer(() => {
        this.pumpTimer = undefined;
        this.pump();
      }, retryInMs);
    }
  }

  private launch(pod: V1Pod): void {
    const k = key(pod);
    // Drawn in launch order, which is creation order: the same seed and pods give the same times.
    const drawnMs = drawStartMs(this.options.settings.start, this.random);
    this.draws.set(k, `${this.drawn++}/${drawnMs}`);
    const startMs = this.scaled(drawnMs);
    this.starting.set(
      k,
      this.clock.setTimer(() => void this.provision(pod), startMs),
    );
  }

  /**
   * Resolves once KWOK holds the node's Lease (it then plays the node's kubelet), or after a bound.
   * A pod bound before that can be missed: KWOK skips pods on a node it does not manage yet, and
   * when it takes the node over it lists that node's pods from a cache that may still show the pod
   * unbound. So, as EKS binds a pod to its micro-VM once the kubelet there is up, the bind waits.
   */
  private nodeHeartbeating(node: string): Promise<void> {
    if (this.leases.cache.get(node, 'kube-node-lease')?.spec?.holderIdentity) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = this.clock.setTimer(() => {
        this.log(`no Lease for ${node} after ${NODE_HEARTBEAT_WAIT_MS} ms; binding its pod anyway`);
        done();
      }, NODE_HEARTBEAT_WAIT_MS);
      const done = () => {
        timer.cancel();
        this.leaseWaiters.delete(node);
        resolve();
      };
      this.leaseWaiters.set(node, done);
    });
  }

  private forget(pod: V1Pod): void {
    const k = key(pod);
    this.starting.get(k)?.cancel();
    this.starting.delete(k);
    this.draws.delete(k);
    this.queue.remove(k);
    this.refused.delete(k);
    this.throttled.delete(k);
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
    const ip = `${this.subnet}.${(n >> 8) & 255}.${n & 255}`;
    const zone = ['us-east-1a', 'us-east-1b', 'us-east-1c'][n % 3]!;
    const name = `fargate-ip-${ip.replaceAll('.', '-')}.ec2.internal`;
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        annotations: { ...KWOK_ANNOTATION, [NODE_POD_ANNOTATION]: key(pod), [NODE_DRAW_ANNOTATION]: this.draws.get(key(pod)) ?? '' },
        // The labels a kubelet registers with (the beta ones too), so the controller-manager has
        // none to add: a patch fewer per pod.
        labels: {
          [FARGATE_NODE_LABEL]: 'fargate',
          'kubernetes.io/hostname': name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          'beta.kubernetes.io/os': 'linux',
          'beta.kubernetes.io/arch': 'amd64',
          'topology.kubernetes.io/zone': zone,
          type: 'kwok',
        },
      },
      spec: {
        providerID: `aws:///${zone}/fargate-${n.toString(16).padStart(8, '0')}`,
        taints: [{ key: FARGATE_NODE_LABEL, value: 'fargate', effect: 'NoSchedule' }],
      },
      // Registered Ready with its status, as a kubelet registers a node it has started: the micro-VM
      // is up by the time it appears. KWOK's node-initialize stage (which acts on nodes not Ready)
      // then has nothing to write; its heartbeat and lease keep the node Ready from here.
      status: {
        allocatable: { cpu: '4', memory: '30Gi', pods: '1' },
        capacity: { cpu: '4', memory: '30Gi', pods: '1' },
        addresses: [
          { type: 'InternalIP', address: ip },
          { type: 'Hostname', address: name },
        ],
        conditions: nodeConditions(this.clock.now()),
        nodeInfo: {
          architecture: 'amd64',
          operatingSystem: 'linux',
          kubeletVersion: 'v1.34.4-eks-fargate',
          kubeProxyVersion: '',
          containerRuntimeVersion: 'containerd://1.7',
          kernelVersion: '',
          osImage: 'Amazon Linux 2',
          bootID: '',
          machineID: '',
          systemUUID: '',
        },
        phase: 'Running',
      },
    };
  }

  // The API calls go through `limit`; the wait for KWOK does not hold a slot, since it can be long
  // under load and thousands of pods wait at once.
  private async provision(pod: V1Pod): Promise<void> {
    const namespace = pod.metadata!.namespace!;
    const name = pod.metadata!.name!;
    const k = key(pod);
    const stillWanted = () => {
      const current = this.informer.cache.get(name, namespace);
      return this.starting.has(k) && current !== undefined && !current.spec?.nodeName && !current.metadata?.deletionTimestamp;
    };
    if (!stillWanted()) {
      this.starting.delete(k);
      return;
    }
    const node = this.fargateNode(pod);
    const nodeName = node.metadata!.name!;
    let created = false;
    try {
      await this.limit(() => this.core.createNode({ body: node }));
      created = true;
      await this.nodeHeartbeating(nodeName);
      if (!stillWanted()) {
        // The pod went while its node started: the node goes too.
        this.starting.delete(k);
        await this.limit(() => this.core.deleteNode({ name: nodeName })).catch(() => undefined);
        return;
      }
      await this.limit(() =>
        this.core.createNamespacedBinding({
          namespace,
          body: { apiVersion: 'v1', kind: 'Binding', metadata: { name, namespace }, target: { apiVersion: 'v1', kind: 'Node', name: nodeName } },
        }),
      );
      this.starting.delete(k);
    } catch (err) {
      // A name taken (by a node another scheduler made) only moves this pod to the next address.
      const taken = isConflict(err) && !created;
      if (!taken) this.log(`provisioning Fargate capacity for ${k}, retrying in 1 s: ${String(err)}`);
      if (created) await this.limit(() => this.core.deleteNode({ name: nodeName })).catch(() => undefined);
      if (!this.starting.has(k)) return;
      this.starting.set(
        k,
        this.clock.setTimer(() => void this.provision(pod), taken ? 0 : 1000),
      );
    }
  }

  private async recordThrottled(pod: V1Pod): Promise<void> {
    const { burst, perSecond } = this.options.settings.throttle;
    await this.event(
      pod,
      THROTTLED_REASON,
      `Fargate launch throttled: the account's launch token bucket (burst ${burst}, ${perSecond} launches/s) is empty; the pod launches when a token frees, in creation order`,
    );
  }

  private async refuse(pod: V1Pod, why: string): Promise<void> {
    this.log(`refusing ${key(pod)}: ${why}`);
    await this.event(pod, 'FailedScheduling', `Pod not supported on Fargate: ${why}`);
  }

  private async event(pod: V1Pod, reason: string, message: string): Promise<void> {
    const namespace = pod.metadata!.namespace!;
    const name = pod.metadata!.name!;
    const now = this.clock.now();
    try {
      await this.core.createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${name}.`, namespace },
          involvedObject: { kind: 'Pod', namespace, name, uid: pod.metadata?.uid, apiVersion: 'v1' },
          reason,
          message,
          type: 'Warning',
          source: { component: this.schedulerName },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      this.log(`recording ${reason} for ${namespace}/${name}: ${String(err)}`);
    }
  }
}
