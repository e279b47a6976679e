import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { USER_ANNOTATIONS } from '../state/annotations.js';
import { loadConfig, resolveWithProvenance } from './load.js';
import { isOptedIn, resolveDeploymentSettings, resolveDeploymentSettingsWithProvenance, type DeploymentSettings } from './overrides.js';

const BASE_ENV = { SQS_QUEUE_URL: 'http://localhost:9324/000000000000/q', DEPLOYMENT_NAME: 'api' };
const config = loadConfig({ env: BASE_ENV });

const GLOBAL_SETTINGS: DeploymentSettings = {
  allowFargate: true,
  recoveryEnabled: true,
  recoveryCooldown: 2_700_000,
  rolloutTimeout: 120_000,
  verificationDelay: 5_000,
  priority: undefined,
  moveOnRebalance: false,
};

describe('resolveDeploymentSettings', () => {
  it('uses the global values without annotations', () => {
    assert.deepEqual(resolveDeploymentSettings(config, undefined), { settings: GLOBAL_SETTINGS, invalid: [] });
    assert.deepEqual(resolveDeploymentSettings(config, {}), { settings: GLOBAL_SETTINGS, invalid: [] });
  });

  it('takes recovery-enabled from recovery.enabled by default', () => {
    const recoveryOff = loadConfig({ env: { ...BASE_ENV, RECOVERY_ENABLED: 'false' } });
    assert.equal(resolveDeploymentSettings(recoveryOff, {}).settings.recoveryEnabled, false);
  });

  it('applies every valid annotation', () => {
    const annotations = {
      [USER_ANNOTATIONS.allowFargate]: 'false',
      [USER_ANNOTATIONS.recoveryEnabled]: 'FALSE',
      [USER_ANNOTATIONS.recoveryCooldown]: '0s', // zero cooldown: recover at once
      [USER_ANNOTATIONS.rolloutTimeout]: '5m',
      [USER_ANNOTATIONS.verificationDelay]: '1.5s',
      [USER_ANNOTATIONS.priority]: '-3',
      [USER_ANNOTATIONS.moveOnRebalance]: 'true',
    };
    assert.deepEqual(resolveDeploymentSettings(config, annotations), {
      settings: {
        allowFargate: false,
        recoveryEnabled: false,
        recoveryCooldown: 0,
        rolloutTimeout: 300_000,
        verificationDelay: 1_500,
        priority: -3,
        moveOnRebalance: true,
      },
      invalid: [],
    });
  });

  it('lets an annotation turn recovery on when it is off globally', () => {
    const recoveryOff = loadConfig({ env: { ...BASE_ENV, RECOVERY_ENABLED: 'false' } });
    const { settings } = resolveDeploymentSettings(recoveryOff, { [USER_ANNOTATIONS.recoveryEnabled]: 'true' });
    assert.equal(settings.recoveryEnabled, true);
  });

  it('takes move-on-rebalance from migration.on_rebalance, and a Deployment may opt out of it', () => {
    const on = loadConfig({ env: { ...BASE_ENV, MIGRATION_ON_REBALANCE: 'true' } });
    assert.equal(resolveDeploymentSettings(on, {}).settings.moveOnRebalance, true);
    assert.equal(resolveDeploymentSettings(on, { [USER_ANNOTATIONS.moveOnRebalance]: 'false' }).settings.moveOnRebalance, false);
  });

  it('treats an empty annotation as unset', () => {
    const { settings, invalid } = resolveDeploymentSettings(config, { [USER_ANNOTATIONS.rolloutTimeout]: '' });
    assert.equal(settings.rolloutTimeout, 120_000);
    assert.deepEqual(invalid, []);
  });

  const invalidCases = [
    {
      annotation: USER_ANNOTATIONS.rolloutTimeout,
      value: 'soon',
      expected: 'a duration greater than zero, such as "5s" or "1h30m"',
      fallback: '2m0s',
      message:
        'ignoring annotation spot-orchestrator/rollout-timeout="soon" (not a number followed by a unit, like "5s", "1h30m" or "1.5h"): ' +
        'expected a duration greater than zero, such as "5s" or "1h30m"; using the global value 2m0s (migration.rollout_timeout)',
    },
    {
      annotation: USER_ANNOTATIONS.rolloutTimeout,
      value: '0s',
      expected: 'a duration greater than zero, such as "5s" or "1h30m"',
      fallback: '2m0s',
      message:
        'ignoring annotation spot-orchestrator/rollout-timeout="0s" (zero is not allowed here): ' +
        'expected a duration greater than zero, such as "5s" or "1h30m"; using the global value 2m0s (migration.rollout_timeout)',
    },
    {
      annotation: USER_ANNOTATIONS.recoveryCooldown,
      value: '-10m',
      expected: 'a duration of zero or more, such as "0s", "5s" or "1h30m"',
      fallback: '45m0s',
      message:
        'ignoring annotation spot-orchestrator/recovery-cooldown="-10m" (negative durations are not allowed): ' +
        'expected a duration of zero or more, such as "0s", "5s" or "1h30m"; using the global value 45m0s (recovery.cooldown)',
    },
    {
      annotation: USER_ANNOTATIONS.verificationDelay,
      value: '30',
      expected: 'a duration of zero or more, such as "0s", "5s" or "1h30m"',
      fallback: '5s',
      message:
        'ignoring annotation spot-orchestrator/verification-delay="30" (missing unit after "30"; units are ns, us, ms, s, m, h): ' +
        'expected a duration of zero or more, such as "0s", "5s" or "1h30m"; using the global value 5s (migration.verification_delay)',
    },
    {
      annotation: USER_ANNOTATIONS.recoveryEnabled,
      value: 'yes',
      expected: 'true or false (also 1, t, T, TRUE, True, 0, f, F, FALSE, False)',
      fallback: 'true',
      message:
        'ignoring annotation spot-orchestrator/recovery-enabled="yes": expected true or false (also 1, t, T, TRUE, True, 0, f, F, FALSE, False); ' +
        'using the global value true (recovery.enabled)',
    },
    {
      annotation: USER_ANNOTATIONS.allowFargate,
      value: 'maybe',
      expected: 'true or false (also 1, t, T, TRUE, True, 0, f, F, FALSE, False)',
      fallback: 'true',
      message:
        'ignoring annotation spot-orchestrator/allow-fargate="maybe": expected true or false (also 1, t, T, TRUE, True, 0, f, F, FALSE, False); using the default true',
    },
  ];
  for (const invalidCase of invalidCases) {
    it(`falls back and reports ${invalidCase.annotation}=${JSON.stringify(invalidCase.value)}`, () => {
      const { settings, invalid } = resolveDeploymentSettings(config, { [invalidCase.annotation]: invalidCase.value });
      assert.deepEqual(settings, GLOBAL_SETTINGS);
      assert.deepEqual(invalid, [invalidCase]);
    });
  }

  it('reports every invalid annotation and keeps the valid ones', () => {
    const { settings, invalid } = resolveDeploymentSettings(config, {
      [USER_ANNOTATIONS.rolloutTimeout]: 'later',
      [USER_ANNOTATIONS.allowFargate]: 'nope',
      [USER_ANNOTATIONS.verificationDelay]: '10s',
    });
    assert.deepEqual(settings, { ...GLOBAL_SETTINGS, verificationDelay: 10_000 });
    assert.deepEqual(
      invalid.map((override) => override.annotation),
      [USER_ANNOTATIONS.allowFargate, USER_ANNOTATIONS.rolloutTimeout],
    );
  });

  it('shortens a long value in the message but keeps it whole in the report', () => {
    const value = `${'9'.repeat(500)}x`;
    const [override] = resolveDeploymentSettings(config, { [USER_ANNOTATIONS.rolloutTimeout]: value }).invalid;
    assert.equal(override?.value, value);
    assert.ok(override!.message.length < 400, override!.message);
  });
});

describe('isOptedIn', () => {
  const cases: Array<[Record<string, string> | undefined, boolean]> = [
    [{ 'spot-orchestrator/enabled': 'true' }, true],
    [{ 'spot-orchestrator/enabled': 'TRUE' }, true],
    [{ 'spot-orchestrator/enabled': ' True ' }, true],
    [{ 'spot-orchestrator/enabled': '1' }, true],
    [{ 'spot-orchestrator/enabled': 'false' }, false],
    [{ 'spot-orchestrator/enabled': '0' }, false],
    [{ 'spot-orchestrator/enabled': 'yes' }, false],
    [{ 'spot-orchestrator/enabled': 'enabled' }, false],
    [{ 'spot-orchestrator/enabled': '' }, false],
    [{ 'other/enabled': 'true' }, false],
    [{}, false],
    [undefined, false],
  ];
  for (const [annotations, expected] of cases) {
    it(`is ${expected} for ${JSON.stringify(annotations)}`, () => assert.equal(isOptedIn(config, annotations), expected));
  }

  it('uses the configured annotation key', () => {
    const custom = loadConfig({ env: { ...BASE_ENV, OPT_IN_ANNOTATION: 'example.com/spot' } });
    assert.equal(isOptedIn(custom, { 'example.com/spot': 'true' }), true);
    assert.equal(isOptedIn(custom, { 'spot-orchestrator/enabled': 'true' }), false);
  });
});

describe('resolveDeploymentSettingsWithProvenance', () => {
  it('names the layer of every setting, with annotations on top', () => {
    const resolution = resolveWithProvenance({
      env: { ...BASE_ENV, ROLLOUT_TIMEOUT: '3m' },
      tomlText: '[recovery]\ncooldown = "1h"\n',
    });
    const explained = resolveDeploymentSettingsWithProvenance(resolution.config!, resolution.settings, {
      [USER_ANNOTATIONS.verificationDelay]: '20s',
      [USER_ANNOTATIONS.recoveryEnabled]: 'perhaps',
    });
    const summary = Object.fromEntries(Object.entries(explained).map(([name, setting]) => [name, [setting.layer, setting.source, setting.display]]));
    assert.deepEqual(summary, {
      allowFargate: ['default', 'default', 'true'],
      recoveryEnabled: ['default', 'default', 'true'],
      recoveryCooldown: ['toml', 'config.toml', '1h0m0s'],
      rolloutTimeout: ['env', 'env ROLLOUT_TIMEOUT', '3m0s'],
      verificationDelay: ['annotation', `annotation ${USER_ANNOTATIONS.verificationDelay}`, '20s'],
      priority: ['default', 'default', "the pods' priority"],
      moveOnRebalance: ['default', 'default', 'false'],
    });
    assert.equal(explained.recoveryEnabled.invalid?.value, 'perhaps');
    assert.equal(explained.verificationDelay.value, 20_000);
  });
});

describe('the priority annotation', () => {
  it('takes a 32-bit integer, negative allowed; anything else is reported and the pods decide', () => {
    assert.equal(resolveDeploymentSettings(config, { 'spot-orchestrator/priority': '1000' }).settings.priority, 1000);
    assert.equal(resolveDeploymentSettings(config, { 'spot-orchestrator/priority': '-5' }).settings.priority, -5);
    const bad = resolveDeploymentSettings(config, { 'spot-orchestrator/priority': 'high' });
    assert.equal(bad.settings.priority, undefined);
    assert.match(
      bad.invalid[0]!.message,
      /^ignoring annotation spot-orchestrator\/priority="high": expected a whole number .*; using the default the pods' priority$/,
    );
    assert.equal(resolveDeploymentSettings(config, { 'spot-orchestrator/priority': '99999999999' }).settings.priority, undefined);
  });
});

describe('durations past what a timer holds', () => {
  it('are refused with the limit named, in the environment and in an annotation alike', () => {
    const { problems } = resolveWithProvenance({ env: { ...BASE_ENV, RECOVERY_INTERVAL: '600h' } });
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.key, 'recovery.interval');
    assert.match(problems[0]!.message, /longer than 596h31m23\.647s, the longest wait a timer can hold/);
    const { settings, invalid } = resolveDeploymentSettings(config, { [USER_ANNOTATIONS.rolloutTimeout]: '600h' });
    assert.equal(settings.rolloutTimeout, 120_000, 'the global value, not a timeout that fires at once');
    assert.match(invalid[0]!.message, /^ignoring annotation spot-orchestrator\/rollout-timeout="600h" \(longer than 596h31m23\.647s/);
    assert.equal(resolveDeploymentSettings(config, { [USER_ANNOTATIONS.rolloutTimeout]: '596h' }).settings.rolloutTimeout, 596 * 3_600_000);
  });
});
