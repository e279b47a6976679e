// Builds the Config from three layers: environment > config.toml > defaults.
// Every setting is read and checked before anything fails, so one start-up error lists all problems.

import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { SCHEMA, settingFor, type Config, type ConfigKey, type Setting } from './config.js';
import { describeRaw, webhookUrlType } from './value-types.js';

export type ConfigLayer = 'env' | 'toml' | 'default';

export interface ConfigSources {
  env: Readonly<Record<string, string | undefined>>;
  /** Contents of config.toml; absent means no file. */
  tomlText?: string;
  /** Only names the file in messages (default "config.toml"); loadConfig never reads it. */
  tomlPath?: string;
}

export interface ResolvedSetting {
  key: ConfigKey;
  layer: ConfigLayer;
  /** Where exactly: "env ROLLOUT_TIMEOUT", the config file's name, or "default". */
  source: string;
  /** Typed value (durations in ms); undefined when unset or invalid. */
  value: unknown;
  /** For people: the formatted value, "<redacted>" for secrets, "(not set)" when unset. */
  display: string;
  problem?: ConfigProblem;
}

export type ConfigProvenance = Record<ConfigKey, ResolvedSetting>;

export interface ConfigProblem {
  /** "migration.rollout_timeout", or the unknown key/section found in config.toml. */
  key: string;
  source: string;
  /** The offending value as shown to people: quoted, "<redacted>" for secrets, "(not set)" when missing. */
  value: string;
  expected: string;
  message: string;
  /** For warnings: a config.toml key nobody reads, or a known setting that changes nothing here. */
  warning?: 'unknown_key' | 'no_effect';
}

export interface ConfigResolution {
  /** Present only when there are no problems. */
  config: Config | undefined;
  settings: ConfigProvenance;
  problems: ConfigProblem[];
  /** Not fatal: unknown keys and sections in config.toml, which the Go original ignored. */
  warnings: ConfigProblem[];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  /** `warnings` are listed too: a key ignored for a typo is often why a value is "not set". */
  constructor(
    readonly problems: readonly ConfigProblem[],
    readonly warnings: readonly ConfigProblem[] = [],
  ) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    const ignored = warnings.length > 0 ? `\nalso ignored:\n${warnings.map((warning) => `  - ${warning.message}`).join('\n')}` : '';
    super(`invalid configuration (${count}):\n${problems.map((problem) => `  - ${problem.message}`).join('\n')}${ignored}`);
  }
}

const REDACTED = '<redacted>';
const NOT_SET = '(not set)';
const DEFAULT_TOML_NAME = 'config.toml';
/** The key of a problem with the file as a whole (a TOML syntax error). */
const FILE_KEY = '(file)';

/** The Config for these inputs, or a ConfigError listing every problem. Pure: reads no files or process state. */
export function loadConfig(sources: ConfigSources): Config {
  const { config, problems, warnings } = resolveWithProvenance(sources);
  if (!config) throw new ConfigError(problems, warnings);
  return config;
}

/** Every setting with its value and the layer it came from, plus all problems; for `config check`. Never throws. */
export function resolveWithProvenance(sources: ConfigSources): ConfigResolution {
  const tomlName = sources.tomlPath ?? DEFAULT_TOML_NAME;
  const toml = readTomlLayer(sources.tomlText, tomlName);
  const settings = {} as ConfigProvenance;
  for (const key of configKeys()) {
    settings[key] = resolveSetting(key, sources.env, toml.values, tomlName);
  }
  checkAcrossSettings(settings);

  const problems = [...toml.problems, ...Object.values(settings).flatMap((setting) => setting.problem ?? [])];
  const warnings = [...toml.warnings, ...acceptedButUnused(settings)];
  return { config: problems.length === 0 ? buildConfig(settings) : undefined, settings, problems, warnings };
}

/**
 * Settings the Go original had that change nothing here, when someone set them: accepted so its
 * config starts this controller, and said out loud so nobody tunes a knob that is not connected.
 */
function acceptedButUnused(settings: ConfigProvenance): ConfigProblem[] {
  const selector = settings['kubernetes.service_label_selector'];
  if (selector.layer === 'default' || selector.problem) return [];
  return [
    {
      key: selector.key,
      source: selector.source,
      value: selector.display,
      expected: 'nothing: the setting is not needed',
      warning: 'no_effect',
      message:
        `${selector.key} from ${selector.source} (${selector.display}) is accepted for the Go original's sake and changes nothing: ` +
        `the Services a rollout is checked against are those whose selector picks the Deployment's pods, as Kubernetes routes traffic`,
    },
  ];
}

/** What a command reads: whole sections of the Config, and whether it acts on the managed Deployments. */
export interface ConfigNeeds<S extends keyof Config> {
  sections: readonly S[];
  /** Single mode then needs kubernetes.deployment_name, as `run` does. */
  managed?: boolean;
}

/**
 * The sections one command uses, checked; problems elsewhere are not its business (`alerts test`
 * must not demand SQS_QUEUE_URL). A config.toml that cannot be parsed is always a problem.
 */
export function loadConfigFor<S extends keyof Config>(
  sources: ConfigSources,
  needs: ConfigNeeds<S>,
): { config: Pick<Config, S>; settings: ConfigProvenance; warnings: ConfigProblem[] } {
  const { settings, problems, warnings } = resolveWithProvenance(sources);
  const sections = new Set<string>(needs.sections);
  const relevant = problems.filter((problem) => {
    if (problem.key === FILE_KEY) return true;
    if (problem.key === 'kubernetes.deployment_name' && settings['kubernetes.deployment_name'].value === undefined) return needs.managed === true;
    return sections.has(problem.key.split('.')[0]!);
  });
  if (relevant.length > 0) throw new ConfigError(relevant, warnings);
  const config = buildConfig(settings);
  return { config: Object.fromEntries(needs.sections.map((section) => [section, config[section]])) as Pick<Config, S>, settings, warnings };
}

/** config.toml from env CONFIG_FILE (which must exist), else ./config.toml if present, else nothing. */
export function readConfigFile(
  env: Readonly<Record<string, string | undefined>>,
  cwd: string = process.cwd(),
): { tomlPath: string; tomlText: string } | undefined {
  const explicit = env.CONFIG_FILE?.trim();
  const tomlPath = resolve(cwd, explicit || DEFAULT_TOML_NAME);
  if (!explicit && !existsSync(tomlPath)) return undefined;
  try {
    return { tomlPath, tomlText: readFileSync(tomlPath, 'utf8') };
  } catch (cause) {
    throw new Error(`reading config file ${tomlPath}${explicit ? ' (from env CONFIG_FILE)' : ''}`, { cause });
  }
}

/** What the process starts with: its own environment and config file. */
export function loadConfigFromEnvironment(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  return loadConfig({ env, ...readConfigFile(env) });
}

export function configKeys(): ConfigKey[] {
  return Object.entries(SCHEMA).flatMap(([section, settings]) => Object.keys(settings).map((name) => `${section}.${name}` as ConfigKey));
}

function resolveSetting(key: ConfigKey, env: ConfigSources['env'], tomlValues: ReadonlyMap<string, unknown>, tomlName: string): ResolvedSetting {
  const setting = settingFor(key);
  const { layer, source, raw } = pickLayer(setting, key, env, tomlValues, tomlName);
  if (raw === undefined) {
    const problem = setting.required ? makeProblem({ key, source, value: NOT_SET, expected: setting.type.expected, hint: whereToSet(key) }) : undefined;
    return { key, layer, source, value: undefined, display: NOT_SET, problem };
  }

  const parsed = setting.type.parse(raw);
  const shown = setting.secret ? REDACTED : describeRaw(raw);
  if (!parsed.ok) {
    const problem = makeProblem({ key, source, value: shown, expected: parsed.expected, reason: parsed.reason });
    return { key, layer, source, value: undefined, display: shown, problem };
  }
  const display = setting.secret ? REDACTED : setting.type.format(parsed.value);
  return { key, layer, source, value: parsed.value, display };
}

function pickLayer(
  setting: Setting<unknown>,
  key: ConfigKey,
  env: ConfigSources['env'],
  tomlValues: ReadonlyMap<string, unknown>,
  tomlName: string,
): { layer: ConfigLayer; source: string; raw: unknown } {
  for (const name of setting.env) {
    const value = env[name];
    // Empty counts as unset: manifests often carry `VALUE: ""` to mean "not configured".
    if (value !== undefined && value.trim() !== '') return { layer: 'env', source: `env ${name}`, raw: value.trim() };
  }
  // Empty counts as unset here too: the original's sample config ships `sqs_queue_url = ""` and
  // `slack_webhook_url = ""` to mean "set it elsewhere" and "no Slack".
  const fromToml = tomlValues.get(key);
  if (fromToml !== undefined && !(typeof fromToml === 'string' && fromToml.trim() === '')) return { layer: 'toml', source: tomlName, raw: fromToml };
  return { layer: 'default', source: 'default', raw: setting.default };
}

/** Rules that involve more than one setting; each problem is pinned on the setting to change. */
function checkAcrossSettings(settings: ConfigProvenance): void {
  const mode = settings['kubernetes.mode'];
  const deploymentName = settings['kubernetes.deployment_name'];
  if (mode.value === 'single' && deploymentName.value === undefined && !deploymentName.problem) {
    deploymentName.problem = makeProblem({
      key: deploymentName.key,
      source: deploymentName.source,
      value: NOT_SET,
      expected: `the name of the Deployment to manage, because kubernetes.mode is "single" (from ${mode.source})`,
      hint: `${whereToSet(deploymentName.key)}, or use mode "namespace"`,
    });
  }

  checkNamespaceScope(settings);

  const base = settings['recovery.backoff_base'];
  const max = settings['recovery.max_backoff'];
  if (typeof base.value === 'number' && typeof max.value === 'number' && max.value < base.value) {
    max.problem = makeProblem({
      key: max.key,
      source: max.source,
      value: max.display,
      expected: `a duration of at least recovery.backoff_base (${base.display} from ${base.source})`,
    });
  }

  // A leader notices it can no longer renew at most one retry period after the renew deadline; a
  // standby takes the Lease at its expiry. Expiring first would let two replicas act at once.
  const lease = settings['controller.lease_duration'];
  const renew = settings['controller.renew_deadline'];
  const retry = settings['controller.retry_period'];
  if (typeof lease.value === 'number' && typeof renew.value === 'number' && typeof retry.value === 'number' && lease.value <= renew.value + retry.value) {
    lease.problem = makeProblem({
      key: lease.key,
      source: lease.source,
      value: lease.display,
      expected: `a duration longer than controller.renew_deadline (${renew.display} from ${renew.source}) plus controller.retry_period (${retry.display} from ${retry.source}), or two replicas could act at once`,
    });
  }

  // The webhook only matters while alerts are on; checked here so a stale value cannot block a start with alerts off.
  const alertsEnabled = settings['alerts.enabled'];
  const webhook = settings['alerts.slack_webhook_url'];
  if (alertsEnabled.value !== true) {
    delete webhook.problem;
  } else if (webhook.value !== undefined && !webhook.problem) {
    const parsed = webhookUrlType.parse(webhook.value);
    if (!parsed.ok) {
      webhook.problem = makeProblem({
        key: webhook.key,
        source: webhook.source,
        value: REDACTED,
        reason: parsed.reason,
        expected: `${parsed.expected}, because alerts.enabled is true (from ${alertsEnabled.source})`,
      });
    }
  }
}

/**
 * The managed namespaces come from one of three settings; combinations that would leave a reader
 * guessing which one wins are refused, each problem pinned on the setting that narrows less.
 */
function checkNamespaceScope(settings: ConfigProvenance): void {
  const mode = settings['kubernetes.mode'];
  const namespace = settings['kubernetes.namespace'];
  const namespaces = settings['kubernetes.namespaces'];
  const selector = settings['kubernetes.namespace_selector'];
  const pin = (s: ResolvedSetting, expected: string, hint?: string) => {
    if (!s.problem) s.problem = makeProblem({ key: s.key, source: s.source, value: s.display, expected, hint });
  };
  const isSet = (s: ResolvedSetting) => s.value !== undefined;
  const explicitNamespace = namespace.layer !== 'default';

  if (mode.value === 'single') {
    const wide = [namespaces, selector].filter(isSet);
    for (const s of wide) pin(s, `unset, because kubernetes.mode is "single" (from ${mode.source}): one Deployment in kubernetes.namespace`);
    return;
  }
  if (isSet(namespaces) && explicitNamespace) {
    pin(
      namespaces,
      `unset while kubernetes.namespace is set (${namespace.display} from ${namespace.source})`,
      'list that namespace in kubernetes.namespaces and unset kubernetes.namespace',
    );
  }
  if (isSet(selector) && Array.isArray(namespaces.value)) {
    pin(
      selector,
      `unset while kubernetes.namespaces lists names (${namespaces.display} from ${namespaces.source})`,
      'a selector picks namespaces across the cluster: use it with kubernetes.namespaces unset or "*"',
    );
  } else if (isSet(selector) && explicitNamespace && !isSet(namespaces)) {
    pin(
      selector,
      `unset while kubernetes.namespace is set (${namespace.display} from ${namespace.source})`,
      'a selector picks namespaces across the cluster: unset kubernetes.namespace',
    );
  }

  // Where the Lease lives is only obvious when one namespace is managed.
  const leaderElect = settings['controller.leader_elect'];
  const leaseNamespace = settings['controller.lease_namespace'];
  const oneNamespace = !isSet(selector) && (!isSet(namespaces) || (Array.isArray(namespaces.value) && namespaces.value.length === 1));
  if (leaderElect.value === true && !oneNamespace && !isSet(leaseNamespace)) {
    pin(
      leaseNamespace,
      `the namespace of the leader-election Lease, because more than one namespace is managed (kubernetes.namespaces ${namespaces.display}${isSet(selector) ? `, namespace_selector ${selector.display}` : ''})`,
      `${whereToSet(leaseNamespace.key)} (the chart sets POD_NAMESPACE)`,
    );
  }
}

/**
 * The config.toml layer as "section.key" -> raw value. Unknown sections and keys are warnings, not
 * problems: the Go original ignored them, and a file it ran with must start this controller too.
 */
function readTomlLayer(text: string | undefined, tomlName: string): { values: Map<string, unknown>; problems: ConfigProblem[]; warnings: ConfigProblem[] } {
  const values = new Map<string, unknown>();
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  if (text === undefined) return { values, problems, warnings };

  let document: Record<string, unknown>;
  try {
    document = parseToml(text);
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    // smol-toml's message quotes the offending line, which may hold the Slack webhook: keep only the first line.
    const [what = 'invalid TOML'] = error.message.split('\n');
    const message = `${tomlName}: ${what} (line ${error.line}, column ${error.column})`;
    problems.push({ key: FILE_KEY, source: tomlName, value: REDACTED, expected: 'valid TOML', message });
    return { values, problems, warnings };
  }

  const sectionNames = Object.keys(SCHEMA);
  const knownSections = sectionNames.map((name) => `[${name}]`).join(', ');
  for (const [section, content] of Object.entries(document)) {
    const known = (SCHEMA as Record<string, Record<string, unknown>>)[section];
    if (!known || !isTable(content)) {
      const what = isTable(content) ? `unknown section [${section}]` : `unknown top-level key "${section}"`;
      warnings.push(unknownKeyProblem(section, tomlName, what, `one of the sections ${knownSections}`));
      continue;
    }
    for (const [name, value] of Object.entries(content)) {
      if (name in known) {
        values.set(`${section}.${name}`, value);
      } else {
        const expected = `one of the keys of [${section}]: ${Object.keys(known).join(', ')}`;
        warnings.push(unknownKeyProblem(`${section}.${name}`, tomlName, `unknown key ${section}.${name}`, expected));
      }
    }
  }
  return { values, problems, warnings };
}

function unknownKeyProblem(key: string, tomlName: string, what: string, expected: string): ConfigProblem {
  // The value is not shown: a misspelt key may well be the secret webhook.
  return { key, source: tomlName, value: REDACTED, expected, message: `${tomlName}: ${what}, ignored; expected ${expected}`, warning: 'unknown_key' };
}

function makeProblem(fields: { key: string; source: string; value: string; expected: string; reason?: string; hint?: string }): ConfigProblem {
  const { key, source, value, expected, reason, hint } = fields;
  const got = value === NOT_SET ? 'not set' : `got ${value}${reason ? ` (${reason})` : ''}`;
  const message = `${key} from ${source}: ${got}; expected ${expected}${hint ? `; ${hint}` : ''}`;
  return { key, source, value, expected, message };
}

function whereToSet(key: ConfigKey): string {
  const [section, name] = key.split('.');
  const env = settingFor(key).env[0];
  return `set env ${env} or ${name} under [${section}] in config.toml`;
}

function buildConfig(settings: ConfigProvenance): Config {
  const config: Record<string, Record<string, unknown>> = {};
  for (const { key, value } of Object.values(settings)) {
    const [section = '', name = ''] = key.split('.');
    config[section] ??= {};
    if (value !== undefined) config[section][name] = value;
  }
  return config as unknown as Config;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}
