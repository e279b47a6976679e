// Spot and on-demand node pools, labelled as EKS managed node groups and Karpenter label them.
import { randomBytes } from 'node:crypto';
import type { CoreV1Api, V1Node } from '@kubernetes/client-node';

export type CapacityType = 'SPOT' | 'ON_DEMAND';

export const KWOK_ANNOTATION = { 'kwok.x-k8s.io/node': 'fake' };

export interface PoolSpec {
  /** Node group name; nodes are called <name>-<n>. */
  name: string;
  capacityType: CapacityType;
  count: number;
  zones?: string[];
  instanceType?: string;
  /** The configurable compute label (compute_label_key), as users put it on spot node groups. */
  computeLabel?: { key: string; value: string };
  /** Appended to node names so tests can add fresh nodes to an existing pool. */
  suffix?: string;
  /** Pods each node holds (its `pods` capacity); 250 by default, far more than any test fills. */
  podsPerNode?: number;
}

export function newInstanceId(): string {
  return `i-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

export function poolNodes(spec: PoolSpec): V1Node[] {
  const zones = spec.zones ?? ['us-east-1a', 'us-east-1b', 'us-east-1c'];
  const instanceType = spec.instanceType ?? (spec.capacityType === 'SPOT' ? 'm5.xlarge' : 'm5.large');
  const computeLabel = spec.computeLabel ?? (spec.capacityType === 'SPOT' ? { key: 'compute-type', value: 'spot' } : undefined);
  const pods = String(spec.podsPerNode ?? 250);
  return Array.from({ length: spec.count }, (_, i) => {
    const zone = zones[i % zones.length]!;
    const instanceId = newInstanceId();
    const name = `${spec.name}-${spec.suffix ?? ''}${i}`;
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        annotations: { ...KWOK_ANNOTATION },
        labels: {
          'kubernetes.io/hostname': name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          type: 'kwok',
          'eks.amazonaws.com/nodegroup': spec.name,
          'eks.amazonaws.com/capacityType': spec.capacityType,
          'karpenter.sh/capacity-type': spec.capacityType === 'SPOT' ? 'spot' : 'on-demand',
          'node.kubernetes.io/instance-type': instanceType,
          'topology.kubernetes.io/zone': zone,
          'topology.kubernetes.io/region': zone.slice(0, -1),
          ...(computeLabel ? { [computeLabel.key]: computeLabel.value } : {}),
        },
      },
      spec: { providerID: `aws:///${zone}/${instanceId}` },
      status: {
        allocatable: { cpu: '32', memory: '256Gi', pods },
        capacity: { cpu: '32', memory: '256Gi', pods },
      },
    };
  });
}

export async function createPool(core: CoreV1Api, spec: PoolSpec): Promise<V1Node[]> {
  const nodes = poolNodes(spec);
  return Promise.all(nodes.map((body) => core.createNode({ body })));
}

export function instanceIdOf(node: V1Node): string {
  const id = node.spec?.providerID?.split('/').pop();
  if (!id?.startsWith('i-')) throw new Error(`node ${node.metadata?.name} has no EC2 providerID`);
  return id;
}

/** Resolves when every named node reports Ready (KWOK has taken it over). */
export async function waitForNodesReady(core: CoreV1Api, names: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const nodes = await core.listNode();
    const ready = new Set(
      nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).map((n) => n.metadata!.name!),
    );
    const missing = names.filter((n) => !ready.has(n));
    if (missing.length === 0) return;
    if (Date.now() > deadline) throw new Error(`nodes not Ready after ${timeoutMs} ms: ${missing.join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
