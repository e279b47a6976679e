// Detection latency: a single warning put straight into the controller's queue (SendMessage), then
// the time until the first patch of the one Deployment on that node is seen on the Deployment watch.
// Repeated over as many nodes, one event at a time.
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { buildSpotInterruption } from '../../src/events/build.js';
import { awsClientConfig } from '../../testground/src/ground.js';
import { type Bench, sleep } from './context.js';
import { startController } from './controller-process.js';
import { appName, setUp, tearDown } from './scenario.js';
import { percentile, round } from './stats.js';

export interface DetectionResult {
  events: number;
  /** Seconds from the SendMessage call to the patch seen on the watch. */
  samples: number[];
  missed: number;
  p50: number;
  p95: number;
  min: number;
  max: number;
}

export async function runDetection(b: Bench, repeats: number, entry: string | undefined): Promise<DetectionResult> {
  const section = 'detection';
  const scenario = await setUp(b, { tag: 'det', deployments: repeats, nodes: repeats, replicas: () => 1, service: () => false, pinToNode: true }, section);
  let controller: Awaited<ReturnType<typeof startController>> | undefined;
  try {
    controller = await startController(b, scenario.namespace, section, entry);
    const sqs = new SQSClient(awsClientConfig(b.ground));
    const samples: number[] = [];
    let missed = 0;
    await sleep(1000);
    for (let i = 0; i < repeats; i++) {
      const node = await b.core.readNode({ name: scenario.nodes[i]! });
      const [, , , zone, instanceId] = node.spec!.providerID!.split('/');
      const body = buildSpotInterruption({ instanceId: instanceId!, zone, time: new Date(), region: b.ground.region, account: b.ground.account });
      const name = appName(i);
      const sentAt = Date.now();
      await sqs.send(new SendMessageCommand({ QueueUrl: controller.queueUrl, MessageBody: body }));
      const seen = await scenario.tracker.waitFor(name, (d) => d.patchedAt !== undefined, 30_000);
      const patchedAt = scenario.tracker.states.get(name)?.patchedAt;
      if (!seen || patchedAt === undefined) {
        missed++;
        b.say(section, `event ${i + 1}/${repeats}: no patch within 30 s`);
      } else {
        samples.push(round((patchedAt - sentAt) / 1000, 3));
        b.say(section, `event ${i + 1}/${repeats}: first patch ${(patchedAt - sentAt).toFixed(0)} ms after SendMessage`);
      }
      await sleep(1000);
    }
    const result: DetectionResult = {
      events: repeats,
      samples,
      missed,
      p50: percentile(samples, 50),
      p95: percentile(samples, 95),
      min: samples.length ? Math.min(...samples) : NaN,
      max: samples.length ? Math.max(...samples) : NaN,
    };
    return result;
  } finally {
    await controller?.stop();
    await tearDown(b, scenario, section);
  }
}
