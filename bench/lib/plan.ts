// The controller's own migration plan, as the baselines and the floor send it: the same patch, so
// that what differs between strategies is when and how it is sent, never what it says.
import type { V1Deployment } from '@kubernetes/client-node';
import { planMigration, type MigrationPlan } from '../../src/migration/plan.js';
import { hmacRecordSigner } from '../../src/migration/record-signature.js';
import { COMPUTE_LABEL, FARGATE } from './trackers.js';

/** The baselines restore nothing: any key signs their records. */
const BASELINE_SIGNER = hmacRecordSigner(Buffer.alloc(32, 1));

export function benchMigrationPlan(d: V1Deployment, eventId: string, instanceIds: string[]): MigrationPlan {
  return planMigration(d, {
    computeLabelKey: COMPUTE_LABEL,
    spotLabel: 'spot',
    fargateLabel: FARGATE,
    allowFargate: true,
    now: new Date(),
    reason: 'spot-interruption',
    eventId,
    instanceIds,
    signer: BASELINE_SIGNER,
  });
}
