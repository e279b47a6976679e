// A GitOps reconciler that puts the manifest's spot template back while a move to Fargate is in
// phase 2, as Argo CD's self-heal or a `helm upgrade` of the application does (docs/gitops.md). Once:
// the controller re-applies its patch, says so, and the move finishes on Fargate. Every time: the
// controller re-applies once, then stops fighting, says so, and leaves the Deployment consistent on
// the spot template the reconciler wrote.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { V1Deployment } from '@kubernetes/client-node';
import { pino } from 'pino';
import { SlackAlerter } from '../../src/alerts/slack.js';
import { startReceiver, type Receiver } from '../../src/alerts/test-support.js';
import { MERGE_PATCH } from '../../src/kube/api.js';
import { InterruptionInjector } from '../../testground/src/injector.js';
import type { CollectionWatch } from '../../testground/src/collection-watch.js';
import { startController, watchDeployments, type TestController } from '../support/controller.js';
import { appDeployment, createNamespace, deleteNamespace, eventually, podsOf, isPodReady, testGround, uniqueName } from '../support/ground.js';

const t = testGround();
const injector = new InterruptionInjector(t.ground, t);
const OPT_IN = { 'spot-orchestrator/enabled': 'true' };
const REAPPLIED_LINE = 'the pod template was reverted during the move to Fargate; re-applied the Fargate patch once';
const STOPPED_LINE = 'the pod template was reverted again; the move to Fargate is stopped, the Deployment stays on the spot template';

/**
 * Plays a GitOps tool with client-side apply: whenever the Deployment's template no longer matches
 * what its manifest names (the compute-type label and the nodeSelector), it writes the manifest's
 * values back with a merge patch, as `kubectl apply` does; fields the manifest does not name
 * (strategy, the controller's annotations) it leaves alone. `times` bounds how often it acts.
 */
class Reconciler {
  reverts = 0;
  private watch?: CollectionWatch;
  private busy = false;

  constructor(
    private readonly namespace: string,
    private readonly name: string,
    private readonly manifest: V1Deployment,
    private readonly times: number,
  ) {}

  async start(): Promise<void> {
    this.watch = watchDeployments(t, this.namespace, (d) => {
      if (d.metadata?.name === this.name) void this.reconcile(d);
    });
    await this.watch.start();
  }

  stop(): void {
    this.watch?.stop();
  }

  private drifted(d: V1Deployment): boolean {
    const want = this.manifest.spec!.template;
    return (
      d.spec?.template.metadata?.labels?.['compute-type'] !== want.metadata?.labels?.['compute-type'] ||
      JSON.stringify(d.spec?.template.spec?.nodeSelector ?? {}) !== JSON.stringify(want.spec?.nodeSelector ?? {})
    );
  }

  private async reconcile(d: V1Deployment): Promise<void> {
    if (this.busy || this.reverts >= this.times || !this.drifted(d)) return;
    this.busy = true;
    try {
      // Argo CD's self-heal waits a few seconds after a change before it syncs; a short pause keeps the
      // revert inside phase 2 (a Fargate pod takes seconds here) without racing the patch's own write.
      await new Promise((r) => setTimeout(r, 300));
      const want = this.manifest.spec!.template;
      await t.apps.patchNamespacedDeployment(
        {
          namespace: this.namespace,
          name: this.name,
          body: { spec: { template: { metadata: { labels: want.metadata?.labels }, spec: { nodeSelector: want.spec?.nodeSelector } } } },
        },
        MERGE_PATCH,
      );
      this.reverts++;
    } finally {
      this.busy = false;
    }
  }
}

describe('a reconciler puts the spot template back during phase 2', () => {
  let namespace: string;
  let c: TestController;
  let slack: Receiver;
  const reconcilers: Reconciler[] = [];
  before(async () => {
    namespace = await createNamespace(t, 'gitops');
    slack = await startReceiver();
    const sender = new SlackAlerter({ webhookUrl: slack.url, logger: pino({ level: 'silent' }), clusterName: 'ground' });
    c = await startController(t, namespace, { ALERTS_ENABLED: 'true' }, { forwardAlertsTo: sender });
  });
  after(async () => {
    for (const r of reconcilers) r.stop();
    injector.cancel();
    await c?.stop();
    await slack?.close();
    await deleteNamespace(t, namespace);
  });

  /** Two spot nodes of a pool of their own, and a Deployment pinned to it whose manifest names the spot label. */
  async function setUp(prefix: string) {
    const pool = uniqueName('pool');
    const nodes = await injector.addSpotNodes(2, { name: pool, suffix: '' });
    const name = uniqueName(prefix);
    const manifest = appDeployment({
      namespace,
      name,
      replicas: 2,
      annotations: OPT_IN,
      podLabels: { 'compute-type': 'spot' },
      nodeSelector: { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool },
    });
    await t.apps.createNamespacedDeployment({ namespace, body: manifest });
    await eventually(
      `${name} ready on spot`,
      async () => {
        const d = await t.apps.readNamespacedDeployment({ name, namespace });
        return (d.status?.readyReplicas ?? 0) === 2 && d.status?.updatedReplicas === 2 ? d : undefined;
      },
      60_000,
    );
    const original = await t.apps.readNamespacedDeployment({ name, namespace });
    // The warning must be for a node that has its pods; the other node stays healthy.
    const [first] = (await podsOf(t, namespace, name)).filter((p) => !p.metadata?.deletionTimestamp);
    const doomed = first?.spec?.nodeName;
    assert.ok(doomed !== undefined && nodes.includes(doomed), `a pod on the pool: ${doomed}`);
    const healthy = nodes.find((n) => n !== doomed)!;
    return { nodes, doomed, healthy, name, manifest, original };
  }

  const reasons = async (name: string) =>
    (await t.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` })).items.filter((e) => e.reason === 'TemplateReverted');

  it('once: the controller re-applies its patch, alerts with the fix, and the move finishes on Fargate', async () => {
    const { nodes, doomed, name, manifest } = await setUp('once');
    const reconciler = new Reconciler(namespace, name, manifest, 1);
    reconcilers.push(reconciler);
    await reconciler.start();
    // The warned node is not terminated, so nothing but the move is tested.
    await injector.interrupt([doomed], { terminate: false });

    const done = await eventually(
      `${name} healthy on Fargate, its move finished`,
      async () => {
        const d = await t.apps.readNamespacedDeployment({ name, namespace });
        const a = d.metadata?.annotations ?? {};
        return a['spot-orchestrator/state'] === 'fargate' && a['spot-orchestrator/phase'] === undefined ? d : undefined;
      },
      90_000,
    );
    assert.equal(reconciler.reverts, 1, 'the reconciler reverted the template once');
    assert.equal(done.spec?.template.metadata?.labels?.['compute-type'], 'fargate');
    assert.equal(done.spec?.template.spec?.nodeSelector?.['compute-type'], undefined, 'the spot entry removed again');
    const pods = (await podsOf(t, namespace, name)).filter((p) => !p.metadata?.deletionTimestamp && isPodReady(p));
    assert.equal(pods.length, 2);
    assert.ok(
      pods.every((p) => p.spec?.nodeName?.startsWith('fargate-')),
      `every Ready pod on Fargate: ${pods.map((p) => p.spec?.nodeName).join(', ')}`,
    );

    const events = await eventually('the TemplateReverted Event', async () => ((await reasons(name)).length > 0 ? reasons(name) : undefined));
    assert.equal(events.length, 1);
    assert.equal(events[0]!.type, 'Warning');
    assert.match(events[0]!.message ?? '', /re-applied once.*docs\/gitops\.md/);
    assert.ok(c.logs.some((l) => l.includes(REAPPLIED_LINE) && l.includes(`${namespace}/${name}`)));
    assert.ok(!c.logs.some((l) => l.includes(STOPPED_LINE) && l.includes(`${namespace}/${name}`)));
    assert.deepEqual(
      c.alerter
        .of('template_reverted')
        .filter((a) => a.deployment.name === name)
        .map((a) => a.action),
      ['reapplied'],
    );
    assert.ok(
      c.alerter.of('migration_summary').some((s) => s.outcomes.some((o) => o.name === name && o.result === 'migrated')),
      'the summary counts it migrated',
    );
    await c.alerter.flush(5000);
    const texts = slack.messages().map((m) => m.text);
    assert.ok(
      texts.some((x) => x.includes(`${namespace}/${name}`) && x.includes('re-applied once') && x.includes('docs/gitops.md')),
      `Slack got the re-apply alert with the fix: ${texts.join('\n')}`,
    );
    reconciler.stop();
    for (const n of nodes) await injector.terminateNode(n);
  });

  it('every time: the controller re-applies once, then stops fighting and leaves the Deployment consistent on the spot template', async () => {
    const { nodes, doomed, healthy, name, manifest, original } = await setUp('selfheal');
    const reconciler = new Reconciler(namespace, name, manifest, Number.POSITIVE_INFINITY);
    reconcilers.push(reconciler);
    await reconciler.start();
    await injector.interrupt([doomed], { terminate: false });

    const ended = await eventually(
      `${name}'s move stopped`,
      async () => {
        const d = await t.apps.readNamespacedDeployment({ name, namespace });
        const a = d.metadata?.annotations ?? {};
        return a['spot-orchestrator/state'] === 'spot' && a['spot-orchestrator/phase'] === undefined ? d : undefined;
      },
      90_000,
    );
    const a = ended.metadata?.annotations ?? {};
    assert.equal(a['spot-orchestrator/reason'], 'rollback');
    assert.equal(a['spot-orchestrator/saved-spec'], undefined);
    assert.deepEqual(ended.spec?.template.metadata?.labels, original.spec?.template.metadata?.labels, 'the template the reconciler wrote');
    assert.deepEqual(ended.spec?.template.spec?.nodeSelector, original.spec?.template.spec?.nodeSelector);
    assert.deepEqual(ended.spec?.strategy, original.spec?.strategy, 'the move’s strategy, which the manifest does not name, given back');
    assert.equal(reconciler.reverts, 2, 'reverted once, re-applied once, reverted again');

    // No fight afterwards: the controller writes no template again, so the reconciler has nothing to revert.
    const generation = ended.metadata?.generation;
    await new Promise((r) => setTimeout(r, 5000));
    const later = await t.apps.readNamespacedDeployment({ name, namespace });
    assert.equal(later.metadata?.generation, generation, 'nobody touched the template since');
    assert.equal(reconciler.reverts, 2);

    // The pods are where the spot template says: the pool's nodes. The Fargate pods are gone, and the
    // pods that never left the warned node are the spot template's own again (same pod-template hash),
    // so they stay until the instance dies; then their replacements go to the healthy node.
    await eventually(
      `${name}'s pods Ready on the pool's nodes only`,
      async () => {
        const pods = (await podsOf(t, namespace, name)).filter((p) => !p.metadata?.deletionTimestamp);
        return pods.length === 2 && pods.every((p) => isPodReady(p) && nodes.includes(p.spec?.nodeName ?? '')) ? true : undefined;
      },
      30_000,
    );
    await injector.terminateNode(doomed);
    await eventually(
      `${name} ready on the healthy spot node`,
      async () => {
        const pods = (await podsOf(t, namespace, name)).filter((p) => !p.metadata?.deletionTimestamp);
        const d = await t.apps.readNamespacedDeployment({ name, namespace });
        return pods.length === 2 && pods.every((p) => isPodReady(p) && p.spec?.nodeName === healthy) && d.status?.updatedReplicas === 2 ? true : undefined;
      },
      60_000,
    );

    const events = await eventually('both TemplateReverted Events', async () => ((await reasons(name)).length >= 2 ? reasons(name) : undefined));
    assert.equal(events.length, 2);
    assert.ok(
      events.some((e) => /not fighting it.*state spot.*docs\/gitops\.md/.test(e.message ?? '')),
      events.map((e) => e.message).join('\n'),
    );
    assert.ok(c.logs.some((l) => l.includes(STOPPED_LINE) && l.includes(`${namespace}/${name}`)));
    assert.deepEqual(
      c.alerter
        .of('template_reverted')
        .filter((x) => x.deployment.name === name)
        .map((x) => x.action),
      ['reapplied', 'stopped'],
    );
    const summary = await eventually('the summary', async () => c.alerter.of('migration_summary').find((s) => s.outcomes.some((o) => o.name === name)));
    const outcome = summary.outcomes.find((o) => o.name === name);
    assert.ok(outcome?.result === 'failed' && outcome.rolledBack, JSON.stringify(outcome));
    assert.match(outcome.reason, /template reverted twice/);
    await c.alerter.flush(5000);
    const texts = slack.messages().map((m) => m.text);
    assert.ok(
      texts.some((x) => x.includes(`${namespace}/${name}`) && x.includes('does not fight it') && x.includes('docs/gitops.md')),
      `Slack got the stop alert with the fix: ${texts.join('\n')}`,
    );
    reconciler.stop();
    await injector.terminateNode(healthy);
  });
});
