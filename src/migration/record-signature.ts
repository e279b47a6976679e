// The restore record (saved-spec) is what the controller writes back into a Deployment under its own
// identity when it returns to spot: tolerations, nodeSelector, affinity. A tenant who may edit their
// Deployment could otherwise write a crafted record and have the controller apply it, past admission
// policies that exempt the controller and under the controller's name. So every record carries an
// HMAC over the record and the Deployment's identity (uid, namespace, name), keyed by a secret only
// the controller reads: a record changed by hand, or copied from another Deployment, does not verify.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { V1ObjectMeta } from '@kubernetes/client-node';

export interface RecordSigner {
  sign(owner: RecordOwner, savedSpec: string): string;
  verify(owner: RecordOwner, savedSpec: string, signature: string): boolean;
}

export interface RecordOwner {
  metadata?: Pick<V1ObjectMeta, 'uid' | 'namespace' | 'name'>;
}

const VERSION = 'v1';
/** 256 bits: the key is as long as the hash output. */
export const RECORD_KEY_BYTES = 32;

export function hmacRecordSigner(key: Uint8Array): RecordSigner {
  if (key.length < RECORD_KEY_BYTES) throw new Error(`the restore-record key has ${key.length} bytes, at least ${RECORD_KEY_BYTES} are needed`);
  const mac = (owner: RecordOwner, savedSpec: string) =>
    createHmac('sha256', key)
      .update(
        ['spot-orchestrator saved-spec', VERSION, owner.metadata?.uid ?? '', owner.metadata?.namespace ?? '', owner.metadata?.name ?? '', savedSpec].join('\n'),
      )
      .digest();
  return {
    sign: (owner, savedSpec) => `${VERSION}.${mac(owner, savedSpec).toString('base64url')}`,
    verify(owner, savedSpec, signature) {
      const [version, encoded, ...rest] = signature.split('.');
      if (version !== VERSION || encoded === undefined || rest.length > 0) return false;
      const given = Buffer.from(encoded, 'base64url');
      const expected = mac(owner, savedSpec);
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}

/**
 * A signer whose key arrives after the controller is built: the process reads the key once its
 * caches are up (so an unreachable API server is reported as such first), and acts only after that.
 */
export class DeferredRecordSigner implements RecordSigner {
  private inner: RecordSigner | undefined;

  useKey(key: Uint8Array): void {
    this.inner = hmacRecordSigner(key);
  }

  get ready(): boolean {
    return this.inner !== undefined;
  }

  private keyed(): RecordSigner {
    if (!this.inner) throw new Error('the restore-record key has not been read yet');
    return this.inner;
  }

  sign(owner: RecordOwner, savedSpec: string): string {
    return this.keyed().sign(owner, savedSpec);
  }

  verify(owner: RecordOwner, savedSpec: string, signature: string): boolean {
    return this.keyed().verify(owner, savedSpec, signature);
  }
}
