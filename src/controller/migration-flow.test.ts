// Phase 1 joins: a Deployment found by two warnings handled at once is patched once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment } from '@kubernetes/client-node';
import { pino } from 'pino';
import { NO_ALERTS } from '../alerts/alert.js';
import { ManualClock } from '../clock-test-support.js';
import { loadConfig } from '../config/load.js';
import { createMetrics } from '../metrics/metrics.js';
import { spotDeployment } from '../migration/test-fixtures.js';
import type { ControllerContext } from '../moves/context.js';
import { MigrationFlow } from './migration-flow.js';
import type { PatchOutcome } from '../moves/patcher.js';
import { MoveRegistry } from '../moves/registry.js';

describe('MigrationFlow.migrate', () => {
  it('joins a patch already in flight for the same Deployment instead of sending a second one', async () => {
    let calls = 0;
    let release!: (o: PatchOutcome) => void;
    const ctx = {
      config: loadConfig({ env: { SQS_QUEUE_URL: 'http://localhost:9324/000000000000/q', MODE: 'namespace', NAMESPACE: 'prod' } }),
      log: pino({ level: 'silent' }),
      clock: new ManualClock(),
      moves: new MoveRegistry(new ManualClock(), pino({ level: 'silent' })),
      view: { deployment: () => undefined },
      patcher: {
        apply: () => {
          calls++;
          return new Promise<PatchOutcome>((r) => (release = r));
        },
      },
      recorder: { record() {} },
      alerter: NO_ALERTS,
      metrics: createMetrics(),
    } as unknown as ControllerContext;
    const flow = new MigrationFlow(ctx);
    const d: V1Deployment = spotDeployment();
    const request = { eventId: 'e1', instanceIds: ['i-1'], reason: 'spot-interruption' as const };
    const first = flow.migrate(d, request);
    const second = flow.migrate(d, { ...request, eventId: 'e2' });
    release({ outcome: 'error', error: 'refused', transient: false });
    const [a, b] = await Promise.all([first, second]);
    assert.equal(calls, 1);
    assert.deepEqual(b, { ...a, joined: true }, "the second warning gets the first one's phase 1, marked as joined");
    assert.equal(a.joined, undefined);
    // Once done, a later warning patches again (its own decision, from the current object).
    void flow.migrate(d, request);
    assert.equal(calls, 2);
  });
});
