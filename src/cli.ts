#!/usr/bin/env node
// spot-orchestrator: the controller and its tools. Each command is a plain async function that a
// test can call; one handler at the bottom turns errors into exit codes.
import { parseArgs } from 'node:util';
import { AppsV1Api } from '@kubernetes/client-node';
import { createAlerter } from './alerts/index.js';
import { ConfigError, loadConfigFromEnvironment, readConfigFile, resolveWithProvenance } from './config/load.js';
import { resolveDeploymentSettingsWithProvenance } from './config/overrides.js';
import type { Config } from './config/config.js';
import { Controller } from './controller/controller.js';
import { isManaged } from './controller/scope.js';
import { loadKubeConfig, MERGE_PATCH, messageOf } from './kube/api.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics/metrics.js';
import { LoopHeartbeat, startOpsServer } from './metrics/server.js';
import { formatTimestamp } from './migration/plan.js';
import { MANAGED_ANNOTATIONS, REASONS, STATES } from './state/annotations.js';

export class UsageError extends Error {}

const USAGE = `usage: spot-orchestrator <command>
  run                                   run the controller
  state get <deployment> [-n NS]        show a Deployment's state annotations
  state set <deployment> --state spot|fargate [--reason manual|rollback|spot-interruption] [-n NS]
  config check                          the resolved configuration, each value with its source,
                                        and the settings of every managed Deployment`;

export async function runCommand(config: Config): Promise<void> {
  const log = createLogger(config.logging);
  const metrics = createMetrics();
  const alerter = createAlerter(config, log);
  const controller = new Controller({ config, kc: loadKubeConfig(), log, metrics, alerter });
  const heartbeat = new LoopHeartbeat();
  heartbeat.register('queue', Math.max(60_000, config.monitoring.check_interval * 20));
  const beat = setInterval(() => {
    if (Date.now() - controller.lastQueueTick.getTime() < 25_000 + config.monitoring.check_interval * 10) heartbeat.beat('queue');
  }, 1000);
  beat.unref();
  const ops = await startOpsServer({
    port: config.controller.metrics_port,
    registry: metrics.registry,
    logger: log,
    health: () => ({
      loops: heartbeat.report(),
      ready: { cachesSynced: controller.ctx.view.synced, queueReachable: controller.queueReachable, detail: controller.lastQueueError },
    }),
  });
  log.info({ port: ops.port }, 'metrics and health on /metrics, /healthz, /readyz');
  await controller.start();
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'draining in-flight work and stopping');
      void controller.stop().then(() => ops.close()).then(resolve);
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  clearInterval(beat);
}

function apps(): AppsV1Api {
  return loadKubeConfig().makeApiClient(AppsV1Api);
}

export async function stateGet(name: string, namespace: string, out = console.log): Promise<void> {
  const d = await apps().readNamespacedDeployment({ name, namespace });
  const a = d.metadata?.annotations ?? {};
  const rows = Object.values(MANAGED_ANNOTATIONS).map((k) => `${k}=${a[k] ?? ''}`);
  out(`${namespace}/${name}\n  ${rows.join('\n  ')}`);
}

export async function stateSet(name: string, namespace: string, state: string, reason: string, now = new Date()): Promise<void> {
  if (!(STATES as readonly string[]).includes(state)) throw new UsageError(`--state must be one of ${STATES.join('|')}, got "${state}"`);
  if (!(REASONS as readonly string[]).includes(reason)) throw new UsageError(`--reason must be one of ${REASONS.join('|')}, got "${reason}"`);
  await apps().patchNamespacedDeployment(
    {
      name,
      namespace,
      body: { metadata: { annotations: { [MANAGED_ANNOTATIONS.state]: state, [MANAGED_ANNOTATIONS.reason]: reason, [MANAGED_ANNOTATIONS.migratedAt]: formatTimestamp(now) } } },
    },
    MERGE_PATCH,
  );
}

export async function configCheck(env: NodeJS.ProcessEnv, out = console.log): Promise<boolean> {
  const file = readConfigFile(env);
  const resolution = resolveWithProvenance({ env, ...(file ?? {}) });
  out(`configuration (${file ? file.tomlPath : 'no config.toml'}):`);
  for (const s of Object.values(resolution.settings)) out(`  ${s.key} = ${s.display}  [${s.source}]${s.problem ? `  ERROR: ${s.problem.message}` : ''}`);
  if (!resolution.config) {
    out(`\n${resolution.problems.length} problem(s); fix them before running`);
    return false;
  }
  const config = resolution.config;
  const deployments = (await apps().listNamespacedDeployment({ namespace: config.kubernetes.namespace })).items.filter((d) => isManaged(config, d));
  out(`\nmanaged Deployments in ${config.kubernetes.namespace} (${config.kubernetes.mode} mode): ${deployments.length}`);
  for (const d of deployments) {
    out(`  ${d.metadata!.name}:`);
    const settings = resolveDeploymentSettingsWithProvenance(config, resolution.settings, d.metadata?.annotations);
    for (const [k, v] of Object.entries(settings)) out(`    ${k} = ${v.display}  [${v.source}]${v.invalid ? `  INVALID OVERRIDE: ${v.invalid.message}` : ''}`);
  }
  return true;
}

export async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { namespace: { type: 'string', short: 'n' }, state: { type: 'string' }, reason: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [command, sub, target] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'config' && sub === 'check') return (await configCheck(process.env)) ? 0 : 1;
  const config = loadConfigFromEnvironment(process.env);
  const namespace = values.namespace ?? config.kubernetes.namespace;
  switch (command) {
    case 'run':
      await runCommand(config);
      return 0;
    case 'state':
      if (!target) throw new UsageError('state get|set needs a Deployment name');
      if (sub === 'get') await stateGet(target, namespace);
      else if (sub === 'set') await stateSet(target, namespace, values.state ?? '', values.reason ?? 'manual');
      else throw new UsageError(`unknown state subcommand "${sub}"`);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/cli.ts') || process.argv[1]?.endsWith('/cli.js')) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof ConfigError) console.error(`configuration error:\n${err.message}`);
      else if (err instanceof UsageError) console.error(`${err.message}\n\n${USAGE}`);
      else console.error(`spot-orchestrator: ${messageOf(err)}`);
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
}
