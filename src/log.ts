// Logging: JSON for machines, coloured lines for a person at a terminal (logging.format auto).
// The JSON has the Go original's shape (zerolog's): `level` as a word, `time` in RFC 3339, the text
// in `message`, so log queries and alerts written against the original keep matching.
import { pino, type Logger, type LoggerOptions } from 'pino';
import type { Config } from './config/config.js';

export type { Logger };

/** The line shape: {"level":"info","time":"2026-11-30T18:00:00.000Z","app":…,"message":…, …fields}. */
const LOG_LINE_SHAPE = {
  messageKey: 'message',
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: { level: (label: string) => ({ level: label }) },
} satisfies LoggerOptions;

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
  return pino({ ...options, ...LOG_LINE_SHAPE }, destination as pino.DestinationStream);
}

/** Every line about a Deployment carries its namespace/name (and the event id when there is one). */
export function deploymentLogger(log: Logger, key: string, eventId?: string): Logger {
  return log.child(eventId ? { deployment: key, eventId } : { deployment: key });
}
