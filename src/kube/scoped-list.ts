// The managed namespaces' Deployments, listed once (the CLI's checks and dry runs; the controller
// itself watches, in cluster-view.ts). Listed namespaces are read one by one, so namespaced Roles are
// enough; "*" and a selector read across the cluster.
import { AppsV1Api, CoreV1Api, type KubeConfig, type V1Deployment } from '@kubernetes/client-node';
import { type NamespaceScope, namespaceInScope } from '../config/scope.js';

export interface ScopedDeployments {
  deployments: V1Deployment[];
  inScope: (namespace: string) => boolean;
}

export async function listScopedDeployments(kc: KubeConfig, scope: NamespaceScope): Promise<ScopedDeployments> {
  const apps = kc.makeApiClient(AppsV1Api);
  if (scope.kind === 'listed') {
    const lists = await Promise.all(scope.namespaces.map((namespace) => apps.listNamespacedDeployment({ namespace })));
    return { deployments: lists.flatMap((l) => l.items), inScope: (ns) => namespaceInScope(scope, ns, () => undefined) };
  }
  const [all, namespaces] = await Promise.all([
    apps.listDeploymentForAllNamespaces(),
    scope.selector ? kc.makeApiClient(CoreV1Api).listNamespace({ labelSelector: scope.selector.text }) : undefined,
  ]);
  const labels = new Map((namespaces?.items ?? []).map((n) => [n.metadata?.name ?? '', n.metadata?.labels ?? {}]));
  const inScope = (ns: string) => namespaceInScope(scope, ns, (name) => labels.get(name));
  return { deployments: all.items.filter((d) => inScope(d.metadata?.namespace ?? '')), inScope };
}
