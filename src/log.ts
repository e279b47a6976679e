// Logging: pino JSON for machines, coloured lines for a person at a terminal (logging.format auto).
import { pino, type Logger } from 'pino';
import type { Config } from './config/config.js';

export type { Logger };

export function createLogger(logging: Config['logging'], destination: NodeJS.WritableStream & { isTTY?: boolean } = process.stdout): Logger {
  const pretty = logging.format === 'console' || (logging.format === 'auto' && destination.isTTY === true);
  const options = {
    level: logging.level,
    base: { app: 'spot-fargate-orchestrator' },
    // Secrets that could ride along on an error object or a config dump.
    redact: { paths: ['*.slack_webhook_url', 'webhookUrl', '*.webhookUrl', 'credentials', '*.credentials'], censor: '<redacted>' },
  };
  if (pretty) {
    return pino(options, pino.transport({ target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,app' } }));
  }
  return pino(options, destination as pino.DestinationStream);
}

/** Every line about a Deployment carries its namespace/name (and the event id when there is one). */
export function deploymentLogger(log: Logger, key: string, eventId?: string): Logger {
  return log.child(eventId ? { deployment: key, eventId } : { deployment: key });
}
