import type { V1Container, V1PodSpec } from '@kubernetes/client-node';

/**
 * Why EKS Fargate would refuse (or never schedule) pods with this spec, or null if nothing stands in
 * the way. Every problem found is listed, joined by "; ", so a user can fix them in one go.
 *
 * Checked: privileged containers (init containers included), hostNetwork, hostPID, hostIPC,
 * hostPort on any container port, hostPath volumes, and GPU resources (Fargate has no GPUs, so such
 * pods would stay Pending).
 */
export function fargateRefusal(podSpec: V1PodSpec | undefined): string | null {
  if (podSpec === undefined) return null;
  const problems: string[] = [];

  if (podSpec.hostNetwork === true) problems.push('pod uses hostNetwork');
  if (podSpec.hostPID === true) problems.push('pod uses hostPID');
  if (podSpec.hostIPC === true) problems.push('pod uses hostIPC');

  const groups: Array<[string, V1Container[] | undefined]> = [
    ['init container', podSpec.initContainers],
    ['container', podSpec.containers],
  ];
  for (const [kind, containers] of groups) {
    for (const c of containers ?? []) {
      if (c.securityContext?.privileged === true) problems.push(`${kind} "${c.name}" is privileged`);
      for (const port of c.ports ?? []) {
        if (port.hostPort !== undefined && port.hostPort !== 0) {
          problems.push(`${kind} "${c.name}" port ${port.containerPort} uses hostPort ${port.hostPort}`);
        }
      }
      const gpus = gpuResources(c);
      if (gpus.length > 0) problems.push(`${kind} "${c.name}" requests GPU resources (${gpus.join(', ')})`);
    }
  }

  for (const v of podSpec.volumes ?? []) {
    if (v.hostPath !== undefined && v.hostPath !== null) {
      problems.push(`volume "${v.name}" is a hostPath volume (${v.hostPath.path})`);
    }
  }

  return problems.length > 0 ? problems.join('; ') : null;
}

function gpuResources(c: V1Container): string[] {
  const names = new Set<string>();
  for (const map of [c.resources?.limits, c.resources?.requests]) {
    for (const name of Object.keys(map ?? {})) {
      if (name.endsWith('/gpu')) names.add(name);
    }
  }
  return [...names].sort();
}
