import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../config/load.js';
import { capturingLog } from '../log-test-support.js';
import { settingsFor } from './settings.js';

describe('settingsFor', () => {
  it('reports a bad annotation in the log and as an Event, logging at most 100 characters of its value', () => {
    const config = loadConfig({ env: { SQS_QUEUE_URL: 'http://localhost:9324/000000000000/q', MODE: 'namespace', NAMESPACE: 'prod' } });
    const events: string[] = [];
    const { log, lines } = capturingLog();
    const huge = `9${'x'.repeat(5000)}`;
    const settings = settingsFor(
      { config, recorder: { record: (_target, type, reason, message) => void events.push(`${type} ${reason} ${message.length}`) } },
      { metadata: { namespace: 'prod', name: 'api', annotations: { 'spot-orchestrator/rollout-timeout': huge } } },
      log,
    );
    assert.equal(settings.rolloutTimeout, 120_000);
    const line = lines.find((l) => l.annotation === 'spot-orchestrator/rollout-timeout');
    assert.equal(line?.value, `${huge.slice(0, 100)}…`);
    assert.equal(events.length, 1);
    assert.match(events[0]!, /^Warning InvalidOverride \d+$/);
  });
});
