// Phase 1 joins: a Deployment found by two warnings handled at once is patched once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment } from '@kubernetes/client-node';
import { pino } from 'pino';
import { type Alert, NO_ALERTS } from '../alerts/alert.js';
import { ManualClock } from '../clock-test-support.js';
import { loadConfig } from '../config/load.js';
import { createMetrics } from '../metrics/metrics.js';
import type { JsonPatchOp } from '../migration/json-patch.js';
import { TEST_SIGNER, serverApply, spotDeployment } from '../migration/test-fixtures.js';
import type { ControllerContext } from '../moves/context.js';
import { MigrationFlow } from './migration-flow.js';
import type { PatchDecision, PatchOutcome } from '../moves/patcher.js';
import type { Settlement, TrackRequest } from '../moves/rollout-observer.js';
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
      signer: TEST_SIGNER,
    } as unknown as ControllerContext;
    const flow = new MigrationFlow(ctx);
    const d: V1Deployment = spotDeployment();
    const request = { eventId: 'e1', instanceIds: ['i-1'], reason: 'spot-interruption' as const };
    const first = flow.begin(d, request);
    const second = flow.begin(d, { ...request, eventId: 'e2' });
    assert.deepEqual([first.joined, second.joined], [false, true], 'said at once, before the patch returns');
    release({ outcome: 'error', error: 'refused', transient: false });
    const [a, b] = await Promise.all([first.result, second.result]);
    assert.equal(calls, 1);
    assert.deepEqual(b, { ...a, joined: true }, "the second warning gets the first one's phase 1, marked as joined");
    assert.equal(a.joined, undefined);
    // Once done, a later warning patches again (its own decision, from the current object).
    void flow.begin(d, request).result;
    assert.equal(calls, 2);
  });
});

describe('MigrationFlow: a template reverted during phase 2', () => {
  /** A flow over one in-memory Deployment: the patcher applies what the flow decides, the observer answers from a script. */
  function setUp(settlements: Settlement[]) {
    const config = loadConfig({ env: { SQS_QUEUE_URL: 'http://localhost:9324/000000000000/q', MODE: 'namespace', NAMESPACE: 'prod' } });
    const store = { current: spotDeployment() };
    const patches: JsonPatchOp[][] = [];
    const events: { type: string; reason: string; message: string }[] = [];
    const alerter = new (class {
      readonly alerts: Alert[] = [];
      notify(a: Alert) {
        this.alerts.push(a);
      }
      async flush() {}
    })();
    const tracked: TrackRequest[] = [];
    const ctx = {
      config,
      log: pino({ level: 'silent' }),
      clock: new ManualClock(),
      moves: new MoveRegistry(new ManualClock(), pino({ level: 'silent' })),
      view: { deployment: () => store.current, listNodes: () => [] },
      patcher: {
        async apply(_ns: string, _name: string, _cached: V1Deployment | undefined, decide: (d: V1Deployment) => PatchDecision): Promise<PatchOutcome> {
          const decision = decide(store.current);
          if ('skip' in decision) return { outcome: 'skipped', deployment: store.current, why: decision.skip };
          if ('error' in decision) return { outcome: 'error', error: decision.error, transient: false };
          patches.push(decision.ops);
          store.current = serverApply(store.current, decision.ops);
          store.current.metadata!.generation = (store.current.metadata!.generation ?? 0) + 1;
          return { outcome: 'patched', deployment: store.current, dryRun: false };
        },
      },
      observer: {
        async track(request: TrackRequest): Promise<Settlement> {
          tracked.push(request);
          const next = settlements.shift();
          assert.ok(next, 'the flow observed more rollouts than the script has');
          // What the reverter does before the watch reports it: the original template back.
          if (next.result === 'failed' && next.reason === 'template-reverted') {
            const reverted = structuredClone(store.current);
            reverted.spec!.template = spotDeployment().spec!.template;
            reverted.spec!.strategy = spotDeployment().spec!.strategy;
            reverted.metadata!.generation = (reverted.metadata!.generation ?? 0) + 1;
            assert.equal(request.reverted?.(reverted), 'template label compute-type=spot, nodeSelector selects spot, tolerations of spot taints');
            store.current = reverted;
          }
          return next;
        },
      },
      recorder: {
        record(_target: unknown, type: string, reason: string, message: string) {
          events.push({ type, reason, message });
        },
      },
      alerter,
      metrics: createMetrics(),
      signer: TEST_SIGNER,
    } as unknown as ControllerContext;
    return { flow: new MigrationFlow(ctx), store, patches, events, alerts: alerter.alerts, tracked };
  }
  const request = { eventId: 'evt-1', instanceIds: ['i-1'], reason: 'spot-interruption' as const };
  const reverted: Settlement = { result: 'failed', reason: 'template-reverted', detail: 'template label compute-type=spot, nodeSelector selects spot' };

  it('re-applies the Fargate patch once, tells people the fix, and finishes on Fargate', async () => {
    const { flow, store, patches, events, alerts, tracked } = setUp([reverted, { result: 'complete', durationMs: 4000 }]);
    const phaseOne = await flow.begin(spotDeployment(), request).result;
    const outcome = await phaseOne.settled;
    assert.deepEqual(outcome, { result: 'migrated', durationMs: 4000 });
    assert.equal(patches.length, 3, 'the move, the re-apply, the finish');
    assert.equal(tracked.length, 2);
    assert.ok(tracked.every((t) => t.purpose === 'migration' && t.reverted !== undefined));
    assert.equal(tracked[1]!.minGeneration, tracked[0]!.minGeneration + 2, 'the second observation waits for the re-applied generation');
    const a = store.current.metadata!.annotations!;
    assert.equal(a['spot-orchestrator/state'], 'fargate');
    assert.equal(a['spot-orchestrator/phase'], undefined);
    assert.equal(store.current.spec!.template.metadata!.labels!['compute-type'], 'fargate');
    assert.deepEqual(store.current.spec!.strategy, spotDeployment().spec!.strategy, 'its own strategy back');
    const revertEvents = events.filter((e) => e.reason === 'TemplateReverted');
    assert.equal(revertEvents.length, 1);
    assert.equal(revertEvents[0]!.type, 'Warning');
    assert.match(revertEvents[0]!.message, /re-applied once.*docs\/gitops\.md/);
    assert.deepEqual(
      alerts.filter((x) => x.kind === 'template_reverted').map((x) => x.kind === 'template_reverted' && x.action),
      ['reapplied'],
    );
  });

  it('stops at the second revert: rolled back on the template the reverter wrote, state spot, and says so', async () => {
    const { flow, store, patches, events, alerts } = setUp([reverted, reverted]);
    const phaseOne = await flow.begin(spotDeployment(), request).result;
    const outcome = await phaseOne.settled;
    assert.equal(outcome?.result, 'failed');
    assert.ok(outcome?.result === 'failed' && outcome.rolledBack);
    assert.match(outcome.reason, /template reverted twice/);
    assert.equal(patches.length, 3, 'the move, one re-apply, the end: never a second re-apply');
    assert.deepEqual(store.current.spec!.template, spotDeployment().spec!.template);
    const a = store.current.metadata!.annotations!;
    assert.equal(a['spot-orchestrator/state'], 'spot');
    assert.equal(a['spot-orchestrator/reason'], 'rollback');
    assert.equal(a['spot-orchestrator/phase'], undefined);
    assert.equal(a['spot-orchestrator/saved-spec'], undefined);
    const revertEvents = events.filter((e) => e.reason === 'TemplateReverted').map((e) => e.message);
    assert.equal(revertEvents.length, 2);
    assert.match(revertEvents[1]!, /not fighting it.*state spot.*docs\/gitops\.md/);
    assert.deepEqual(
      alerts.filter((x) => x.kind === 'template_reverted').map((x) => x.kind === 'template_reverted' && x.action),
      ['reapplied', 'stopped'],
    );
  });
});
