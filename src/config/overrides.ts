// Per-Deployment settings: annotations on the Deployment override the global Config.
// A bad annotation must not stop the controller from protecting the workload, so it falls back to the
// global value and is reported (log line + Kubernetes Event) instead of failing.

import { USER_ANNOTATIONS } from '../state/annotations.js';
import { SCHEMA, type Config, type ConfigKey } from './config.js';
import type { ConfigLayer, ConfigProvenance } from './load.js';
import { booleanType, priorityType, type ValueType } from './value-types.js';

export interface DeploymentSettings {
  /** false: never move this Deployment to Fargate (annotation allow-fargate; default true). */
  allowFargate: boolean;
  /** Move back to spot when spot is healthy again (default recovery.enabled). */
  recoveryEnabled: boolean;
  /** Milliseconds to stay on Fargate before recovering (default recovery.cooldown). */
  recoveryCooldown: number;
  /** Milliseconds a rollout may take (default migration.rollout_timeout). */
  rolloutTimeout: number;
  /** Milliseconds to wait after a rollout before checking health (default migration.verification_delay). */
  verificationDelay: number;
  /** Its rank in phase 1 when Fargate launches are scarce; undefined: its pods' priority (annotation only). */
  priority: number | undefined;
  /** Move it on a rebalance recommendation, not only on a warning (default migration.on_rebalance). */
  moveOnRebalance: boolean;
}

/** An annotation whose value was ignored. `message` is ready for a log line and a Kubernetes Event. */
export interface InvalidOverride {
  annotation: string;
  value: string;
  expected: string;
  /** The value used instead, formatted ("45m0s", "true"). */
  fallback: string;
  message: string;
}

export type SettingLayer = ConfigLayer | 'annotation';

export interface DeploymentSettingSource {
  value: unknown;
  layer: SettingLayer;
  /** "annotation spot-orchestrator/rollout-timeout", "env ROLLOUT_TIMEOUT", the config file's name, or "default". */
  source: string;
  display: string;
  invalid?: InvalidOverride;
}

/** The global settings that annotations override; all that resolving a Deployment's settings reads. */
export type OverriddenConfig = Pick<Config, 'recovery' | 'migration'>;

interface Override<T> {
  annotation: string;
  type: ValueType<T>;
  /** The global setting it overrides; allow-fargate has none (it exists only as an annotation). */
  globalKey?: ConfigKey;
  globalValue(config: OverriddenConfig): T;
}

const OVERRIDES: { [K in keyof DeploymentSettings]: Override<DeploymentSettings[K]> } = {
  allowFargate: {
    annotation: USER_ANNOTATIONS.allowFargate,
    type: booleanType,
    globalValue: () => true,
  },
  recoveryEnabled: {
    annotation: USER_ANNOTATIONS.recoveryEnabled,
    type: booleanType,
    globalKey: 'recovery.enabled',
    globalValue: (config) => config.recovery.enabled,
  },
  // Same value types as the global settings, so an annotation obeys the same rules as config.toml.
  recoveryCooldown: {
    annotation: USER_ANNOTATIONS.recoveryCooldown,
    type: SCHEMA.recovery.cooldown.type,
    globalKey: 'recovery.cooldown',
    globalValue: (config) => config.recovery.cooldown,
  },
  rolloutTimeout: {
    annotation: USER_ANNOTATIONS.rolloutTimeout,
    type: SCHEMA.migration.rollout_timeout.type,
    globalKey: 'migration.rollout_timeout',
    globalValue: (config) => config.migration.rollout_timeout,
  },
  verificationDelay: {
    annotation: USER_ANNOTATIONS.verificationDelay,
    type: SCHEMA.migration.verification_delay.type,
    globalKey: 'migration.verification_delay',
    globalValue: (config) => config.migration.verification_delay,
  },
  priority: {
    annotation: USER_ANNOTATIONS.priority,
    type: priorityType,
    globalValue: () => undefined,
  },
  moveOnRebalance: {
    annotation: USER_ANNOTATIONS.moveOnRebalance,
    type: booleanType,
    globalKey: 'migration.on_rebalance',
    globalValue: (config) => config.migration.on_rebalance,
  },
};

type Annotations = Readonly<Record<string, string>> | undefined;

export function resolveDeploymentSettings(config: OverriddenConfig, annotations: Annotations): { settings: DeploymentSettings; invalid: InvalidOverride[] } {
  const invalid: InvalidOverride[] = [];
  const pick = <T>(override: Override<T>): T => {
    const result = applyOverride(override, config, annotations);
    if (result.invalid) invalid.push(result.invalid);
    return result.value;
  };
  const settings: DeploymentSettings = {
    allowFargate: pick(OVERRIDES.allowFargate),
    recoveryEnabled: pick(OVERRIDES.recoveryEnabled),
    recoveryCooldown: pick(OVERRIDES.recoveryCooldown),
    rolloutTimeout: pick(OVERRIDES.rolloutTimeout),
    verificationDelay: pick(OVERRIDES.verificationDelay),
    priority: pick(OVERRIDES.priority),
    moveOnRebalance: pick(OVERRIDES.moveOnRebalance),
  };
  return { settings, invalid };
}

/** Like resolveDeploymentSettings, but says for each setting which layer won; for `config check`. */
export function resolveDeploymentSettingsWithProvenance(
  config: OverriddenConfig,
  provenance: ConfigProvenance,
  annotations: Annotations,
): Record<keyof DeploymentSettings, DeploymentSettingSource> {
  const explain = <T>(override: Override<T>): DeploymentSettingSource => {
    const { value, fromAnnotation, invalid } = applyOverride(override, config, annotations);
    const display = override.type.format(value);
    if (fromAnnotation) return { value, layer: 'annotation', source: `annotation ${override.annotation}`, display };
    const global = override.globalKey ? provenance[override.globalKey] : undefined;
    return { value, layer: global?.layer ?? 'default', source: global?.source ?? 'default', display, invalid };
  };
  return {
    allowFargate: explain(OVERRIDES.allowFargate),
    recoveryEnabled: explain(OVERRIDES.recoveryEnabled),
    recoveryCooldown: explain(OVERRIDES.recoveryCooldown),
    rolloutTimeout: explain(OVERRIDES.rolloutTimeout),
    verificationDelay: explain(OVERRIDES.verificationDelay),
    priority: explain(OVERRIDES.priority),
    moveOnRebalance: explain(OVERRIDES.moveOnRebalance),
  };
}

/**
 * Whether the Deployment carries the opt-in annotation (kubernetes.opt_in_annotation) set to true. The
 * original documents it as a bool, so it is read by the same rule as every other boolean setting
 * (booleanType); anything else, including a value that is no boolean at all, does not opt in.
 * The mode is the caller's business: in single mode the configured Deployment is managed without opting in.
 */
export function isOptedIn(config: Pick<Config, 'kubernetes'>, annotations: Annotations): boolean {
  const raw = annotations?.[config.kubernetes.opt_in_annotation];
  if (raw === undefined) return false;
  const parsed = booleanType.parse(raw);
  return parsed.ok && parsed.value;
}

/** Event messages are capped at 1 KiB, and the value is user input of any length. */
const MAX_VALUE_IN_MESSAGE = 100;

function applyOverride<T>(
  override: Override<T>,
  config: OverriddenConfig,
  annotations: Annotations,
): { value: T; fromAnnotation: boolean; invalid?: InvalidOverride } {
  const globalValue = override.globalValue(config);
  const raw = annotations?.[override.annotation];
  // An empty annotation means "not set", as an empty environment variable does.
  if (raw === undefined || raw.trim() === '') return { value: globalValue, fromAnnotation: false };

  const parsed = override.type.parse(raw);
  if (parsed.ok) return { value: parsed.value, fromAnnotation: true };

  const fallback = override.type.format(globalValue);
  const fallbackSource = override.globalKey ? `the global value ${fallback} (${override.globalKey})` : `the default ${fallback}`;
  const shownValue = JSON.stringify(raw.length > MAX_VALUE_IN_MESSAGE ? `${raw.slice(0, MAX_VALUE_IN_MESSAGE)}…` : raw);
  const reason = parsed.reason ? ` (${parsed.reason})` : '';
  const message = `ignoring annotation ${override.annotation}=${shownValue}${reason}: expected ${parsed.expected}; ` + `using ${fallbackSource}`;
  return {
    value: globalValue,
    fromAnnotation: false,
    invalid: { annotation: override.annotation, value: raw, expected: parsed.expected, fallback, message },
  };
}
