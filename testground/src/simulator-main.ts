// The EKS simulator process cluster-up starts: the Fargate admission webhook and fargate-scheduler.
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { registerWebhook, startWebhookServer } from './fargate/webhook.js';
import { FargateScheduler } from './fargate/scheduler.js';
import { loadProfiles } from './fargate/profiles.js';
import { kubeConfigFrom, loadGround, scaled } from './ground.js';

import { FARGATE_PROVISIONING_MS } from './fargate/timing.js';

const groundFile = process.argv[2];
const ground = loadGround(groundFile);
const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
const kc = kubeConfigFrom(ground.fargateKubeconfig);
const profiles = loadProfiles(process.env.TESTGROUND_FARGATE_PROFILES);

const server = await startWebhookServer({ port: ground.webhookPort, certFile: ground.webhookCert, keyFile: ground.webhookKey, profiles });
await registerWebhook(kc.makeApiClient(AdmissionregistrationV1Api), { port: ground.webhookPort, caFile: ground.webhookCA });
const delayMs = scaled(ground, Number(process.env.TESTGROUND_FARGATE_DELAY_MS ?? FARGATE_PROVISIONING_MS));
const scheduler = new FargateScheduler(kc, { provisioningDelayMs: delayMs, log });
await scheduler.start();
log(`fargate webhook on 127.0.0.1:${ground.webhookPort}, fargate-scheduler provisioning in ${delayMs} ms, profiles: ${profiles.map((p) => p.name).join(', ')}`);
writeFileSync(join(dirname(groundFile ?? '.'), 'simulator.ready'), new Date().toISOString());

const shutdown = async () => {
  await scheduler.stop();
  server.close();
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
