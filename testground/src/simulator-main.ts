// The EKS simulator process cluster-up starts: the Fargate admission webhook and fargate-scheduler.
// Its settings (launch throttle, start-up distribution, seed) come from ground.json, where cluster-up
// wrote them from the TESTGROUND_FARGATE_* variables (see fargate/settings.ts).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AdmissionregistrationV1Api } from '@kubernetes/client-node';
import { registerWebhook, startWebhookServer } from './fargate/webhook.js';
import { FargateScheduler } from './fargate/scheduler.js';
import { loadProfiles } from './fargate/profiles.js';
import { describeFargate, groundFargateSettings, kubeConfigFrom, loadGround } from './ground.js';

const groundFile = process.argv[2];
const ground = loadGround(groundFile);
const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
const kc = kubeConfigFrom(ground.fargateKubeconfig);
const profiles = loadProfiles(process.env.TESTGROUND_FARGATE_PROFILES);
const settings = groundFargateSettings(ground);

const server = await startWebhookServer({ port: ground.webhookPort, certFile: ground.webhookCert, keyFile: ground.webhookKey, profiles });
await registerWebhook(kc.makeApiClient(AdmissionregistrationV1Api), { port: ground.webhookPort, caFile: ground.webhookCA });
const scheduler = new FargateScheduler(kc, { settings, timeScale: ground.timeScale, log });
await scheduler.start();
log(`fargate webhook on 127.0.0.1:${ground.webhookPort}, profiles: ${profiles.map((p) => p.name).join(', ')}`);
log(`fargate-scheduler: ${describeFargate(settings, ground.timeScale)}`);
writeFileSync(join(dirname(groundFile ?? '.'), 'simulator.ready'), new Date().toISOString());

const shutdown = async () => {
  await scheduler.stop();
  server.close();
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
