// The key that signs restore records (migration/record-signature.ts) lives in a Secret of the
// controller's own namespace, which tenants cannot read. The first replica to start creates it with
// random bytes; every replica and every restart then reads the same key, so a record written before
// a restart or by the other replica verifies. Deleting the Secret invalidates every record in flight.
import { randomBytes } from 'node:crypto';
import type { CoreV1Api } from '@kubernetes/client-node';
import { RECORD_KEY_BYTES } from '../migration/record-signature.js';
import { statusOf } from './api.js';

const DATA_KEY = 'key';

export async function loadRecordKey(core: CoreV1Api, namespace: string, name: string): Promise<Buffer> {
  const where = `Secret ${namespace}/${name}`;
  const read = async (): Promise<Buffer | undefined> => {
    try {
      const secret = await core.readNamespacedSecret({ name, namespace });
      const encoded = secret.data?.[DATA_KEY];
      if (encoded === undefined) throw new Error(`${where} has no data.${DATA_KEY}: delete it to have a new key made (records in flight then stop verifying)`);
      const key = Buffer.from(encoded, 'base64');
      if (key.length < RECORD_KEY_BYTES) throw new Error(`${where}: data.${DATA_KEY} holds ${key.length} bytes, at least ${RECORD_KEY_BYTES} are needed`);
      return key;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  };
  const existing = await read();
  if (existing) return existing;
  try {
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name, labels: { 'app.kubernetes.io/name': 'spot-fargate-orchestrator', 'app.kubernetes.io/component': 'restore-record-key' } },
        type: 'Opaque',
        data: { [DATA_KEY]: randomBytes(RECORD_KEY_BYTES).toString('base64') },
      },
    });
  } catch (err) {
    // The other replica made it first: its key is the key.
    if (statusOf(err) !== 409) throw err;
  }
  const made = await read();
  if (!made) throw new Error(`${where} was created but cannot be read back`);
  return made;
}
