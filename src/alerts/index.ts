// Alerting's entry point: the Alerter the controller gets from its config.

import type { Logger } from 'pino';

import type { Config } from '../config/config.js';
import { NO_ALERTS, type Alerter } from './alert.js';
import { SlackAlerter } from './slack.js';

export type { Alert, AlertKind, Alerter, DeploymentOutcome, DeploymentRef, InterruptionInstance } from './alert.js';
export { NO_ALERTS } from './alert.js';
export { sampleAlerts } from './samples.js';
export { SlackAlerter, type SlackAlerterOptions, type SlackAlerterStats } from './slack.js';
export { formatSlackMessage } from './slack-format.js';

export interface CreateAlerterOptions {
  /** Shown on every message. */
  clusterName?: string;
}

/**
 * NO_ALERTS when alerts are disabled or no webhook is set, a SlackAlerter otherwise. Throws (without
 * quoting it) only for a webhook that is not an http(s) URL, which config loading already rejects.
 */
export function createAlerter(config: Pick<Config, 'alerts'>, logger: Logger, options: CreateAlerterOptions = {}): Alerter {
  const { enabled, slack_webhook_url: webhookUrl } = config.alerts;
  if (!enabled) {
    logger.info({ component: 'alerts' }, 'alerts disabled (alerts.enabled is false)');
    return NO_ALERTS;
  }
  if (!webhookUrl) {
    // What the Go original's sample config does (`enabled = true`, `slack_webhook_url = ""`): the
    // controller runs, and nothing is sent. Said once at warn, since it may well be an oversight.
    logger.warn({ component: 'alerts' }, 'alerts enabled but alerts.slack_webhook_url is not set: no alert will be sent');
    return NO_ALERTS;
  }
  return new SlackAlerter({ webhookUrl, logger, clusterName: options.clusterName });
}
