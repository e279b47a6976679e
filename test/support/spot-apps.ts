// Shared set-up of the end-to-end tests that move a few opted-in Deployments off one spot pool.
import type { InterruptionInjector } from '../../testground/src/injector.js';
import { appDeployment, eventually, type TestGround, uniqueName } from './ground.js';

/** Opted-in Deployments pinned to a fresh spot pool of their own, every replica Ready before it returns. */
export async function spotAppsOnFreshPool(
  t: TestGround,
  injector: InterruptionInjector,
  namespace: string,
  o: { apps: number; nodes?: number; replicas?: number; prefix?: string },
): Promise<{ pool: string; names: string[]; nodes: string[] }> {
  const replicas = o.replicas ?? 2;
  const pool = uniqueName('pool');
  const nodes = await injector.addSpotNodes(o.nodes ?? 2, { name: pool, suffix: '' });
  const names = Array.from({ length: o.apps }, (_, i) => uniqueName(`${o.prefix ?? 'app'}${o.apps > 1 ? i : ''}`));
  for (const name of names) {
    await t.apps.createNamespacedDeployment({
      namespace,
      body: appDeployment({
        namespace,
        name,
        replicas,
        annotations: { 'spot-orchestrator/enabled': 'true' },
        nodeSelector: { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool },
      }),
    });
  }
  await eventually(
    'ready on spot',
    async () => {
      const list = await t.apps.listNamespacedDeployment({ namespace });
      const ours = list.items.filter((d) => names.includes(d.metadata!.name!));
      return ours.length === names.length && ours.every((d) => (d.status?.readyReplicas ?? 0) >= replicas) ? true : undefined;
    },
    60_000,
  );
  return { pool, names, nodes };
}

/** Resolves once phase 1 has begun: a Deployment of the namespace carries the migrating phase. */
export async function firstPatchSeen(t: TestGround, namespace: string): Promise<void> {
  await eventually(
    'the first patch',
    async () => {
      const list = await t.apps.listNamespacedDeployment({ namespace });
      return list.items.some((d) => d.metadata?.annotations?.['spot-orchestrator/phase'] === 'migrating') ? true : undefined;
    },
    30_000,
    20,
  );
}
