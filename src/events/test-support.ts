// Shared by the tests beside this file: where the event samples live and what they must parse to.

import { readFileSync } from 'node:fs';
import type { KnownKind } from './parse.js';

/** The repository root (this file is <root>/src/events/test-support.ts). */
export const REPO_ROOT = new URL('../../', import.meta.url);
/** The samples sit in `shared/events/` beside the repository, wherever it is cloned. */
export const SAMPLES_DIR = new URL('../shared/events/', REPO_ROOT);

export interface Sample {
  kind: KnownKind;
  file: string;
  body: string;
  /** The fields the sample must parse to. */
  fields: Record<string, unknown>;
  /** Paths whose deletion or wrong type must make the sample malformed; the others are not read. */
  required: string[];
}

const COMMON_REQUIRED = ['id', 'source', 'detail-type', 'time', 'region', 'detail', 'detail.instance-id'];

export function readSample(file: string): string {
  return readFileSync(new URL(file, SAMPLES_DIR), 'utf8');
}

export const SAMPLES: Sample[] = [
  {
    kind: 'spot_interrupted',
    file: 'spot-interruption-warning.json',
    body: readSample('spot-interruption-warning.json'),
    fields: {
      kind: 'spot_interrupted',
      id: '1e5527d7-bb36-4607-3370-4164db56a40e',
      instanceIds: ['i-0b662ef9931388ba0'],
      instanceId: 'i-0b662ef9931388ba0',
      time: new Date('2026-11-24T16:52:12Z'),
      deadline: new Date('2026-11-24T16:54:12Z'),
      region: 'us-east-1',
      account: '123456789012',
      action: 'terminate',
    },
    required: [...COMMON_REQUIRED, 'detail.instance-action'],
  },
  {
    kind: 'rebalance_recommendation',
    file: 'rebalance-recommendation.json',
    body: readSample('rebalance-recommendation.json'),
    fields: {
      kind: 'rebalance_recommendation',
      id: '5d5555d5-dd55-5555-5555-5555dd55d55d',
      instanceIds: ['i-0b662ef9931388ba0'],
      instanceId: 'i-0b662ef9931388ba0',
      time: new Date('2026-11-24T16:40:00Z'),
      region: 'us-east-1',
      account: '123456789012',
    },
    required: COMMON_REQUIRED,
  },
  {
    kind: 'state_change',
    file: 'instance-state-change.json',
    body: readSample('instance-state-change.json'),
    fields: {
      kind: 'state_change',
      id: '7bf73129-1428-4cd3-a780-95db273d1602',
      instanceIds: ['i-0b662ef9931388ba0'],
      instanceId: 'i-0b662ef9931388ba0',
      time: new Date('2026-11-24T16:54:10Z'),
      region: 'us-east-1',
      account: '123456789012',
      state: 'shutting-down',
    },
    required: [...COMMON_REQUIRED, 'detail.state'],
  },
];

/** A fresh, mutable copy of a sample as a JSON object. */
export function sampleObject(sample: Sample): Record<string, unknown> {
  return JSON.parse(sample.body) as Record<string, unknown>;
}
