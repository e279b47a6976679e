import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Config, ConfigKey } from './config.js';
import { ConfigError, configKeys, loadConfig, loadConfigFor, readConfigFile, resolveWithProvenance, type ConfigProblem, type ConfigSources } from './load.js';

const QUEUE_URL = 'http://localhost:9324/000000000000/interruptions';
const WEBHOOK = 'https://hooks.slack.com/services/T000/B000/super-secret-token';
/** The least a valid start needs in the default single mode. */
const MINIMAL_ENV = { SQS_QUEUE_URL: QUEUE_URL, DEPLOYMENT_NAME: 'api' };

function valueAt(config: Config, key: ConfigKey): unknown {
  const [section, name] = key.split('.') as [keyof Config, string];
  return (config[section] as Record<string, unknown>)[name];
}

function problemsOf(sources: ConfigSources): ConfigProblem[] {
  return resolveWithProvenance(sources).problems;
}

/** The one problem these sources produce, checked to be the only one. */
function onlyProblem(sources: ConfigSources): ConfigProblem {
  const problems = problemsOf(sources);
  assert.equal(problems.length, 1, problems.map((problem) => problem.message).join('\n'));
  return problems[0]!;
}

describe('loadConfig defaults', () => {
  it('fills every setting not given from the defaults', () => {
    assert.deepEqual(loadConfig({ env: MINIMAL_ENV }), {
      kubernetes: {
        namespace: 'default',
        mode: 'single',
        deployment_name: 'api',
        opt_in_annotation: 'spot-orchestrator/enabled',
        service_label_selector: 'app',
      },
      monitoring: { check_interval: 5_000, health_check_retries: 3, health_check_interval: 2_000 },
      migration: {
        rollout_timeout: 120_000,
        verification_delay: 5_000,
        triage: true,
        fargate_launch_burst: 20,
        fargate_launch_rate: 20,
        fargate_start_estimate: 60_000,
        on_rebalance: false,
        scheduled_change_lead: 600_000,
        survivor_grace: 600_000,
        rebalance_mark_ttl: 3_600_000,
      },
      recovery: {
        enabled: true,
        interval: 300_000,
        cooldown: 2_700_000,
        timeout: 180_000,
        backoff_base: 900_000,
        max_backoff: 14_400_000,
      },
      compute: { spot_label: 'spot', fargate_label: 'fargate', compute_label_key: 'compute-type' },
      aws: { region: 'us-east-1', sqs_queue_url: QUEUE_URL, visibility_timeout: 30_000, keep_foreign_messages: false, max_event_age: 600_000 },
      alerts: { enabled: true },
      logging: { level: 'info', format: 'auto' },
      controller: {
        dry_run: false,
        record_key_secret: 'spot-fargate-orchestrator-record-key',
        metrics_port: 8080,
        max_concurrent_patches: 50,
        max_concurrent_recoveries: 5,
        leader_elect: false,
        lease_name: 'spot-fargate-orchestrator',
        lease_duration: 15_000,
        renew_deadline: 10_000,
        retry_period: 2_000,
        node_events_namespace: 'default',
      },
    } satisfies Config);
  });

  it('reports the default layer for settings nobody set', () => {
    const { settings } = resolveWithProvenance({ env: MINIMAL_ENV });
    assert.deepEqual(
      { layer: settings['migration.rollout_timeout'].layer, display: settings['migration.rollout_timeout'].display },
      { layer: 'default', display: '2m0s' },
    );
    assert.equal(settings['kubernetes.service_name'].display, '(not set)');
  });
});

// Every environment name of the brief, the key it sets, a raw value and the typed value it becomes.
/** Namespace mode, where the wider scopes are allowed (single mode manages one Deployment). */
const NAMESPACE_MODE_ENV = { SQS_QUEUE_URL: QUEUE_URL, MODE: 'namespace' };

const ENV_NAMES: Array<[env: string, key: ConfigKey, raw: string, value: unknown, baseline?: Record<string, string>]> = [
  ['SQS_QUEUE_URL', 'aws.sqs_queue_url', 'https://sqs.eu-west-1.amazonaws.com/123456789012/other', 'https://sqs.eu-west-1.amazonaws.com/123456789012/other'],
  ['DEPLOYMENT_NAME', 'kubernetes.deployment_name', 'checkout', 'checkout'],
  ['SERVICE_NAME', 'kubernetes.service_name', 'checkout-svc', 'checkout-svc'],
  ['NAMESPACES', 'kubernetes.namespaces', 'shop, payments,shop', ['shop', 'payments'], NAMESPACE_MODE_ENV],
  [
    'NAMESPACE_SELECTOR',
    'kubernetes.namespace_selector',
    'team = payments, tier in (web, api)',
    {
      text: 'team=payments,tier in (api,web)',
      requirements: [
        { key: 'team', op: 'equals', value: 'payments' },
        { key: 'tier', op: 'in', values: ['api', 'web'] },
      ],
    },
    NAMESPACE_MODE_ENV,
  ],
  ['MODE', 'kubernetes.mode', 'namespace', 'namespace'],
  ['NAMESPACE', 'kubernetes.namespace', 'prod', 'prod'],
  ['OPT_IN_ANNOTATION', 'kubernetes.opt_in_annotation', 'example.com/spot', 'example.com/spot'],
  ['SERVICE_LABEL_SELECTOR', 'kubernetes.service_label_selector', 'app.kubernetes.io/name', 'app.kubernetes.io/name'],
  ['AWS_REGION', 'aws.region', 'eu-west-1', 'eu-west-1'],
  ['CHECK_INTERVAL', 'monitoring.check_interval', '7s', 7_000],
  ['HEALTH_CHECK_RETRIES', 'monitoring.health_check_retries', '9', 9],
  ['HEALTH_CHECK_INTERVAL', 'monitoring.health_check_interval', '500ms', 500],
  ['ROLLOUT_TIMEOUT', 'migration.rollout_timeout', '10m', 600_000],
  ['VERIFICATION_DELAY', 'migration.verification_delay', '0s', 0],
  ['MIGRATION_TRIAGE', 'migration.triage', 'false', false],
  ['FARGATE_LAUNCH_BURST', 'migration.fargate_launch_burst', '100', 100],
  ['FARGATE_LAUNCH_RATE', 'migration.fargate_launch_rate', '2.5/s', 2.5],
  ['FARGATE_START_ESTIMATE', 'migration.fargate_start_estimate', '75s', 75_000],
  ['MIGRATION_ON_REBALANCE', 'migration.on_rebalance', 'true', true],
  ['SCHEDULED_CHANGE_LEAD', 'migration.scheduled_change_lead', '30m', 1_800_000],
  ['SURVIVOR_GRACE', 'migration.survivor_grace', '0', 0],
  ['REBALANCE_MARK_TTL', 'migration.rebalance_mark_ttl', '3h', 10_800_000],
  ['LOG_LEVEL', 'logging.level', 'DEBUG', 'debug'],
  ['LOG_FORMAT', 'logging.format', 'json', 'json'],
  ['SLACK_WEBHOOK_URL', 'alerts.slack_webhook_url', WEBHOOK, WEBHOOK],
  ['ALERTS_ENABLED', 'alerts.enabled', 'false', false],
  ['SPOT_LABEL', 'compute.spot_label', 'ec2-spot', 'ec2-spot'],
  ['FARGATE_LABEL', 'compute.fargate_label', 'serverless', 'serverless'],
  ['COMPUTE_LABEL_KEY', 'compute.compute_label_key', 'node-kind', 'node-kind'],
  ['RECOVERY_ENABLED', 'recovery.enabled', '0', false],
  ['RECOVERY_INTERVAL', 'recovery.interval', '1m', 60_000],
  ['RECOVERY_COOLDOWN', 'recovery.cooldown', '1h30m', 5_400_000],
  ['RECOVERY_TIMEOUT', 'recovery.timeout', '90s', 90_000],
  ['RECOVERY_BACKOFF_BASE', 'recovery.backoff_base', '30m', 1_800_000],
  ['RECOVERY_MAX_BACKOFF', 'recovery.max_backoff', '8h', 28_800_000],
  ['DRY_RUN', 'controller.dry_run', 'TRUE', true],
  ['METRICS_PORT', 'controller.metrics_port', '9090', 9090],
  ['MAX_CONCURRENT_PATCHES', 'controller.max_concurrent_patches', '10', 10],
  ['MAX_CONCURRENT_RECOVERIES', 'controller.max_concurrent_recoveries', '2', 2],
  ['LEADER_ELECT', 'controller.leader_elect', 'true', true],
  ['LEASE_NAME', 'controller.lease_name', 'orchestrator', 'orchestrator'],
  ['LEASE_NAMESPACE', 'controller.lease_namespace', 'ops', 'ops'],
  ['POD_NAMESPACE', 'controller.lease_namespace', 'ops', 'ops'],
  ['LEASE_DURATION', 'controller.lease_duration', '20s', 20_000],
  ['RENEW_DEADLINE', 'controller.renew_deadline', '8s', 8_000],
  ['RETRY_PERIOD', 'controller.retry_period', '1s', 1_000],
  ['RECORD_KEY_SECRET', 'controller.record_key_secret', 'orchestrator-key', 'orchestrator-key'],
  ['NODE_EVENTS_NAMESPACE', 'controller.node_events_namespace', 'kube-system', 'kube-system'],
  ['AWS_ENDPOINT_URL_SQS', 'aws.endpoint_url', 'http://localhost:9324', 'http://localhost:9324'],
  ['AWS_ENDPOINT_URL', 'aws.endpoint_url', 'http://localhost:4566', 'http://localhost:4566'],
  ['SQS_VISIBILITY_TIMEOUT', 'aws.visibility_timeout', '2m', 120_000],
  ['SQS_KEEP_FOREIGN_MESSAGES', 'aws.keep_foreign_messages', 'true', true],
  ['CLUSTER_NAME', 'aws.cluster_name', 'prod-eu', 'prod-eu'],
  ['MAX_EVENT_AGE', 'aws.max_event_age', '2m', 120_000],
  ['EVENT_ACCOUNT', 'aws.event_account', '012345678901', '012345678901'],
  ['EVENT_REGION', 'aws.event_region', 'us-gov-west-1', 'us-gov-west-1'],
];

describe('environment names', () => {
  it('cover every setting', () => {
    const covered = new Set(ENV_NAMES.map(([, key]) => key));
    assert.deepEqual(
      configKeys().filter((key) => !covered.has(key)),
      [],
    );
  });

  const defaults = loadConfig({ env: MINIMAL_ENV });
  for (const [env, key, raw, value, baseline = MINIMAL_ENV] of ENV_NAMES) {
    it(`${env} sets ${key}`, () => {
      const sources = { env: { ...baseline, [env]: raw } };
      const { config, settings, problems } = resolveWithProvenance(sources);
      assert.deepEqual(problems, []);
      assert.deepEqual(valueAt(config!, key), value);
      assert.equal(settings[key].layer, 'env');
      assert.equal(settings[key].source, `env ${env}`);
      if (env in baseline) return; // already set in the baseline
      assert.notDeepEqual(valueAt(defaults, key), value, 'the test value must differ from the default');
    });
  }
});

/** The same value as config.toml would hold it: numbers and booleans as TOML literals, the rest as strings. */
function tomlLiteral(raw: string, value: unknown): string {
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number' && /^\d+$/.test(raw)) return raw;
  return JSON.stringify(raw);
}

describe('config.toml layer', () => {
  for (const [, key, raw, value, baseline = MINIMAL_ENV] of ENV_NAMES) {
    it(`sets ${key}`, () => {
      const [section, name] = key.split('.');
      const tomlText = `[${section}]\n${name} = ${tomlLiteral(raw, value)}\n`;
      const { config, settings, problems } = resolveWithProvenance({ env: baseline, tomlText });
      if (key === 'aws.sqs_queue_url' || key === 'kubernetes.deployment_name') {
        assert.equal(settings[key].layer, 'env'); // the baseline env wins over the file
        return;
      }
      assert.deepEqual(problems, []);
      assert.deepEqual(valueAt(config!, key), value);
      assert.deepEqual({ layer: settings[key].layer, source: settings[key].source }, { layer: 'toml', source: 'config.toml' });
    });
  }

  it('names the file by tomlPath in sources and messages', () => {
    const tomlPath = '/etc/orchestrator/config.toml';
    const sources = { env: MINIMAL_ENV, tomlPath, tomlText: '[migration]\nrollout_timeout = "1m"\n' };
    assert.equal(resolveWithProvenance(sources).settings['migration.rollout_timeout'].source, tomlPath);
  });
});

describe('precedence', () => {
  const tomlText = ['[migration]', 'rollout_timeout = "3m"', 'verification_delay = "10s"'].join('\n');

  it('env beats config.toml beats default', () => {
    const env = { ...MINIMAL_ENV, ROLLOUT_TIMEOUT: '4m' };
    const { config, settings } = resolveWithProvenance({ env, tomlText });
    assert.equal(config!.migration.rollout_timeout, 240_000);
    assert.equal(settings['migration.rollout_timeout'].layer, 'env');
    assert.equal(config!.migration.verification_delay, 10_000);
    assert.equal(settings['migration.verification_delay'].layer, 'toml');
    assert.equal(config!.recovery.cooldown, 2_700_000);
    assert.equal(settings['recovery.cooldown'].layer, 'default');
  });

  it('treats an empty or blank environment variable as unset', () => {
    const env = { ...MINIMAL_ENV, ROLLOUT_TIMEOUT: '', VERIFICATION_DELAY: '  ' };
    const { settings } = resolveWithProvenance({ env, tomlText });
    assert.equal(settings['migration.rollout_timeout'].layer, 'toml');
    assert.equal(settings['migration.verification_delay'].layer, 'toml');
  });

  it('prefers AWS_ENDPOINT_URL_SQS over AWS_ENDPOINT_URL', () => {
    const env = { ...MINIMAL_ENV, AWS_ENDPOINT_URL: 'http://general:4566', AWS_ENDPOINT_URL_SQS: 'http://sqs:9324' };
    const { config, settings } = resolveWithProvenance({ env });
    assert.equal(config!.aws.endpoint_url, 'http://sqs:9324');
    assert.equal(settings['aws.endpoint_url'].source, 'env AWS_ENDPOINT_URL_SQS');
  });
});

describe('validation', () => {
  const cases: Array<{ rule: string; sources: ConfigSources; key: string; source: string; value: string; message: string }> = [
    {
      rule: 'mode is single or namespace',
      sources: { env: { ...MINIMAL_ENV, MODE: 'cluster' } },
      key: 'kubernetes.mode',
      source: 'env MODE',
      value: '"cluster"',
      message: 'kubernetes.mode from env MODE: got "cluster"; expected one of single, namespace',
    },
    {
      rule: 'single mode requires deployment_name',
      sources: { env: { SQS_QUEUE_URL: QUEUE_URL } },
      key: 'kubernetes.deployment_name',
      source: 'default',
      value: '(not set)',
      message:
        'kubernetes.deployment_name from default: not set; expected the name of the Deployment to manage, ' +
        'because kubernetes.mode is "single" (from default); ' +
        'set env DEPLOYMENT_NAME or deployment_name under [kubernetes] in config.toml, or use mode "namespace"',
    },
    {
      rule: 'sqs_queue_url is required',
      sources: { env: { DEPLOYMENT_NAME: 'api' } },
      key: 'aws.sqs_queue_url',
      source: 'default',
      value: '(not set)',
      message:
        'aws.sqs_queue_url from default: not set; expected an http:// or https:// URL; ' + 'set env SQS_QUEUE_URL or sqs_queue_url under [aws] in config.toml',
    },
    {
      rule: 'sqs_queue_url is a URL',
      sources: { env: { DEPLOYMENT_NAME: 'api' }, tomlText: '[aws]\nsqs_queue_url = "interruptions"' },
      key: 'aws.sqs_queue_url',
      source: 'config.toml',
      value: '"interruptions"',
      message: 'aws.sqs_queue_url from config.toml: got "interruptions" (not a URL); expected an http:// or https:// URL',
    },
    {
      rule: 'sqs_queue_url is http(s)',
      sources: { env: { DEPLOYMENT_NAME: 'api', SQS_QUEUE_URL: 'ftp://queue' } },
      key: 'aws.sqs_queue_url',
      source: 'env SQS_QUEUE_URL',
      value: '"ftp://queue"',
      message: 'aws.sqs_queue_url from env SQS_QUEUE_URL: got "ftp://queue" (scheme ftp:); expected an http:// or https:// URL',
    },
    {
      rule: 'the SQS visibility timeout is whole seconds',
      sources: { env: { ...MINIMAL_ENV, SQS_VISIBILITY_TIMEOUT: '1500ms' } },
      key: 'aws.visibility_timeout',
      source: 'env SQS_VISIBILITY_TIMEOUT',
      value: '"1500ms"',
      message:
        'aws.visibility_timeout from env SQS_VISIBILITY_TIMEOUT: got "1500ms" (not whole seconds); expected a duration in whole seconds from 1s to 12h, such as "30s" (what SQS accepts)',
    },
    {
      rule: 'the event account is 12 digits',
      sources: { env: { ...MINIMAL_ENV, EVENT_ACCOUNT: '1234' } },
      key: 'aws.event_account',
      source: 'env EVENT_ACCOUNT',
      value: '"1234"',
      message: 'aws.event_account from env EVENT_ACCOUNT: got "1234"; expected an AWS account id (12 digits)',
    },
    {
      rule: 'the event Region is a Region name',
      sources: { env: { ...MINIMAL_ENV }, tomlText: '[aws]\nevent_region = "US East"' },
      key: 'aws.event_region',
      source: 'config.toml',
      value: '"US East"',
      message: 'aws.event_region from config.toml: got "US East"; expected an AWS Region, such as "us-east-1"',
    },
    {
      rule: 'the max event age is not zero',
      sources: { env: { ...MINIMAL_ENV, MAX_EVENT_AGE: '0' } },
      key: 'aws.max_event_age',
      source: 'env MAX_EVENT_AGE',
      value: '"0"',
      message: 'aws.max_event_age from env MAX_EVENT_AGE: got "0" (zero is not allowed here); expected a duration greater than zero, such as "5s" or "1h30m"',
    },
    {
      rule: 'the SQS visibility timeout is at most 12h',
      sources: { env: { ...MINIMAL_ENV }, tomlText: '[aws]\nvisibility_timeout = "13h"' },
      key: 'aws.visibility_timeout',
      source: 'config.toml',
      value: '"13h"',
      message:
        'aws.visibility_timeout from config.toml: got "13h" (longer than 12h); expected a duration in whole seconds from 1s to 12h, such as "30s" (what SQS accepts)',
    },
    {
      rule: "booleans are Go's strconv.ParseBool spellings",
      sources: { env: { ...MINIMAL_ENV, ALERTS_ENABLED: 'yes' } },
      key: 'alerts.enabled',
      source: 'env ALERTS_ENABLED',
      value: '"yes"',
      message: 'alerts.enabled from env ALERTS_ENABLED: got "yes"; expected true or false (also 1, t, T, TRUE, True, 0, f, F, FALSE, False)',
    },
    {
      rule: 'booleans in config.toml too',
      sources: { env: MINIMAL_ENV, tomlText: '[controller]\ndry_run = 2' },
      key: 'controller.dry_run',
      source: 'config.toml',
      value: '2',
      message: 'controller.dry_run from config.toml: got 2; expected true or false (also 1, t, T, TRUE, True, 0, f, F, FALSE, False)',
    },
    {
      rule: 'integers are not negative',
      sources: { env: { ...MINIMAL_ENV, MAX_CONCURRENT_RECOVERIES: '-1' } },
      key: 'controller.max_concurrent_recoveries',
      source: 'env MAX_CONCURRENT_RECOVERIES',
      value: '"-1"',
      message: 'controller.max_concurrent_recoveries from env MAX_CONCURRENT_RECOVERIES: got "-1"; expected a whole number >= 1',
    },
    {
      rule: 'integers are whole',
      sources: { env: MINIMAL_ENV, tomlText: '[controller]\nmax_concurrent_patches = 2.5' },
      key: 'controller.max_concurrent_patches',
      source: 'config.toml',
      value: '2.5',
      message: 'controller.max_concurrent_patches from config.toml: got 2.5; expected a whole number >= 1',
    },
    {
      rule: 'health_check_retries >= 1',
      sources: { env: { ...MINIMAL_ENV, HEALTH_CHECK_RETRIES: '0' } },
      key: 'monitoring.health_check_retries',
      source: 'env HEALTH_CHECK_RETRIES',
      value: '"0"',
      message: 'monitoring.health_check_retries from env HEALTH_CHECK_RETRIES: got "0"; expected a whole number >= 1',
    },
    {
      rule: 'metrics_port is a port',
      sources: { env: { ...MINIMAL_ENV, METRICS_PORT: '70000' } },
      key: 'controller.metrics_port',
      source: 'env METRICS_PORT',
      value: '"70000"',
      message: 'controller.metrics_port from env METRICS_PORT: got "70000"; expected a whole number from 1 to 65535',
    },
    {
      rule: 'durations are not negative',
      sources: { env: { ...MINIMAL_ENV, ROLLOUT_TIMEOUT: '-5s' } },
      key: 'migration.rollout_timeout',
      source: 'env ROLLOUT_TIMEOUT',
      value: '"-5s"',
      message:
        'migration.rollout_timeout from env ROLLOUT_TIMEOUT: got "-5s" (negative durations are not allowed); ' +
        'expected a duration greater than zero, such as "5s" or "1h30m"',
    },
    {
      rule: 'durations are positive where zero makes no sense',
      sources: { env: { ...MINIMAL_ENV, CHECK_INTERVAL: '0s' } },
      key: 'monitoring.check_interval',
      source: 'env CHECK_INTERVAL',
      value: '"0s"',
      message:
        'monitoring.check_interval from env CHECK_INTERVAL: got "0s" (zero is not allowed here); ' +
        'expected a duration greater than zero, such as "5s" or "1h30m"',
    },
    {
      rule: 'durations have units',
      sources: { env: { ...MINIMAL_ENV, RECOVERY_TIMEOUT: '180' } },
      key: 'recovery.timeout',
      source: 'env RECOVERY_TIMEOUT',
      value: '"180"',
      message:
        'recovery.timeout from env RECOVERY_TIMEOUT: got "180" (missing unit after "180"; units are ns, us, ms, s, m, h); ' +
        'expected a duration greater than zero, such as "5s" or "1h30m"',
    },
    {
      rule: 'durations in config.toml are strings',
      sources: { env: MINIMAL_ENV, tomlText: '[recovery]\ncooldown = 45' },
      key: 'recovery.cooldown',
      source: 'config.toml',
      value: '45',
      message: 'recovery.cooldown from config.toml: got 45 (a number without a unit); ' + 'expected a duration of zero or more, such as "0s", "5s" or "1h30m"',
    },
    {
      rule: 'max_backoff >= backoff_base',
      sources: { env: { ...MINIMAL_ENV, RECOVERY_BACKOFF_BASE: '2h' }, tomlText: '[recovery]\nmax_backoff = "1h"' },
      key: 'recovery.max_backoff',
      source: 'config.toml',
      value: '1h0m0s',
      message:
        'recovery.max_backoff from config.toml: got 1h0m0s; ' + 'expected a duration of at least recovery.backoff_base (2h0m0s from env RECOVERY_BACKOFF_BASE)',
    },
    {
      rule: 'logging level is a pino level',
      sources: { env: { ...MINIMAL_ENV, LOG_LEVEL: 'verbose' } },
      key: 'logging.level',
      source: 'env LOG_LEVEL',
      value: '"verbose"',
      message: 'logging.level from env LOG_LEVEL: got "verbose"; expected one of trace, debug, info, warn, error, fatal, silent',
    },
    {
      rule: 'logging format is auto/console/json',
      sources: { env: { ...MINIMAL_ENV, LOG_FORMAT: 'text' } },
      key: 'logging.format',
      source: 'env LOG_FORMAT',
      value: '"text"',
      message: 'logging.format from env LOG_FORMAT: got "text"; expected one of auto, console, json',
    },
    {
      rule: 'the Slack webhook is a URL while alerts are enabled',
      sources: { env: { ...MINIMAL_ENV, SLACK_WEBHOOK_URL: 'hooks.slack.com/services/super-secret-token' } },
      key: 'alerts.slack_webhook_url',
      source: 'env SLACK_WEBHOOK_URL',
      value: '<redacted>',
      message:
        'alerts.slack_webhook_url from env SLACK_WEBHOOK_URL: got <redacted> (not a URL); ' +
        'expected an https:// URL (http:// only to a loopback host: localhost, 127.0.0.1, ::1), because alerts.enabled is true (from default)',
    },
    {
      rule: 'Events about Nodes go to default or kube-system, the namespaces the API server accepts for them',
      sources: { env: { ...MINIMAL_ENV, NODE_EVENTS_NAMESPACE: 'spot-orchestrator' } },
      key: 'controller.node_events_namespace',
      source: 'env NODE_EVENTS_NAMESPACE',
      value: '"spot-orchestrator"',
      message: 'controller.node_events_namespace from env NODE_EVENTS_NAMESPACE: got "spot-orchestrator"; expected one of default, kube-system',
    },
    {
      rule: 'the Slack webhook is https: plain http to a host that is not loopback is refused',
      sources: { env: { ...MINIMAL_ENV, SLACK_WEBHOOK_URL: 'http://hooks.slack.com/services/super-secret-token' } },
      key: 'alerts.slack_webhook_url',
      source: 'env SLACK_WEBHOOK_URL',
      value: '<redacted>',
      message:
        'alerts.slack_webhook_url from env SLACK_WEBHOOK_URL: got <redacted> (plain http to a host that is not loopback would send the secret URL and every alert unencrypted); ' +
        'expected an https:// URL (http:// only to a loopback host: localhost, 127.0.0.1, ::1), because alerts.enabled is true (from default)',
    },
  ];

  for (const { rule, sources, key, source, value, message } of cases) {
    it(rule, () => {
      const problem = onlyProblem(sources);
      assert.deepEqual({ key: problem.key, source: problem.source, value: problem.value, message: problem.message }, { key, source, value, message });
      assert.throws(
        () => loadConfig(sources),
        (error: unknown) => error instanceof ConfigError && error.message.includes(message),
      );
    });
  }

  it("accepts exactly the boolean spellings of Go's strconv.ParseBool, as the original did", () => {
    const spellings = [
      ['1', true],
      ['t', true],
      ['T', true],
      ['TRUE', true],
      ['true', true],
      ['True', true],
      ['0', false],
      ['f', false],
      ['F', false],
      ['FALSE', false],
      ['false', false],
      ['False', false],
    ] as const;
    for (const [raw, value] of spellings) {
      assert.equal(loadConfig({ env: { ...MINIMAL_ENV, DRY_RUN: raw } }).controller.dry_run, value, `env ${raw}`);
      assert.equal(loadConfig({ env: MINIMAL_ENV, tomlText: `[controller]\ndry_run = "${raw}"` }).controller.dry_run, value, `config.toml "${raw}"`);
    }
    for (const raw of ['tRuE', 'yes', 'on', 'y']) assert.equal(onlyProblem({ env: { ...MINIMAL_ENV, DRY_RUN: raw } }).key, 'controller.dry_run', raw);
  });

  it("reads a bare 0 as a zero duration, as Go's time.ParseDuration does", () => {
    const fromEnv = loadConfig({ env: { ...MINIMAL_ENV, VERIFICATION_DELAY: '0', RECOVERY_COOLDOWN: '0' } });
    assert.equal(fromEnv.migration.verification_delay, 0);
    assert.equal(fromEnv.recovery.cooldown, 0);
    const fromToml = loadConfig({ env: MINIMAL_ENV, tomlText: '[recovery]\ncooldown = 0\nbackoff_base = "0"\n' });
    assert.equal(fromToml.recovery.cooldown, 0);
    assert.equal(fromToml.recovery.backoff_base, 0);
    // Zero is read, then refused where it means nothing (a rollout cannot time out at once).
    assert.match(onlyProblem({ env: { ...MINIMAL_ENV, ROLLOUT_TIMEOUT: '0' } }).message, /got "0" \(zero is not allowed here\)/);
    // Any other number has no unit; Go would read it as nanoseconds, which no one means.
    assert.match(onlyProblem({ env: MINIMAL_ENV, tomlText: '[recovery]\ncooldown = 30' }).message, /got 30 \(a number without a unit\)/);
  });

  it('treats an empty string in config.toml as unset', () => {
    const { config, settings } = resolveWithProvenance({ env: MINIMAL_ENV, tomlText: '[kubernetes]\nnamespace = ""\n[alerts]\nslack_webhook_url = "  "' });
    assert.equal(config!.kubernetes.namespace, 'default');
    assert.equal(settings['kubernetes.namespace'].layer, 'default');
    assert.equal(config!.alerts.slack_webhook_url, undefined);
    assert.match(
      onlyProblem({ env: {}, tomlText: '[kubernetes]\ndeployment_name = "api"\n[aws]\nsqs_queue_url = ""' }).message,
      /^aws\.sqs_queue_url from default: not set; .*set env SQS_QUEUE_URL/,
    );
  });

  it('warns about, and ignores, unknown keys and sections, naming the key and the file', () => {
    const tomlText = 'namespace_top = 1\n[migration]\nrollout_timout = "5m"\n[monitor]\ncheck_interval = "5s"\n';
    const { config, problems, warnings } = resolveWithProvenance({ env: MINIMAL_ENV, tomlText, tomlPath: '/etc/sfo/config.toml' });
    assert.deepEqual(problems, []);
    assert.equal(config!.migration.rollout_timeout, 120_000);
    assert.deepEqual(
      warnings.map((w) => [w.key, w.source, w.message]),
      [
        [
          'namespace_top',
          '/etc/sfo/config.toml',
          '/etc/sfo/config.toml: unknown top-level key "namespace_top", ignored; expected one of the sections [kubernetes], [monitoring], [migration], [recovery], [compute], [aws], [alerts], [logging], [controller]',
        ],
        [
          'migration.rollout_timout',
          '/etc/sfo/config.toml',
          '/etc/sfo/config.toml: unknown key migration.rollout_timout, ignored; expected one of the keys of [migration]: rollout_timeout, verification_delay, triage, fargate_launch_burst, fargate_launch_rate, fargate_start_estimate, on_rebalance, scheduled_change_lead, survivor_grace, rebalance_mark_ttl',
        ],
        [
          'monitor',
          '/etc/sfo/config.toml',
          '/etc/sfo/config.toml: unknown section [monitor], ignored; expected one of the sections [kubernetes], [monitoring], [migration], [recovery], [compute], [aws], [alerts], [logging], [controller]',
        ],
      ],
    );
  });

  it('allows zero where "no wait" makes sense', () => {
    const env = { ...MINIMAL_ENV, VERIFICATION_DELAY: '0s', RECOVERY_COOLDOWN: '0s', RECOVERY_BACKOFF_BASE: '0s' };
    assert.deepEqual(problemsOf({ env }), []);
  });

  it('does not require deployment_name in namespace mode', () => {
    assert.deepEqual(problemsOf({ env: { SQS_QUEUE_URL: QUEUE_URL, MODE: 'namespace' } }), []);
  });

  it('accepts an http:// Slack webhook only on a loopback host (a local stand-in for Slack), https:// anywhere', () => {
    for (const url of ['http://127.0.0.1:8080/services/T/B/x', 'http://127.1.2.3/x', 'http://localhost:9/x', 'http://[::1]:9/x', WEBHOOK]) {
      assert.deepEqual(problemsOf({ env: { ...MINIMAL_ENV, SLACK_WEBHOOK_URL: url } }), [], url);
    }
    for (const url of [
      'http://hooks.slack.com/services/T/B/x',
      'http://10.0.0.1/x',
      'http://localhost.example.com/x',
      'http://[::2]/x',
      'http://128.0.0.1/x',
    ]) {
      assert.equal(onlyProblem({ env: { ...MINIMAL_ENV, SLACK_WEBHOOK_URL: url } }).key, 'alerts.slack_webhook_url', url);
    }
  });

  it('ignores a bad Slack webhook while alerts are disabled', () => {
    const env = { ...MINIMAL_ENV, ALERTS_ENABLED: 'false', SLACK_WEBHOOK_URL: 'not a url' };
    assert.deepEqual(problemsOf({ env }), []);
  });

  it('reports a TOML syntax error with its position', () => {
    const problem = onlyProblem({ env: MINIMAL_ENV, tomlText: '[migration]\nrollout_timeout = \n' });
    assert.match(problem.message, /^config\.toml: .+ \(line 2, column \d+\)$/);
  });
});

describe('kubernetes.service_label_selector (the original matched Services by one label)', () => {
  it('is accepted when set, with a warning that says it changes nothing and why', () => {
    for (const sources of [
      { env: { ...MINIMAL_ENV, SERVICE_LABEL_SELECTOR: 'app.kubernetes.io/name' } },
      { env: MINIMAL_ENV, tomlText: '[kubernetes]\nservice_label_selector = "tier"', tomlPath: 'config.toml' },
    ]) {
      const { config, problems, warnings } = resolveWithProvenance(sources);
      assert.deepEqual(problems, []);
      assert.ok(config);
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.equal(warnings[0]!.key, 'kubernetes.service_label_selector');
      assert.equal(warnings[0]!.warning, 'no_effect', 'logged as a setting with no effect, not as an unknown key');
      assert.match(warnings[0]!.message, /changes nothing: the Services a rollout is checked against are those whose selector picks the Deployment's pods/);
    }
  });

  it('says nothing when left at its default', () => {
    assert.deepEqual(resolveWithProvenance({ env: MINIMAL_ENV }).warnings, []);
  });
});

describe("the Go original's sample config.toml", () => {
  const tomlPath = new URL('../../test/fixtures/go-original/config.toml', import.meta.url).pathname;
  const tomlText = readFileSync(tomlPath, 'utf8');

  it('loads with only SQS_QUEUE_URL set: empty strings are unset, so alerts are on with no webhook', () => {
    const { config, problems, warnings } = resolveWithProvenance({ env: { SQS_QUEUE_URL: QUEUE_URL }, tomlText, tomlPath });
    assert.deepEqual(problems, []);
    assert.deepEqual(warnings, []);
    assert.equal(config!.kubernetes.mode, 'single');
    assert.equal(config!.kubernetes.deployment_name, 'my-app');
    assert.equal(config!.aws.sqs_queue_url, QUEUE_URL);
    assert.equal(config!.alerts.enabled, true);
    assert.equal(config!.alerts.slack_webhook_url, undefined);
    assert.equal(config!.migration.rollout_timeout, 120_000);
  });

  it('without SQS_QUEUE_URL names the one missing value', () => {
    assert.deepEqual(
      problemsOf({ env: {}, tomlText, tomlPath }).map((p) => p.key),
      ['aws.sqs_queue_url'],
    );
  });
});

describe('loadConfigFor: a command checks only what it uses', () => {
  it('loads the alerts and logging sections without SQS_QUEUE_URL or DEPLOYMENT_NAME', () => {
    const { config } = loadConfigFor({ env: { SLACK_WEBHOOK_URL: WEBHOOK } }, { sections: ['alerts', 'logging'] });
    assert.deepEqual(config, { alerts: { enabled: true, slack_webhook_url: WEBHOOK }, logging: { level: 'info', format: 'auto' } });
  });

  it('needs DEPLOYMENT_NAME in single mode only for a command that acts on the managed Deployments', () => {
    assert.equal(loadConfigFor({ env: {} }, { sections: ['kubernetes'] }).config.kubernetes.namespace, 'default');
    assert.throws(() => loadConfigFor({ env: {} }, { sections: ['kubernetes'], managed: true }), /kubernetes\.deployment_name from default: not set/);
  });

  it('lists the ignored keys under the problems, where a typo explains a value "not set"', () => {
    assert.throws(
      () => loadConfigFor({ env: {}, tomlText: '[aws]\nsqs_queue_ur = "http://127.0.0.1/q"' }, { sections: ['aws'] }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(
          error.message,
          /^invalid configuration \(1 problem\):\n {2}- aws\.sqs_queue_url from default: not set.*\nalso ignored:\n {2}- config\.toml: unknown key aws\.sqs_queue_ur, ignored/s,
        );
        return true;
      },
    );
  });

  it('still refuses a bad value in a section it uses, and a config.toml that does not parse', () => {
    assert.throws(() => loadConfigFor({ env: { ALERTS_ENABLED: 'maybe' } }, { sections: ['alerts'] }), /alerts\.enabled from env ALERTS_ENABLED/);
    assert.throws(() => loadConfigFor({ env: {}, tomlText: '[alerts\n' }, { sections: ['alerts'] }), /config\.toml: .*\(line 1, column \d+\)/);
  });
});

describe('multiple problems', () => {
  it('collects every problem into one ConfigError', () => {
    const sources: ConfigSources = {
      env: { MODE: 'single', ROLLOUT_TIMEOUT: 'soon', LOG_LEVEL: 'loud' },
      tomlText: '[monitoring]\nhealth_check_retries = 0\n[aws]\nregion = ""\n',
    };
    assert.throws(
      () => loadConfig(sources),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(
          error.problems.map((problem) => `${problem.key} <- ${problem.source}`),
          [
            'kubernetes.deployment_name <- default',
            'monitoring.health_check_retries <- config.toml',
            'migration.rollout_timeout <- env ROLLOUT_TIMEOUT',
            'aws.sqs_queue_url <- default',
            'logging.level <- env LOG_LEVEL',
          ],
        );
        const lines = error.message.split('\n');
        assert.equal(lines[0], 'invalid configuration (5 problems):');
        assert.deepEqual(
          lines.slice(1),
          error.problems.map((problem) => `  - ${problem.message}`),
        );
        return true;
      },
    );
  });
});

describe('Slack webhook redaction', () => {
  const secret = 'super-secret-token';

  function assertHidden(sources: ConfigSources): void {
    const resolution = resolveWithProvenance(sources);
    assert.ok(resolution.problems.length > 0, 'expected a problem');
    const shown = JSON.stringify(resolution.problems) + JSON.stringify(Object.values(resolution.settings).map((s) => s.display));
    assert.ok(!shown.includes(secret), shown);
    assert.throws(
      () => loadConfig(sources),
      (error: unknown) => error instanceof Error && !error.message.includes(secret),
    );
  }

  it('hides an invalid webhook from env', () => {
    assertHidden({ env: { ...MINIMAL_ENV, SLACK_WEBHOOK_URL: `ftp://hooks/${secret}` } });
  });

  it('hides an invalid webhook from config.toml', () => {
    assertHidden({ env: MINIMAL_ENV, tomlText: `[alerts]\nslack_webhook_url = "hooks/${secret}"` });
  });

  it('hides a webhook under a misspelt key (a warning, not a problem)', () => {
    const resolution = resolveWithProvenance({ env: MINIMAL_ENV, tomlText: `[alerts]\nslack_webhok_url = "${WEBHOOK}"` });
    assert.equal(resolution.warnings.length, 1);
    assert.ok(!JSON.stringify(resolution.warnings).includes(secret));
  });

  it('hides a webhook on a line with a TOML syntax error', () => {
    assertHidden({ env: MINIMAL_ENV, tomlText: `[alerts]\nslack_webhook_url = "${WEBHOOK}\n` });
  });

  it('shows a valid webhook as <redacted> in provenance', () => {
    const { config, settings } = resolveWithProvenance({ env: { ...MINIMAL_ENV, SLACK_WEBHOOK_URL: WEBHOOK } });
    assert.equal(config!.alerts.slack_webhook_url, WEBHOOK);
    assert.equal(settings['alerts.slack_webhook_url'].display, '<redacted>');
  });
});

describe('readConfigFile', () => {
  function withDirectory(run: (directory: string) => void): void {
    const directory = mkdtempSync(join(tmpdir(), 'config-test-'));
    try {
      run(directory);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  }

  it('reads ./config.toml when present', () => {
    withDirectory((directory) => {
      writeFileSync(join(directory, 'config.toml'), '[aws]\nregion = "eu-west-1"\n');
      const file = readConfigFile({}, directory);
      assert.deepEqual(file, { tomlPath: join(directory, 'config.toml'), tomlText: '[aws]\nregion = "eu-west-1"\n' });
      assert.equal(loadConfig({ env: MINIMAL_ENV, ...file }).aws.region, 'eu-west-1');
    });
  });

  it('returns nothing without a file', () => {
    withDirectory((directory) => assert.equal(readConfigFile({}, directory), undefined));
  });

  it('reads the file named by CONFIG_FILE', () => {
    withDirectory((directory) => {
      writeFileSync(join(directory, 'custom.toml'), '[logging]\nlevel = "warn"\n');
      assert.equal(readConfigFile({ CONFIG_FILE: 'custom.toml' }, directory)?.tomlPath, join(directory, 'custom.toml'));
    });
  });

  it('fails when CONFIG_FILE names a missing file', () => {
    withDirectory((directory) => {
      assert.throws(() => readConfigFile({ CONFIG_FILE: 'missing.toml' }, directory), /reading config file .*missing\.toml/);
    });
  });
});

describe('leader election timings', () => {
  it('refuse a lease that expires before a leader notices it cannot renew', () => {
    const { problems } = resolveWithProvenance({ env: { ...MINIMAL_ENV, LEASE_DURATION: '12s', RENEW_DEADLINE: '10s', RETRY_PERIOD: '2s' } });
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.key, 'controller.lease_duration');
    assert.match(
      problems[0]!.message,
      /longer than controller\.renew_deadline \(10s from env RENEW_DEADLINE\) plus controller\.retry_period \(2s from env RETRY_PERIOD\)/,
    );
    assert.deepEqual(resolveWithProvenance({ env: { ...MINIMAL_ENV, LEASE_DURATION: '13s', RENEW_DEADLINE: '10s', RETRY_PERIOD: '2s' } }).problems, []);
  });
});
