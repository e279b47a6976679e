#!/usr/bin/env node
// spot-orchestrator: the controller and its tools. Each command is a plain async function that a
// test can call; one handler at the bottom turns errors into exit codes.
import { readFileSync, realpathSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { AppsV1Api, loadAllYaml, type V1Deployment } from '@kubernetes/client-node';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { trustedOriginOf } from './intake/event-trust.js';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { createAlerter, sampleAlerts } from './alerts/index.js';
import { buildRebalanceRecommendation, buildSpotInterruption } from './events/build.js';
import { parseProviderId } from './events/provider-id.js';
import { createControllerContext, loadRecordKeyFor, runController, sqsClientFor, startCaches, stopControllerContext } from './manager.js';
import {
  ConfigError,
  loadConfigFor,
  readConfigFile,
  resolveWithProvenance,
  type ConfigNeeds,
  type ConfigProblem,
  type ConfigProvenance,
} from './config/load.js';
import { resolveDeploymentSettingsWithProvenance, type OverriddenConfig } from './config/overrides.js';
import { type ClusterConfig, SCHEMA, type Config } from './config/config.js';
import { CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { describeScope, isManaged, leaseNamespace, namespaceScope } from './config/scope.js';
import { listScopedDeployments } from './kube/scoped-list.js';
import { hmacRecordSigner } from './migration/record-signature.js';
import { isNotFound, loadKubeConfig, MERGE_PATCH, messageOf } from './kube/api.js';
import { createLogger } from './log.js';
import { formatTimestamp } from './migration/plan.js';
import { MANAGED_ANNOTATIONS, REASONS, STATES } from './state/annotations.js';
import { recoveryDryRun } from './recovery/dry-run.js';
import { leaseHolder, recoverAllNow } from './recovery/recover-all.js';
import { RecoveryFlow } from './recovery/recovery-flow.js';
import { NodeMarker } from './controller/node-marker.js';
import { createMetrics } from './metrics/metrics.js';
import { doctor } from './preflight/doctor.js';

export class UsageError extends Error {}

const USAGE = `usage: spot-orchestrator <command>        (also installed as spot-fargate-orchestrator)
  run                                   run the controller
  config check                          the resolved configuration, each value with its source,
                                        and the settings of every managed Deployment
  state get <deployment> [-n NS]        show a Deployment's state annotations
  state set <deployment> --state spot|fargate [--reason manual|rollback|spot-interruption] [-n NS]
  deployment-state get                  the Go original's tool, same syntax: the Deployment is
  deployment-state set <state> <reason>   DEPLOYMENT_NAME in NAMESPACE unless --deployment NAME [-n NS]
  simulate interruption --instance i-… | --node NAME [--account ID]
  simulate rebalance    --instance i-… | --node NAME [--account ID]
                                        send a sample EventBridge event straight to the configured queue
  test-eventbridge --instance i-… | --node NAME [--account ID] [--source aws.ec2] [--bus default]
                                        put a spot interruption warning on the EventBridge bus, so that
                                        the rule is what routes it to the queue
  alerts test | test-alerts             send a sample of each alert to the configured Slack webhook
  test-per-deployment-config <manifest.yaml>...
                                        offline: each Deployment's resolved settings, from its annotations
                                        and the global configuration, with no cluster
  recover --dry-run [-n NS]             per managed Deployment: would it go back to spot now, and why or why not
  recover --all --now [--force]         uninstall: every managed Deployment back to spot where spot capacity
                                        fits (cooldown and backoff waived, health verified, a failure rolled
                                        back), then the controller's marks off every node; exits 1 if anything
                                        is left. Refuses while the controller holds its Lease (--force: anyway)
  doctor                                the preflight: Fargate profile per managed namespace (EKS API), the
                                        queue (GetQueueAttributes), every RBAC verb; exits 1 on a failure`;

/** What each command reads of the configuration; nothing else of it can stop the command. */
const NEEDS = {
  run: { sections: Object.keys(SCHEMA) as (keyof Config)[], managed: true },
  /** Acting on the cluster without receiving: no queue URL needed (the queue may be gone at uninstall). */
  cluster: { sections: (Object.keys(SCHEMA) as (keyof Config)[]).filter((s): s is Exclude<keyof Config, 'aws'> => s !== 'aws'), managed: true },
  state: { sections: ['kubernetes'] },
  aws: { sections: ['aws'] },
  alerts: { sections: ['alerts', 'logging'] },
  perDeployment: { sections: ['kubernetes', 'migration', 'recovery'] },
} as const satisfies Record<string, ConfigNeeds<keyof Config>>;

export async function runCommand(config: Config, configWarnings: readonly ConfigProblem[] = []): Promise<void> {
  await runController(config, configWarnings);
}

/** Publishes a sample event in the exact EventBridge format to the configured queue. */
interface EventTarget {
  instance?: string;
  node?: string;
  account?: string;
}

/** The instance (and its zone, when a Node names it) that a simulated event is about. */
async function targetInstance(command: string, target: EventTarget): Promise<{ instanceId: string; zone?: string }> {
  if (target.instance) return { instanceId: target.instance };
  if (!target.node) throw new UsageError(`${command} needs --instance i-… or --node NAME`);
  const node = await loadKubeConfig().makeApiClient(CoreV1Api).readNode({ name: target.node });
  const parsed = parseProviderId(node.spec?.providerID);
  if (!parsed) throw new UsageError(`node ${target.node} has no EC2 providerID (got "${node.spec?.providerID ?? ''}")`);
  return { instanceId: parsed.instanceId, zone: parsed.zone ?? undefined };
}

export async function simulate(config: Pick<Config, 'aws'>, kind: string, target: EventTarget, out = console.log): Promise<string> {
  const { instanceId, zone } = await targetInstance('simulate', target);
  // By default the account and Region the controller trusts (intake/event-trust.ts), so the event is acted on.
  const origin = trustedOriginOf(config.aws);
  const input = { instanceId, time: new Date(), region: origin.region, account: target.account ?? origin.account ?? '123456789012' };
  let body: string;
  if (kind === 'interruption') body = buildSpotInterruption({ ...input, zone });
  else if (kind === 'rebalance') body = buildRebalanceRecommendation(input);
  else throw new UsageError(`unknown simulate kind "${kind}" (interruption|rebalance)`);
  const sent = await sqsClientFor(config).send(new SendMessageCommand({ QueueUrl: config.aws.sqs_queue_url, MessageBody: body }));
  out(`sent ${kind} for ${instanceId} as message ${sent.MessageId}`);
  return body;
}

/**
 * The original's test-eventbridge.sh: a spot interruption warning put on the EventBridge bus, so the
 * rule, its pattern and its target are what carry it to the queue. AWS refuses PutEvents with a
 * source starting "aws." from anyone but AWS (NotAuthorizedForSourceException); that refusal is
 * reported as such, and `--source` lets a test rule that also matches another source be exercised.
 */
export async function testEventBridge(
  config: Pick<Config, 'aws'>,
  target: EventTarget & { source?: string; bus?: string },
  out = console.log,
  events = new EventBridgeClient({ region: config.aws.region }),
): Promise<string> {
  const { instanceId, zone } = await targetInstance('test-eventbridge', target);
  const event = JSON.parse(
    buildSpotInterruption({
      instanceId,
      zone,
      time: new Date(),
      region: config.aws.region,
      account: target.account ?? trustedOriginOf(config.aws).account ?? '123456789012',
    }),
  ) as {
    source: string;
    'detail-type': string;
    resources: string[];
    time: string;
    detail: unknown;
  };
  const entry = {
    Source: target.source ?? event.source,
    DetailType: event['detail-type'],
    Detail: JSON.stringify(event.detail),
    Resources: event.resources,
    Time: new Date(event.time),
    EventBusName: target.bus ?? 'default',
  };
  const result = await events.send(new PutEventsCommand({ Entries: [entry] }));
  const [outcome] = result.Entries ?? [];
  if (result.FailedEntryCount || !outcome?.EventId) {
    const why = `${outcome?.ErrorCode ?? 'unknown error'}: ${outcome?.ErrorMessage ?? 'no message'}`;
    const hint = outcome?.ErrorCode === 'NotAuthorizedForSourceException' ? ' (AWS reserves "aws." sources for itself; see --source)' : '';
    throw new Error(`EventBridge refused the event: ${why}${hint}`);
  }
  out(`put ${entry.DetailType} for ${instanceId} on bus ${entry.EventBusName} (source ${entry.Source}) as event ${outcome.EventId}`);
  return outcome.EventId;
}

export async function alertsTest(config: Pick<Config, 'alerts' | 'logging'>): Promise<void> {
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
      body: {
        metadata: {
          annotations: { [MANAGED_ANNOTATIONS.state]: state, [MANAGED_ANNOTATIONS.reason]: reason, [MANAGED_ANNOTATIONS.migratedAt]: formatTimestamp(now) },
        },
      },
    },
    MERGE_PATCH,
  );
}

/** The original's deployment-state tool: `get`, or `set <state> <reason>`, on DEPLOYMENT_NAME unless named. */
export async function deploymentState(
  config: Pick<Config, 'kubernetes'>,
  args: { sub?: string; rest: string[]; deployment?: string; namespace?: string },
  out = console.log,
): Promise<void> {
  const name = args.deployment ?? config.kubernetes.deployment_name;
  if (!name)
    throw new UsageError('deployment-state works on DEPLOYMENT_NAME (kubernetes.deployment_name), as the original did: set it, or pass --deployment NAME');
  const namespace = args.namespace ?? config.kubernetes.namespace;
  if (args.sub === 'get' && args.rest.length === 0) return stateGet(name, namespace, out);
  if (args.sub === 'set' && args.rest.length === 2) {
    const [state = '', reason = ''] = args.rest;
    await stateSet(name, namespace, state, reason);
    out(`${namespace}/${name}: state=${state} reason=${reason}`);
    return;
  }
  throw new UsageError('deployment-state get | deployment-state set <state> <reason>');
}

/** `test-per-deployment-config`: the settings each Deployment in the manifests resolves to. Offline. */
export function perDeploymentConfig(
  config: Pick<Config, 'kubernetes' | 'migration' | 'recovery'>,
  settings: ConfigProvenance,
  files: readonly string[],
  out = console.log,
): void {
  const scope = namespaceScope(config.kubernetes);
  if (files.length === 0) throw new UsageError('test-per-deployment-config needs the path of a Deployment manifest (YAML or JSON)');
  for (const file of files) {
    const deployments = (loadAllYaml(readFileSync(file, 'utf8')) as unknown[]).filter(
      (doc): doc is V1Deployment => (doc as V1Deployment | null)?.kind === 'Deployment',
    );
    if (deployments.length === 0) throw new UsageError(`${file} holds no Deployment`);
    for (const d of deployments) {
      // A manifest often leaves the namespace to kubectl's context: read it as the configured one.
      const namespace = d.metadata?.namespace ?? config.kubernetes.namespace;
      // Offline, a namespace's labels are unknown: a selector is taken as matching, and the line says so.
      const managed = isManaged(config, { ...d, metadata: { ...d.metadata, namespace } }, (ns) => scope.kind === 'cluster' || scope.namespaces.includes(ns));
      out(`${namespace}/${d.metadata?.name ?? '(no name)'} (${file}):`);
      out(`  managed = ${managed ? 'yes' : 'no'}  [${managedBecause(config, managed)}]`);
      printDeploymentSettings(config, settings, d, '  ', out);
    }
  }
}

/** One line per setting: its value, the layer it came from, and an override that was ignored. */
function printDeploymentSettings(config: OverriddenConfig, settings: ConfigProvenance, d: V1Deployment, indent: string, out: (line: string) => void): void {
  const resolved = resolveDeploymentSettingsWithProvenance(config, settings, d.metadata?.annotations);
  for (const [k, v] of Object.entries(resolved))
    out(`${indent}${k} = ${v.display}  [${v.source}]${v.invalid ? `  INVALID OVERRIDE: ${v.invalid.message}` : ''}`);
}

function managedBecause(config: Pick<Config, 'kubernetes'>, managed: boolean): string {
  const k = config.kubernetes;
  if (k.mode === 'single') return `single mode: only ${k.namespace}/${k.deployment_name ?? '(DEPLOYMENT_NAME not set)'}`;
  const scope = namespaceScope(k);
  const unchecked = scope.kind === 'cluster' && scope.selector ? " (the namespace's labels are not checked offline)" : '';
  return `namespace mode: ${managed ? '' : 'needs '}${k.opt_in_annotation}: "true" in ${describeScope(scope)}${unchecked}`;
}

export async function configCheck(env: NodeJS.ProcessEnv, out = console.log): Promise<boolean> {
  const file = readConfigFile(env);
  const resolution = resolveWithProvenance({ env, ...(file ?? {}) });
  out(`configuration (${file ? file.tomlPath : 'no config.toml'}):`);
  for (const s of Object.values(resolution.settings)) out(`  ${s.key} = ${s.display}  [${s.source}]${s.problem ? `  ERROR: ${s.problem.message}` : ''}`);
  for (const warning of resolution.warnings) out(`  WARNING: ${warning.message}`);
  if (!resolution.config) {
    // Every problem in full: a TOML syntax error (with its line and column) belongs to no one setting.
    out(`\n${resolution.problems.length === 1 ? '1 problem' : `${resolution.problems.length} problems`}; fix them before running:`);
    for (const problem of resolution.problems) out(`  - ${problem.message}`);
    return false;
  }
  const config = resolution.config;
  const scope = namespaceScope(config.kubernetes);
  const listed = await listScopedDeployments(loadKubeConfig(), scope);
  const deployments = listed.deployments.filter((d) => isManaged(config, d, listed.inScope));
  out(`\nmanaged Deployments in ${describeScope(scope)} (${config.kubernetes.mode} mode): ${deployments.length}`);
  for (const d of deployments) {
    out(`  ${d.metadata!.namespace}/${d.metadata!.name}:`);
    printDeploymentSettings(config, resolution.settings, d, '    ', out);
  }
  return true;
}

/**
 * `recover --all --now`: the uninstall path (recovery/recover-all.ts), with the controller's own parts
 * (its caches, the recovery flow, the node marker) and no queue. Refuses while a controller holds the
 * Lease: it would seal nodes again on the next warning, and start recoveries of its own beside these.
 * True when every managed Deployment is on spot and every node free of the controller's marks.
 */
export async function recoverAll(config: ClusterConfig, options: { force: boolean }, out = console.log): Promise<boolean> {
  const kc = loadKubeConfig();
  const log = createLogger(config.logging, process.stderr);
  if (config.controller.leader_elect) {
    const namespace = leaseNamespace(config);
    const lease = await kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: config.controller.lease_name, namespace })
      .catch((err: unknown) => {
        if (!isNotFound(err))
          out(`warning: could not read the Lease ${namespace}/${config.controller.lease_name} (${messageOf(err)}): make sure the controller is scaled to 0`);
        return undefined;
      });
    const holder = leaseHolder(lease, new Date());
    if (holder && !options.force) {
      throw new Error(
        `the controller is still running: ${holder} holds the Lease ${namespace}/${config.controller.lease_name}. Scale it to 0 first (kubectl scale deployment <release> -n <namespace> --replicas=0), or pass --force`,
      );
    }
    if (holder) out(`warning: ${holder} holds the Lease; going on (--force)`);
  } else {
    out('warning: leader election is off, so whether a controller still runs cannot be told: make sure it is scaled to 0');
  }
  const signer = hmacRecordSigner(await loadRecordKeyFor(config, kc));
  const ctx = createControllerContext({ config, kc, log, metrics: createMetrics(), alerter: createAlerter(config, log), signer });
  await startCaches(ctx, kc);
  try {
    const flow = new RecoveryFlow(ctx);
    const marker = new NodeMarker(ctx);
    const result = await recoverAllNow({
      ctx,
      recover: (key) => flow.recover(key, { waive: true }),
      writeNode: (node, plan, what) => marker.write(node, plan, what),
      out,
    });
    return result.ok;
  } finally {
    await stopControllerContext(ctx);
  }
}

/** The configuration one command needs, from the process's environment and config file. */
function configFor<S extends keyof Config>(needs: ConfigNeeds<S>, env: NodeJS.ProcessEnv, warn: (line: string) => void) {
  const loaded = loadConfigFor({ env, ...readConfigFile(env) }, needs);
  for (const warning of loaded.warnings) warn(`warning: ${warning.message}`);
  return loaded;
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      namespace: { type: 'string', short: 'n' },
      deployment: { type: 'string', short: 'd' },
      state: { type: 'string' },
      reason: { type: 'string' },
      instance: { type: 'string' },
      node: { type: 'string' },
      account: { type: 'string' },
      source: { type: 'string' },
      bus: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      'dry-run': { type: 'boolean' },
      all: { type: 'boolean' },
      now: { type: 'boolean' },
      force: { type: 'boolean' },
    },
  });
  const [command, sub, target] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const warn = (line: string) => console.error(line);
  const eventTarget = { instance: values.instance, node: values.node, account: values.account };
  switch (command) {
    case 'run': {
      // Warnings go to the log, where the rest of a running controller's story is.
      const { config, warnings } = loadConfigFor({ env, ...readConfigFile(env) }, NEEDS.run);
      await runCommand(config, warnings);
      return 0;
    }
    case 'config':
      if (sub !== 'check') throw new UsageError(`unknown config subcommand "${sub}"`);
      return (await configCheck(env)) ? 0 : 1;
    case 'state': {
      if (!target) throw new UsageError('state get|set needs a Deployment name');
      const namespace = values.namespace ?? configFor(NEEDS.state, env, warn).config.kubernetes.namespace;
      if (sub === 'get') await stateGet(target, namespace);
      else if (sub === 'set') await stateSet(target, namespace, values.state ?? '', values.reason ?? 'manual');
      else throw new UsageError(`unknown state subcommand "${sub}"`);
      return 0;
    }
    case 'deployment-state':
      await deploymentState(configFor(NEEDS.state, env, warn).config, {
        sub,
        rest: positionals.slice(2),
        deployment: values.deployment,
        namespace: values.namespace,
      });
      return 0;
    case 'simulate':
      await simulate(configFor(NEEDS.aws, env, warn).config, sub ?? '', eventTarget);
      return 0;
    case 'test-eventbridge':
      await testEventBridge(configFor(NEEDS.aws, env, warn).config, { ...eventTarget, source: values.source, bus: values.bus });
      return 0;
    case 'alerts':
      if (sub !== 'test') throw new UsageError(`unknown alerts subcommand "${sub}"`);
      await alertsTest(configFor(NEEDS.alerts, env, warn).config);
      return 0;
    case 'test-alerts':
      await alertsTest(configFor(NEEDS.alerts, env, warn).config);
      return 0;
    case 'test-per-deployment-config': {
      const { config, settings } = configFor(NEEDS.perDeployment, env, warn);
      perDeploymentConfig(config, settings, positionals.slice(1));
      return 0;
    }
    case 'recover': {
      if (values.all || values.now) {
        if (!values.all || !values.now) throw new UsageError('recover --all --now goes together: every managed Deployment, at once (the uninstall path)');
        if (values['dry-run']) throw new UsageError('recover --dry-run shows what recovery would do; --all --now does it: pick one');
        if (values.namespace) throw new UsageError('recover --all --now covers every managed namespace; it takes no -n');
        return (await recoverAll(configFor(NEEDS.cluster, env, warn).config, { force: values.force ?? false })) ? 0 : 1;
      }
      if (!values['dry-run'])
        throw new UsageError('recover needs --dry-run, or --all --now (the uninstall path): the running controller does the recovering itself');
      const { config } = configFor(NEEDS.cluster, env, warn);
      const kc = loadKubeConfig();
      await recoveryDryRun({ ...config, kubernetes: { ...config.kubernetes, namespace: values.namespace ?? config.kubernetes.namespace } }, kc, () =>
        loadRecordKeyFor(config, kc),
      );
      return 0;
    }
    case 'doctor': {
      const { config } = configFor(NEEDS.run, env, warn);
      return (await doctor(config, { kc: loadKubeConfig(), sqs: sqsClientFor(config) })) ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/**
 * What the user sees when a command fails: the error and every cause under it, so that a wrapped
 * failure ("starting ops server on 0.0.0.0:8080") still shows its root ("EADDRINUSE").
 */
export function describeFailure(err: unknown): string {
  if (err instanceof ConfigError) return `configuration error:\n${err.message}`;
  if (err instanceof UsageError) return `${err.message}\n\n${USAGE}`;
  const lines = [`spot-orchestrator: ${messageOf(err)}`];
  const seen = new Set<unknown>([err]);
  const queue: { error: unknown; depth: number }[] = causesOf(err).map((error) => ({ error, depth: 1 }));
  while (queue.length > 0) {
    const { error, depth } = queue.shift()!;
    if (seen.has(error)) continue;
    seen.add(error);
    const message = messageOf(error);
    // A wrapper that already quotes its cause's message need not repeat it.
    if (!lines.some((line) => line.includes(message))) lines.push(`${'  '.repeat(depth)}caused by: ${message}${codeOf(error, message)}`);
    queue.unshift(...causesOf(error).map((next) => ({ error: next, depth: depth + 1 })));
  }
  return lines.join('\n');
}

function causesOf(err: unknown): unknown[] {
  const causes: unknown[] = [];
  if (err instanceof AggregateError) causes.push(...err.errors);
  const cause = (err as { cause?: unknown } | null)?.cause;
  if (cause !== undefined) causes.push(cause);
  return causes;
}

function codeOf(err: unknown, message: string): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && !message.includes(code) ? ` (${code})` : '';
}

/** True when this file is the program: run directly, through tsx, or through the bin symlink npm makes. */
function isMain(): boolean {
  const invoked = process.argv[1];
  if (!invoked) return false;
  try {
    return realpathSync(invoked) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(describeFailure(err));
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
}
