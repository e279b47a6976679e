#!/usr/bin/env node
// spot-orchestrator: the controller and its tools. Each command is a plain async function that a
// test can call; one handler at the bottom turns errors into exit codes.
import { parseArgs } from 'node:util';
import { hostname } from 'node:os';
import { AppsV1Api, CoordinationV1Api } from '@kubernetes/client-node';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { createAlerter, sampleAlerts } from './alerts/index.js';
import { buildRebalanceRecommendation, buildSpotInterruption } from './events/build.js';
import { parseProviderId } from './events/provider-id.js';
import { sqsClientFor } from './controller/controller.js';
import { ConfigError, loadConfigFromEnvironment, readConfigFile, resolveWithProvenance } from './config/load.js';
import { resolveDeploymentSettingsWithProvenance } from './config/overrides.js';
import type { Config } from './config/config.js';
import { Controller } from './controller/controller.js';
import { CoreV1Api } from '@kubernetes/client-node';
import { isManaged } from './controller/scope.js';
import { loadKubeConfig, MERGE_PATCH, messageOf } from './kube/api.js';
import { LeaderElector } from './kube/leader-election.js';
import { createLogger } from './log.js';
import { createMetrics } from './metrics/metrics.js';
import { LoopHeartbeat, startOpsServer } from './metrics/server.js';
import { formatTimestamp } from './migration/plan.js';
import { MANAGED_ANNOTATIONS, REASONS, STATES } from './state/annotations.js';
import { recoveryDryRun } from './recovery/dry-run.js';

export class UsageError extends Error {}

const USAGE = `usage: spot-orchestrator <command>
  run                                   run the controller
  state get <deployment> [-n NS]        show a Deployment's state annotations
  state set <deployment> --state spot|fargate [--reason manual|rollback|spot-interruption] [-n NS]
  config check                          the resolved configuration, each value with its source,
                                        and the settings of every managed Deployment
  simulate interruption --instance i-… | --node NAME [--account ID]
  simulate rebalance    --instance i-… | --node NAME [--account ID]
                                        publish a sample EventBridge event to the configured queue
  alerts test                           send a sample of each alert to the configured Slack webhook
  recover --dry-run [-n NS]             per managed Deployment: would it go back to spot now, and why or why not`;

export async function runCommand(config: Config): Promise<void> {
  const log = createLogger(config.logging);
  const metrics = createMetrics();
  const alerter = createAlerter(config, log);
  const kc = loadKubeConfig();
  const controller = new Controller({ config, kc, log, metrics, alerter });
  const elector = config.controller.leader_elect
    ? new LeaderElector({
        api: kc.makeApiClient(CoordinationV1Api),
        name: config.controller.lease_name,
        namespace: config.controller.lease_namespace ?? config.kubernetes.namespace,
        identity: process.env.POD_NAME ?? `${hostname()}-${process.pid}`,
        leaseDurationMs: config.controller.lease_duration,
        renewDeadlineMs: config.controller.renew_deadline,
        retryPeriodMs: config.controller.retry_period,
        log,
      })
    : undefined;
  const heartbeat = new LoopHeartbeat();
  const beat = setInterval(() => {
    // A standby's queue loop is stopped on purpose; only the acting replica's loop must turn.
    if (controller.acting && Date.now() - controller.lastQueueTick.getTime() < 25_000 + config.monitoring.check_interval * 10) heartbeat.beat('queue');
  }, 1000);
  beat.unref();
  const ops = await startOpsServer({
    port: config.controller.metrics_port,
    registry: metrics.registry,
    logger: log,
    health: () => ({
      loops: heartbeat.report(),
      ready: {
        cachesSynced: controller.ctx.view.synced,
        queueReachable: controller.acting ? controller.queueReachable : true,
        detail: controller.acting ? controller.lastQueueError : 'standby: waiting for the lease',
      },
    }),
  });
  log.info({ port: ops.port }, 'metrics and health on /metrics, /healthz, /readyz');
  await controller.startWatching();
  const act = () => {
    heartbeat.register('queue', Math.max(60_000, config.monitoring.check_interval * 20));
    heartbeat.beat('queue');
    metrics.leader.set(1);
    controller.startActing();
  };
  const stopped = new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'draining in-flight work and stopping');
      void controller
        .stop()
        .then(() => elector?.stop())
        .then(() => ops.close())
        .then(() => resolve(0));
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  if (!elector) act();
  else {
    log.info({ lease: config.controller.lease_name }, 'standing by for the lease');
    void elector.run(act).then((how) => {
      if (how !== 'lost') return;
      // Another replica may already act: stop at once, and let the restart campaign again.
      log.error('leadership lost; exiting so that only one replica acts');
      process.exit(1);
    });
  }
  await stopped;
  clearInterval(beat);
}

/** Publishes a sample event in the exact EventBridge format to the configured queue. */
export async function simulate(config: Config, kind: string, target: { instance?: string; node?: string; account?: string }, out = console.log): Promise<string> {
  let instanceId = target.instance;
  let zone: string | undefined;
  if (!instanceId && target.node) {
    const node = await loadKubeConfig().makeApiClient(CoreV1Api).readNode({ name: target.node });
    const parsed = parseProviderId(node.spec?.providerID);
    if (!parsed) throw new UsageError(`node ${target.node} has no EC2 providerID (got "${node.spec?.providerID ?? ''}")`);
    instanceId = parsed.instanceId;
    zone = parsed.zone ?? undefined;
  }
  if (!instanceId) throw new UsageError('simulate needs --instance i-… or --node NAME');
  const input = { instanceId, time: new Date(), region: config.aws.region, account: target.account ?? '123456789012' };
  let body: string;
  if (kind === 'interruption') body = buildSpotInterruption({ ...input, zone });
  else if (kind === 'rebalance') body = buildRebalanceRecommendation(input);
  else throw new UsageError(`unknown simulate kind "${kind}" (interruption|rebalance)`);
  const sent = await sqsClientFor(config).send(new SendMessageCommand({ QueueUrl: config.aws.sqs_queue_url, MessageBody: body }));
  out(`sent ${kind} for ${instanceId} as message ${sent.MessageId}`);
  return body;
}

export async function alertsTest(config: Config): Promise<void> {
  const log = createLogger(config.logging);
  if (!config.alerts.enabled || !config.alerts.slack_webhook_url) throw new UsageError('alerts are disabled or SLACK_WEBHOOK_URL is not set');
  const alerter = createAlerter(config, log);
  for (const alert of sampleAlerts()) alerter.notify(alert);
  await alerter.flush(60_000);
  log.info({ sent: sampleAlerts().length }, 'sample alerts sent');
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
    options: {
      namespace: { type: 'string', short: 'n' },
      state: { type: 'string' },
      reason: { type: 'string' },
      instance: { type: 'string' },
      node: { type: 'string' },
      account: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      'dry-run': { type: 'boolean' },
    },
  });
  const [command, sub, target] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
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
    case 'simulate':
      await simulate(config, sub ?? '', { instance: values.instance, node: values.node, account: values.account });
      return 0;
    case 'alerts':
      if (sub !== 'test') throw new UsageError(`unknown alerts subcommand "${sub}"`);
      await alertsTest(config);
      return 0;
    case 'recover':
      if (!values['dry-run']) throw new UsageError('recover needs --dry-run: the running controller does the recovering itself');
      await recoveryDryRun({ ...config, kubernetes: { ...config.kubernetes, namespace } }, loadKubeConfig());
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
