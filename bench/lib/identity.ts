// Who the benchmark's controller (and the floor, which stands in for it) is to the API server.
//
// The admin certificate is in group system:masters, which API Priority and Fairness exempts: its
// requests never queue, whatever else the API server is doing. A controller installed from the chart
// is a ServiceAccount whose requests the chart's FlowSchema puts on a priority level of its own. The
// benchmark runs as the latter by default, so phase 1 is measured with the priority it ships with and
// the floor is held to the same rules.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  FlowcontrolApiserverV1Api,
  loadAllYaml,
  type KubernetesObject,
  type V1FlowSchema,
  type V1PriorityLevelConfiguration,
  type V1ServiceAccount,
} from '@kubernetes/client-node';
import { ensureClusterAdminServiceAccount, writeServiceAccountKubeconfig } from '../../testground/src/ground.js';
import { PROJECT_DIR } from './controller-process.js';
import { type Bench, retrying } from './context.js';

/** The manifests users apply without helm (scripts/generate-manifests.sh renders them from the chart). */
export const GENERATED_MANIFESTS = join(PROJECT_DIR, 'deployments/kubernetes/spot-fargate-orchestrator.yaml');

export type BenchIdentity = 'service-account' | 'admin';

export interface ControllerIdentity {
  kubeconfig: string;
  /** For the report: who the requests came from and which FlowSchema matched them. */
  describe: string;
}

function isKind<T extends KubernetesObject>(kind: string) {
  return (o: KubernetesObject): o is T => o.kind === kind;
}

export interface ShippedPriority {
  serviceAccount: V1ServiceAccount;
  flowSchema: V1FlowSchema;
  priorityLevel: V1PriorityLevelConfiguration;
}

/** The ServiceAccount, FlowSchema and priority level exactly as the generated manifests ship them. */
export function shippedPriority(manifests = readFileSync(GENERATED_MANIFESTS, 'utf8')): ShippedPriority {
  const objects = (loadAllYaml(manifests) as (KubernetesObject | null)[]).filter((o): o is KubernetesObject => !!o?.kind);
  const one = <T extends KubernetesObject>(kind: string): T => {
    const found = objects.filter(isKind<T>(kind));
    if (found.length !== 1) throw new Error(`${GENERATED_MANIFESTS}: expected one ${kind}, found ${found.length}`);
    return found[0]!;
  };
  const serviceAccount = one<V1ServiceAccount>('ServiceAccount');
  const flowSchema = one<V1FlowSchema>('FlowSchema');
  const priorityLevel = one<V1PriorityLevelConfiguration>('PriorityLevelConfiguration');
  const subject = flowSchema.spec?.rules?.[0]?.subjects?.[0]?.serviceAccount;
  if (subject?.name !== serviceAccount.metadata?.name || subject?.namespace !== serviceAccount.metadata?.namespace) {
    throw new Error(`${GENERATED_MANIFESTS}: the FlowSchema does not name the ServiceAccount it ships with`);
  }
  return { serviceAccount, flowSchema, priorityLevel };
}

/**
 * The bench's own copy of the shipped identity: the FlowSchema's rules and the priority level's spec
 * as shipped, under names of the bench's own, so that a release of the chart on the same ground (the
 * e2e suite installs one as documented) finds none of its names taken.
 */
export const BENCH_IDENTITY_NAME = 'spot-bench-controller';
export const BENCH_IDENTITY_NAMESPACE = 'spot-bench-identity';

export function benchPriority(shipped: ShippedPriority = shippedPriority()): ShippedPriority {
  const name = BENCH_IDENTITY_NAME;
  const namespace = BENCH_IDENTITY_NAMESPACE;
  const spec = shipped.flowSchema.spec!;
  return {
    serviceAccount: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } },
    priorityLevel: { ...shipped.priorityLevel, metadata: { name } },
    flowSchema: {
      ...shipped.flowSchema,
      metadata: { name },
      spec: {
        ...spec,
        priorityLevelConfiguration: { name },
        rules: (spec.rules ?? []).map((rule) => ({ ...rule, subjects: [{ kind: 'ServiceAccount', serviceAccount: { name, namespace } }] })),
      },
    },
  };
}

/**
 * Installs the bench's copy of the shipped ServiceAccount, FlowSchema and priority level, and writes
 * a kubeconfig with a token for that ServiceAccount. Its permissions come from a cluster-admin binding
 * rather than the chart's Roles: the scenarios create their namespaces as they go, and RBAC's cost is
 * not what is measured (the chart's RBAC is proven in test/e2e/shipping.test.ts and doctor.test.ts).
 */
export async function controllerIdentity(b: Bench): Promise<ControllerIdentity> {
  if (b.options.identity === 'admin') {
    return { kubeconfig: b.ground.kubeconfig, describe: 'the admin certificate (system:masters: exempt from API Priority and Fairness)' };
  }
  const { serviceAccount, flowSchema, priorityLevel } = benchPriority();
  const name = serviceAccount.metadata!.name!;
  const namespace = serviceAccount.metadata!.namespace!;
  const flow = b.kc.makeApiClient(FlowcontrolApiserverV1Api);
  await ensureClusterAdminServiceAccount(b, { namespace, name }, retrying);
  // Replaced, not kept, so that a ground reused across chart changes runs the current priority level.
  await retrying(() => flow.deletePriorityLevelConfiguration({ name: priorityLevel.metadata!.name! }).catch(ignoreMissing));
  await retrying(() => flow.deleteFlowSchema({ name: flowSchema.metadata!.name! }).catch(ignoreMissing));
  await retrying(() => flow.createPriorityLevelConfiguration({ body: priorityLevel }));
  await retrying(() => flow.createFlowSchema({ body: flowSchema }));
  // Long enough for the longest series; the controller reads its kubeconfig once, at start.
  const kubeconfig = await retrying(() => writeServiceAccountKubeconfig(b, { namespace, name }, join(b.workDir, `${name}.kubeconfig`), 6 * 3600));
  return {
    kubeconfig,
    describe: `ServiceAccount ${namespace}/${name}, matched by the shipped FlowSchema's rules as ${flowSchema.metadata!.name} (the shipped priority level as ${priorityLevel.metadata!.name}: ${priorityLevel.spec?.limited?.nominalConcurrencyShares} shares, lends ${priorityLevel.spec?.limited?.lendablePercent ?? 0} %)`,
  };
}

const ignoreMissing = (err: unknown) => {
  if ((err as { code?: number }).code !== 404) throw err;
};
