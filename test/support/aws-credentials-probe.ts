// Resolves AWS credentials the way the controller does (its SQS client, the SDK's default chain)
// under the environment it is started with, and prints the outcome as one JSON line:
//   {"ok":true,"accessKeyId":"..."} or {"ok":false,"error":"..."}
// test/e2e/shipping.test.ts runs it with the chart's container environment.
import { sqsClientFor } from '../../src/manager.js';

const client = sqsClientFor({
  aws: {
    region: process.env.AWS_REGION ?? 'us-east-1',
    sqs_queue_url: 'http://127.0.0.1:1/q',
    visibility_timeout: 30_000,
    keep_foreign_messages: false,
    max_event_age: 600_000,
  },
});
try {
  const credentials = await client.config.credentials();
  console.log(JSON.stringify({ ok: true, accessKeyId: credentials.accessKeyId }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: error instanceof Error ? error.message : String(error) }));
}
