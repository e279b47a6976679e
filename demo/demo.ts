// `make demo`: a spot interruption on the local test ground, watched live. Creates a few
// Deployments on a spot node group (some opted in, one not, one refusing Fargate), runs the
// controller, interrupts the nodes, and ends with what happened to each Deployment.
import { pino } from 'pino';
import type { V1Deployment } from '@kubernetes/client-node';
import { loadConfig } from '../src/config/load.js';
import { Controller, loadRecordKeyFor } from '../src/manager.js';
import { hmacRecordSigner } from '../src/migration/record-signature.js';
import { createMetrics } from '../src/metrics/metrics.js';
import { NO_ALERTS } from '../src/alerts/alert.js';
import { ensureQueueAndRule, removeQueueAndRule } from '../testground/src/aws.js';
import { groundClients, kubeConfigFrom, loadGround } from '../testground/src/ground.js';
import { InterruptionInjector } from '../testground/src/injector.js';
import { appDeployment, eventually, uniqueName } from '../test/support/ground.js';
import { ReadinessSampler } from '../test/support/controller.js';

const ground = loadGround();
const t = { ground, ...groundClients(ground.kubeconfig) };
const namespace = uniqueName('demo');
const pool = 'demo-spot';
const say = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

interface DemoApp {
  name: string;
  replicas: number;
  note: string;
  annotations?: Record<string, string>;
  privileged?: boolean;
}

const apps: DemoApp[] = [
  { name: 'checkout', replicas: 3, note: 'opted in', annotations: { 'spot-orchestrator/enabled': 'true' } },
  { name: 'catalog', replicas: 2, note: 'opted in', annotations: { 'spot-orchestrator/enabled': 'true' } },
  { name: 'search', replicas: 2, note: 'opted in', annotations: { 'spot-orchestrator/enabled': 'true' } },
  { name: 'payments', replicas: 1, note: 'opted in, single replica', annotations: { 'spot-orchestrator/enabled': 'true' } },
  {
    name: 'batch',
    replicas: 1,
    note: 'allow-fargate: false',
    annotations: { 'spot-orchestrator/enabled': 'true', 'spot-orchestrator/allow-fargate': 'false' },
  },
  { name: 'node-agent', replicas: 1, note: 'privileged (Fargate refuses)', annotations: { 'spot-orchestrator/enabled': 'true' }, privileged: true },
  { name: 'legacy', replicas: 1, note: 'not opted in' },
];

await t.core.createNamespace({ body: { metadata: { name: namespace } } });
const injector = new InterruptionInjector(ground, t);
const nodes = await injector.addSpotNodes(2, { name: pool, suffix: `${namespace}-` });
say(`namespace ${namespace}; spot node group ${pool}: ${nodes.join(', ')}`);
for (const app of apps) {
  await t.apps.createNamespacedDeployment({
    namespace,
    body: appDeployment({
      namespace,
      name: app.name,
      replicas: app.replicas,
      annotations: app.annotations,
      nodeSelector: { 'compute-type': 'spot', 'eks.amazonaws.com/nodegroup': pool },
      spec: app.privileged ? { containers: [{ name: 'app', image: 'registry.example/agent:1.0', securityContext: { privileged: true } }] } : undefined,
    }),
  });
  await t.core.createNamespacedService({
    namespace,
    body: { metadata: { name: app.name }, spec: { selector: { app: app.name }, ports: [{ port: 80, targetPort: 8080 }] } },
  });
}
await eventually(
  'demo Deployments ready on spot',
  async () => {
    const list = await t.apps.listNamespacedDeployment({ namespace });
    return list.items.every((d) => (d.status?.readyReplicas ?? 0) >= (d.spec?.replicas ?? 1)) ? true : undefined;
  },
  120_000,
);
say('all Deployments ready on spot');

const queueName = uniqueName('demo-q');
const { queueUrl } = await ensureQueueAndRule(ground, queueName);
process.env.AWS_ACCESS_KEY_ID ??= 'testground';
process.env.AWS_SECRET_ACCESS_KEY ??= 'testground';
const config = loadConfig({
  env: {
    MODE: 'namespace',
    NAMESPACE: namespace,
    SQS_QUEUE_URL: queueUrl,
    AWS_ENDPOINT_URL_SQS: ground.sqsEndpoint,
    AWS_REGION: ground.region,
    VERIFICATION_DELAY: '1s',
    ALERTS_ENABLED: 'false',
  },
});
const demoKc = kubeConfigFrom(ground.kubeconfig);
const controller = new Controller({
  config,
  kc: demoKc,
  signer: hmacRecordSigner(await loadRecordKeyFor(config, demoKc)),
  log: pino({ level: 'error' }),
  metrics: createMetrics(),
  alerter: NO_ALERTS,
});
await controller.start();
say('controller running (namespace mode)');

const fromNode = new Map<string, string>();
for (const pod of (await t.core.listNamespacedPod({ namespace })).items) fromNode.set(pod.metadata!.labels!.app!, pod.spec?.nodeName ?? '?');
const sampler = new ReadinessSampler();
await sampler.start(t, namespace);
const interruption = await injector.interrupt(nodes);
const started = Date.now();
say(
  `EC2 Spot Instance Interruption Warning sent for ${interruption.instances.map((i) => i.instanceId).join(', ')}; instances die at ${interruption.terminatesAt.toISOString().slice(11, 19)}`,
);

const doneAt = new Map<string, number>();
const row = (d: V1Deployment) => {
  const a = d.metadata?.annotations ?? {};
  return `${d.metadata!.name!.padEnd(11)} ${(a['spot-orchestrator/state'] ?? '-').padEnd(8)} ${(a['spot-orchestrator/phase'] ?? '').padEnd(10)} ready ${d.status?.readyReplicas ?? 0}/${d.spec?.replicas}`;
};
const managed = apps
  .filter((a) => a.annotations?.['spot-orchestrator/enabled'] && !a.annotations['spot-orchestrator/allow-fargate'] && !a.privileged)
  .map((a) => a.name);
while (Date.now() < interruption.terminatesAt.getTime() + 5000) {
  const list = (await t.apps.listNamespacedDeployment({ namespace })).items;
  for (const d of list) {
    const a = d.metadata?.annotations ?? {};
    if (a['spot-orchestrator/state'] === 'fargate' && !a['spot-orchestrator/phase'] && !doneAt.has(d.metadata!.name!))
      doneAt.set(d.metadata!.name!, Date.now() - started);
  }
  const left = Math.max(0, Math.round((interruption.terminatesAt.getTime() - Date.now()) / 1000));
  say(`${left}s to termination | ${list.map((d) => row(d).replace(/\s+/g, ' ')).join(' | ')}`);
  if (managed.every((m) => doneAt.has(m)) && Date.now() > interruption.terminatesAt.getTime()) break;
  await new Promise((r) => setTimeout(r, 2000));
}
await interruption.terminated;
sampler.stop();
await controller.stop();
await removeQueueAndRule(ground, queueName, queueUrl);

const events = (await t.core.listNamespacedEvent({ namespace })).items;
console.log('\nDeployment   replicas  from node                 outcome                                   took     lowest ready');
for (const app of apps) {
  const skipped = events.find((e) => e.involvedObject.name === app.name && e.reason === 'MigrationSkipped');
  const outcome = doneAt.has(app.name)
    ? 'moved to Fargate'
    : skipped
      ? `skipped: ${skipped.message?.split(':')[0]}`
      : app.annotations
        ? 'not moved'
        : 'not managed (no opt-in)';
  // The controller's own measure, from the patch to verified health, is in its Event.
  const migrated = events.find((e) => e.involvedObject.name === app.name && e.reason === 'MigratedToFargate');
  const took = migrated?.message?.match(/after ([\d.]+ s)/)?.[1] ?? '-';
  console.log(
    `${app.name.padEnd(12)} ${String(app.replicas).padEnd(9)} ${(fromNode.get(app.name) ?? '?').padEnd(25)} ${outcome.padEnd(41)} ${took.padEnd(8)} ${sampler.lowestReady.get(app.name) ?? '?'}/${app.replicas}`,
  );
}
console.log(`\nThe spot instances are gone; the moved Deployments never had fewer ready replicas than desired.`);
console.log(`Look around: ${ground.kubectl} --kubeconfig ${ground.kubeconfig} -n ${namespace} get deploy,pods -o wide`);
process.exit(0);
