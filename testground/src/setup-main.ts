// Run by cluster-up once the components are healthy: the default node pools and the queue + rule.
import { readFileSync, writeFileSync } from 'node:fs';
import { ensureQueueAndRule } from './aws.js';
import { groundClients, loadGround } from './ground.js';
import { createPool, waitForNodesReady } from './nodes.js';

const groundFile = process.argv[2]!;
const ground = loadGround(groundFile);
const { core } = groundClients(ground.kubeconfig);

const spot = await createPool(core, { name: 'spot', capacityType: 'SPOT', count: Number(process.env.TESTGROUND_SPOT_NODES ?? 4) });
const onDemand = await createPool(core, { name: 'on-demand', capacityType: 'ON_DEMAND', count: Number(process.env.TESTGROUND_ON_DEMAND_NODES ?? 2) });
await waitForNodesReady(
  core,
  [...spot, ...onDemand].map((n) => n.metadata!.name!),
  60_000,
);
const { queueUrl, queueArn } = await ensureQueueAndRule(ground);

const description = JSON.parse(readFileSync(groundFile, 'utf8')) as Record<string, unknown>;
writeFileSync(groundFile, JSON.stringify({ ...description, queueUrl, queueArn }, null, 2));
console.log(`node pools: ${spot.length} spot, ${onDemand.length} on-demand`);
console.log(`queue: ${queueUrl} (fed by EventBridge rule for deploy/aws/event-pattern.json)`);
