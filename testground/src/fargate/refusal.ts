// What the Fargate scheduler refuses, as AWS documents it. Kept apart from the controller's own
// check on purpose: the ground stands for AWS, so a mistake in the product must not hide here.
import type { V1Pod } from '@kubernetes/client-node';

export function fargateRejects(pod: V1Pod): string | undefined {
  const spec = pod.spec;
  if (!spec) return 'pod has no spec';
  if (pod.metadata?.ownerReferences?.some((o) => o.kind === 'DaemonSet')) return 'DaemonSet pods are not supported on Fargate';
  if (spec.hostNetwork) return 'hostNetwork is not supported on Fargate';
  if (spec.hostPID || spec.hostIPC) return 'hostPID/hostIPC are not supported on Fargate';
  const hostPath = spec.volumes?.find((v) => v.hostPath);
  if (hostPath) return `hostPath volume "${hostPath.name}" is not supported on Fargate`;
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    if (c.securityContext?.privileged) return `privileged container "${c.name}" is not supported on Fargate`;
    if (c.ports?.some((p) => p.hostPort)) return `hostPort on container "${c.name}" is not supported on Fargate`;
  }
  return undefined;
}
