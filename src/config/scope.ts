// Which Deployments the controller may touch. single: the one named Deployment, no annotation
// needed. namespace: every Deployment of the namespace whose opt-in annotation is "true".
import type { V1Deployment } from '@kubernetes/client-node';
import type { Config } from './config.js';
import { isOptedIn } from './overrides.js';

export function isManaged(config: Pick<Config, 'kubernetes'>, d: V1Deployment): boolean {
  if (d.metadata?.namespace !== config.kubernetes.namespace) return false;
  if (config.kubernetes.mode === 'single') return d.metadata?.name === config.kubernetes.deployment_name;
  return isOptedIn(config, d.metadata?.annotations);
}
