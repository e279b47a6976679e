import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from './log.js';

/** A non-terminal destination whose lines are kept, parsed. */
function jsonSink(): { stream: Writable; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { stream, lines };
}

// RFC 3339 with a fractional second and a zone, as zerolog writes it (time.RFC3339 or RFC3339Nano).
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

describe('JSON log lines', () => {
  for (const format of ['json', 'auto'] as const) {
    it(`have the Go original's shape: level as a word, RFC 3339 time, message (format ${format}, not a terminal)`, () => {
      const { stream, lines } = jsonSink();
      const log = createLogger({ level: 'debug', format }, stream);
      const before = Date.now();
      log.warn({ deployment: 'prod/api', attempts: 2 }, 'recovery failed; backing off');
      log.child({ component: 'alerts' }).debug('queued');
      log.error({ err: new Error('boom') }, 'phase 1 failed');
      assert.equal(lines.length, 3);
      const [warn, debug, error] = lines as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
      assert.equal(warn.level, 'warn');
      assert.equal(debug.level, 'debug');
      assert.equal(error.level, 'error');
      assert.match(String(warn.time), RFC3339);
      assert.ok(Math.abs(Date.parse(String(warn.time)) - before) < 5000, String(warn.time));
      assert.equal(warn.message, 'recovery failed; backing off');
      assert.equal(warn.deployment, 'prod/api');
      assert.equal(warn.attempts, 2);
      assert.equal(warn.app, 'spot-fargate-orchestrator');
      assert.equal(debug.component, 'alerts');
      assert.equal((error.err as { message?: string }).message, 'boom');
      for (const line of lines) {
        assert.ok(!('msg' in line) && !('pid' in line) && !('hostname' in line), JSON.stringify(line));
        assert.deepEqual(Object.keys(line).slice(0, 2), ['level', 'time'], 'level and time lead, as in zerolog');
      }
    });
  }

  it('keep secrets out of the line', () => {
    const { stream, lines } = jsonSink();
    createLogger({ level: 'info', format: 'json' }, stream).info({ alerts: { slack_webhook_url: 'https://hooks.slack.com/services/T/B/secret' } }, 'config');
    assert.ok(!JSON.stringify(lines).includes('secret'));
  });
});
