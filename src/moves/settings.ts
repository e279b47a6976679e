// One Deployment's settings for a move: its annotations over the global configuration. A bad
// annotation is reported where its owner looks (a Warning Event on the Deployment and a log line)
// and the global value is used instead.
import type { V1Deployment } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type DeploymentSettings, resolveDeploymentSettings } from '../config/overrides.js';
import type { ControllerContext } from './context.js';

const MAX_LOGGED_VALUE = 100;

export function settingsFor(ctx: Pick<ControllerContext, 'config' | 'recorder'>, d: V1Deployment, log: Logger): DeploymentSettings {
  const { settings, invalid } = resolveDeploymentSettings(ctx.config, d.metadata?.annotations);
  for (const problem of invalid) {
    // The value is a tenant's input of any length: the log gets as much of it as the Event does.
    const value = problem.value.length > MAX_LOGGED_VALUE ? `${problem.value.slice(0, MAX_LOGGED_VALUE)}…` : problem.value;
    log.warn({ annotation: problem.annotation, value }, problem.message);
    ctx.recorder.record(
      { kind: 'Deployment', namespace: d.metadata?.namespace ?? '', name: d.metadata?.name ?? '', uid: d.metadata?.uid },
      'Warning',
      'InvalidOverride',
      problem.message,
    );
  }
  return settings;
}
