// What the caches keep of each kind: exactly the fields the controller reads (so a trimmed object is
// as small as it can be), every reader gives the same answer on the trimmed copy as on the full
// object, and a Deployment keeps everything the patch planners read, so the ops planned from the
// cached copy are those planned from the object as the API server sent it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1EndpointSlice, V1ManagedFieldsEntry, V1Node, V1Pod, V1ReplicaSet, V1Service } from '@kubernetes/client-node';
import { parseProviderId } from '../events/provider-id.js';
import { planFinish, planMigration, planRestoreToSpot } from '../migration/plan.js';
import { evaluateRollout } from '../migration/rollout.js';
import { TEST_SIGNER, migrationInput, serverApply, spotDeployment } from '../migration/test-fixtures.js';
import { NODE_ANNOTATIONS } from '../state/annotations.js';
import { isNodeReady, isPodReady } from './cluster-view.js';
import { trimDeployment, trimEndpointSlice, trimNode, trimPod, trimReplicaSet, trimService } from './trim.js';

const managedFields: V1ManagedFieldsEntry[] = [
  { manager: 'kube-controller-manager', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:status': { 'f:conditions': {} } } },
  { manager: 'kubectl', operation: 'Apply', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': { 'f:containers': {} } } },
];

const deletedAt = new Date('2026-11-30T12:00:00Z');

function fullPod(): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'api-7d9c-abcde',
      namespace: 'prod',
      uid: 'pod-uid',
      resourceVersion: '812',
      generateName: 'api-7d9c-',
      creationTimestamp: new Date('2026-11-30T11:00:00Z'),
      deletionTimestamp: deletedAt,
      labels: { app: 'api', 'pod-template-hash': '7d9c' },
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-11-30T10:00:00Z' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'api-7d9c', uid: 'rs-uid', controller: true, blockOwnerDeletion: true }],
      managedFields,
    },
    spec: {
      nodeName: 'spot-1',
      containers: [{ name: 'web', image: 'ghcr.io/acme/api:1.2.3', env: [{ name: 'A', value: 'b' }], resources: { requests: { cpu: '250m' } } }],
      tolerations: [{ key: 'spot', operator: 'Exists', effect: 'NoSchedule' }],
      volumes: [{ name: 'token', projected: { sources: [] } }],
    },
    status: {
      phase: 'Running',
      podIP: '10.0.0.12',
      conditions: [
        { type: 'PodScheduled', status: 'True' },
        { type: 'Ready', status: 'True', lastTransitionTime: new Date('2026-11-30T11:00:05Z') },
        { type: 'ContainersReady', status: 'True' },
      ],
      containerStatuses: [{ name: 'web', image: 'ghcr.io/acme/api:1.2.3', imageID: 'sha256:abc', ready: true, restartCount: 0 }],
    },
  };
}

function fullNode(): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: 'spot-1',
      uid: 'node-uid',
      resourceVersion: '77',
      labels: { 'compute-type': 'spot', 'karpenter.sh/capacity-type': 'spot', 'topology.kubernetes.io/zone': 'eu-west-1a' },
      annotations: { [NODE_ANNOTATIONS.rebalanceRecommendedAt]: '2026-11-30T11:58:00Z', 'node.alpha.kubernetes.io/ttl': '0' },
      managedFields,
    },
    spec: {
      providerID: 'aws:///eu-west-1a/i-0abc123',
      podCIDR: '10.0.1.0/24',
      unschedulable: true,
      taints: [{ key: 'dedicated', value: 'api', effect: 'NoSchedule' }],
    },
    status: {
      conditions: [
        { type: 'MemoryPressure', status: 'False' },
        { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' },
      ],
      addresses: [{ type: 'InternalIP', address: '10.0.1.1' }],
      capacity: { cpu: '4', memory: '16Gi', pods: '110' },
      allocatable: { cpu: '3920m', memory: '15Gi', pods: '110' },
      images: [{ names: ['ghcr.io/acme/api:1.2.3'], sizeBytes: 123456789 }],
      nodeInfo: {
        architecture: 'amd64',
        bootID: 'b',
        containerRuntimeVersion: 'containerd://1.7',
        kernelVersion: '6.1',
        kubeProxyVersion: 'v1.31',
        kubeletVersion: 'v1.31',
        machineID: 'm',
        operatingSystem: 'linux',
        osImage: 'Amazon Linux 2023',
        systemUUID: 's',
      },
    },
  };
}

function fullReplicaSet(): V1ReplicaSet {
  const template = spotDeployment().spec!.template;
  return {
    metadata: {
      name: 'api-7d9c',
      namespace: 'prod',
      uid: 'rs-uid',
      resourceVersion: '700',
      labels: { app: 'api' },
      annotations: { 'deployment.kubernetes.io/revision': '7', 'deployment.kubernetes.io/desired-replicas': '3' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'api', uid: 'dep-uid', controller: true, blockOwnerDeletion: true }],
      managedFields,
    },
    spec: { replicas: 3, selector: { matchLabels: { app: 'api' } }, template },
    status: { replicas: 3, readyReplicas: 3, availableReplicas: 3, observedGeneration: 4 },
  };
}

function fullService(): V1Service {
  return {
    metadata: { name: 'api', namespace: 'prod', uid: 'svc-uid', resourceVersion: '50', labels: { app: 'api' }, managedFields },
    spec: { selector: { app: 'api' }, ports: [{ port: 80, targetPort: 8080 }], clusterIP: '10.96.0.12', type: 'ClusterIP' },
    status: { loadBalancer: {} },
  };
}

function fullEndpointSlice(): V1EndpointSlice {
  return {
    addressType: 'IPv4',
    metadata: {
      name: 'api-x7k2p',
      namespace: 'prod',
      uid: 'eps-uid',
      resourceVersion: '90',
      labels: { 'kubernetes.io/service-name': 'api', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'api', uid: 'svc-uid' }],
      managedFields,
    },
    endpoints: [
      {
        addresses: ['10.0.0.12'],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: 'spot-1',
        zone: 'eu-west-1a',
        targetRef: { kind: 'Pod', name: 'api-7d9c-abcde', namespace: 'prod', uid: 'pod-uid' },
      },
      { addresses: ['10.0.0.13'], conditions: { ready: false }, targetRef: { kind: 'Pod', name: 'api-7d9c-fghij' } },
      { addresses: ['10.0.0.14'] },
    ],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  };
}

describe('trimmed cache objects', () => {
  it('a Pod keeps its identity, owners, deletionTimestamp, nodeName and Ready condition, nothing else', () => {
    assert.deepEqual(trimPod(fullPod()), {
      metadata: {
        name: 'api-7d9c-abcde',
        namespace: 'prod',
        uid: 'pod-uid',
        resourceVersion: '812',
        deletionTimestamp: deletedAt,
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'api-7d9c', uid: 'rs-uid', controller: true }],
      },
      spec: { nodeName: 'spot-1' },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    });
    const pending: V1Pod = { metadata: { name: 'p', namespace: 'prod', resourceVersion: '1' }, spec: { containers: [] }, status: { phase: 'Pending' } };
    assert.deepEqual(trimPod(pending), { metadata: { name: 'p', namespace: 'prod', resourceVersion: '1' } });
  });

  it('a Pod reads the same trimmed as in full', () => {
    for (const ready of ['True', 'False']) {
      const pod = fullPod();
      pod.status!.conditions![1]!.status = ready;
      assert.equal(isPodReady(trimPod(pod)), isPodReady(pod));
    }
    const bare: V1Pod = { metadata: { name: 'p', namespace: 'prod' } };
    assert.equal(isPodReady(trimPod(bare)), false);
  });

  it('a Node keeps identity, labels, annotations, providerID, unschedulable, taints and Ready, nothing else', () => {
    const full = fullNode();
    assert.deepEqual(trimNode(full), {
      metadata: { name: 'spot-1', uid: 'node-uid', resourceVersion: '77', labels: full.metadata!.labels, annotations: full.metadata!.annotations },
      spec: { providerID: 'aws:///eu-west-1a/i-0abc123', unschedulable: true, taints: [{ key: 'dedicated', value: 'api', effect: 'NoSchedule' }] },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    });
  });

  it('a Node reads the same trimmed as in full: instance id and readiness', () => {
    // Spot detection, risk, health and fit (src/controller/capacity.ts, src/recovery/node-fit.ts) read
    // labels, annotations, unschedulable, taints and the name, which the shape above shows kept as
    // they are; they are not imported here, as src/kube sits below those folders.
    for (const ready of ['True', 'False', 'Unknown']) {
      const n = fullNode();
      n.status!.conditions![1]!.status = ready;
      assert.equal(isNodeReady(trimNode(n)), isNodeReady(n));
      assert.deepEqual(parseProviderId(trimNode(n).spec?.providerID), parseProviderId(n.spec?.providerID));
    }
    assert.equal(isNodeReady(trimNode({ metadata: { name: 'new' } })), false);
  });

  it('a ReplicaSet keeps identity, owners and the revision annotation only', () => {
    assert.deepEqual(trimReplicaSet(fullReplicaSet()), {
      metadata: {
        name: 'api-7d9c',
        namespace: 'prod',
        uid: 'rs-uid',
        resourceVersion: '700',
        annotations: { 'deployment.kubernetes.io/revision': '7' },
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'api', uid: 'dep-uid', controller: true }],
      },
    });
  });

  it('a Service keeps identity and its selector only', () => {
    assert.deepEqual(trimService(fullService()), {
      metadata: { name: 'api', namespace: 'prod', uid: 'svc-uid', resourceVersion: '50' },
      spec: { selector: { app: 'api' } },
    });
  });

  it('an EndpointSlice keeps identity, its service-name label and, per endpoint, ready and the target kind and name', () => {
    assert.deepEqual(trimEndpointSlice(fullEndpointSlice()), {
      metadata: { name: 'api-x7k2p', namespace: 'prod', uid: 'eps-uid', resourceVersion: '90', labels: { 'kubernetes.io/service-name': 'api' } },
      endpoints: [
        { conditions: { ready: true }, targetRef: { kind: 'Pod', name: 'api-7d9c-abcde' } },
        { conditions: { ready: false }, targetRef: { kind: 'Pod', name: 'api-7d9c-fghij' } },
        {},
      ],
    });
  });

  it('a Deployment loses managedFields and nothing else', () => {
    const full = { ...spotDeployment(), status: { observedGeneration: 7, replicas: 3, updatedReplicas: 3, availableReplicas: 3 } };
    full.metadata!.managedFields = managedFields;
    const trimmed = trimDeployment(full);
    const { managedFields: _gone, ...metadata } = full.metadata!;
    assert.deepEqual(trimmed, { ...full, metadata });
    assert.equal(full.metadata!.managedFields, managedFields, 'the object handed in is not changed');
    const withoutManagedFields = spotDeployment();
    assert.equal(trimDeployment(withoutManagedFields), withoutManagedFields);
  });

  it('a Deployment plans the same patches trimmed as in full: migration, restore, finish, rollout', () => {
    const withFields = (d: V1Deployment): V1Deployment => ({ ...d, metadata: { ...d.metadata, managedFields } });
    const spot = withFields({ ...spotDeployment(), status: { observedGeneration: 7, replicas: 3, updatedReplicas: 3, availableReplicas: 3 } });
    const affinityPinned = withFields(spotDeployment());
    affinityPinned.spec!.template.spec!.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'compute-type', operator: 'In', values: ['spot'] }] }],
        },
      },
    };
    for (const d of [spot, affinityPinned]) {
      const migration = planMigration(d, migrationInput());
      assert.deepEqual(planMigration(trimDeployment(d), migrationInput()), migration);
      assert.equal(migration.action, 'patch');
      if (migration.action !== 'patch') continue;
      const onFargate = withFields(serverApply(d, migration.ops));
      const now = new Date('2026-11-30T12:00:00Z');
      assert.deepEqual(
        planRestoreToSpot(trimDeployment(onFargate), { purpose: 'recovery', now, signer: TEST_SIGNER }),
        planRestoreToSpot(onFargate, { purpose: 'recovery', now, signer: TEST_SIGNER }),
      );
      assert.deepEqual(planFinish(trimDeployment(onFargate), { kind: 'migrated' }, TEST_SIGNER), planFinish(onFargate, { kind: 'migrated' }, TEST_SIGNER));
      const clock = { startedAt: now, now, timeoutMs: 60_000 };
      assert.deepEqual(evaluateRollout(trimDeployment(d), clock), evaluateRollout(d, clock));
    }
  });
});
