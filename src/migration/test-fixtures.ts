// Shared by the migration tests: realistic Deployments and an API-server stand-in for patches.

import assert from 'node:assert/strict';
import type { V1Deployment } from '@kubernetes/client-node';

import { MANAGED_ANNOTATIONS } from '../state/annotations.js';
import { applyJsonPatch, type JsonPatchOp } from './json-patch.js';
import type { MigrationInput, MigrationPlan, PatchResult } from './plan.js';
import { hmacRecordSigner } from './record-signature.js';
import type { ComputeLabels } from './spot-constraints.js';

export const LABELS: ComputeLabels = { computeLabelKey: 'compute-type', spotLabel: 'spot', fargateLabel: 'fargate' };

export const NOW = new Date('2025-03-14T09:26:53.589Z');

/** The tests' restore-record key: fixed, so signed fixtures compare equal run to run. */
export const TEST_SIGNER = hmacRecordSigner(Buffer.alloc(32, 7));

/** Puts a saved-spec on the Deployment as this controller would: with its signature (or none for undefined). */
export function setSignedSavedSpec(d: V1Deployment, raw: string | undefined): void {
  d.metadata ??= {};
  d.metadata.annotations ??= {};
  const annotations = d.metadata.annotations;
  if (raw === undefined) {
    delete annotations[MANAGED_ANNOTATIONS.savedSpec];
    delete annotations[MANAGED_ANNOTATIONS.savedSpecSignature];
    return;
  }
  annotations[MANAGED_ANNOTATIONS.savedSpec] = raw;
  annotations[MANAGED_ANNOTATIONS.savedSpecSignature] = TEST_SIGNER.sign(d, raw);
}

export function migrationInput(overrides: Partial<MigrationInput> = {}): MigrationInput {
  return {
    ...LABELS,
    allowFargate: true,
    now: NOW,
    reason: 'spot-interruption',
    eventId: 'evt-0b5f',
    instanceIds: ['i-0abc123', 'i-0def456'],
    signer: TEST_SIGNER,
    ...overrides,
  };
}

/** A Deployment pinned to spot the common way: nodeSelector, template label and a spot toleration. */
export function spotDeployment(): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'api',
      namespace: 'prod',
      resourceVersion: '4711',
      generation: 7,
      labels: { app: 'api' },
      annotations: {
        'spot-orchestrator/enabled': 'true',
        'deployment.kubernetes.io/revision': '7',
      },
    },
    spec: {
      replicas: 3,
      revisionHistoryLimit: 10,
      selector: { matchLabels: { app: 'api' } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      template: {
        metadata: {
          labels: { app: 'api', 'compute-type': 'spot' },
          annotations: { 'prometheus.io/scrape': 'true' },
        },
        spec: {
          containers: [
            {
              name: 'web',
              image: 'ghcr.io/acme/api:1.2.3',
              ports: [{ containerPort: 8080, name: 'http', protocol: 'TCP' }],
              resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '512Mi' } },
            },
          ],
          nodeSelector: { 'compute-type': 'spot', 'kubernetes.io/arch': 'amd64' },
          tolerations: [
            { key: 'spot', operator: 'Equal', value: 'true', effect: 'NoSchedule' },
            { key: 'dedicated', operator: 'Equal', value: 'api', effect: 'NoSchedule' },
          ],
        },
      },
    },
  };
}

/** Stands in for the API server: applies a JSON patch and bumps resourceVersion like a write does. */
export function serverApply(d: V1Deployment, ops: readonly JsonPatchOp[]): V1Deployment {
  const out = applyJsonPatch(d, ops);
  if (out.metadata?.resourceVersion !== undefined) {
    out.metadata.resourceVersion = String(Number(out.metadata.resourceVersion) + 1);
  }
  return out;
}

const MANAGED = new Set<string>(Object.values(MANAGED_ANNOTATIONS));

/** The Deployment's annotations other than the ones the controller manages. */
export function userAnnotations(d: V1Deployment): Record<string, string> {
  return Object.fromEntries(Object.entries(d.metadata?.annotations ?? {}).filter(([k]) => !MANAGED.has(k)));
}

/** The ops of a plan that must patch; fails the test with the skip reason otherwise. */
export function patchOps(plan: MigrationPlan): JsonPatchOp[] {
  assert.equal(plan.action, 'patch', plan.action === 'skip' ? `skipped: ${plan.reason}: ${plan.detail}` : '');
  return plan.action === 'patch' ? plan.ops : [];
}

/** The ops of a planner result that must succeed; fails the test with its error otherwise. */
export function okOps(result: PatchResult): JsonPatchOp[] {
  assert.ok('ops' in result, 'error' in result ? result.error : '');
  return 'ops' in result ? result.ops : [];
}
