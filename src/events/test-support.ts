// Shared by the tests beside this file: where the event samples live and what they must parse to.

import { readFileSync } from 'node:fs';
import type { KnownKind } from './parse.js';

/** The repository root (this file is <root>/src/events/test-support.ts). */
export const REPO_ROOT = new URL('../../', import.meta.url);
/** The samples are part of the repository, so a clone with nothing beside it runs every test. */
export const SAMPLES_DIR = new URL('test/fixtures/events/', REPO_ROOT);

export interface Sample {
  kind: KnownKind;
  file: string;
  body: string;
  /** The same event as an SNS topic delivers it to a subscribed queue (`sns-<file>`). */
  snsBody: string;
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
    snsBody: readSample('sns-spot-interruption-warning.json'),
    fields: {
      kind: 'spot_interrupted',
      id: '9c3f1a72-5d0e-4b8a-a1f6-2e7d4c90b315',
      instanceIds: ['i-07c4e2a9d1b3f5e68'],
      instanceId: 'i-07c4e2a9d1b3f5e68',
      time: new Date('2026-11-24T16:52:12Z'),
      deadline: new Date('2026-11-24T16:54:12Z'),
      region: 'eu-west-1',
      account: '210987654321',
      action: 'terminate',
    },
    required: [...COMMON_REQUIRED, 'detail.instance-action'],
  },
  {
    kind: 'rebalance_recommendation',
    file: 'rebalance-recommendation.json',
    body: readSample('rebalance-recommendation.json'),
    snsBody: readSample('sns-rebalance-recommendation.json'),
    fields: {
      kind: 'rebalance_recommendation',
      id: '4b81d6e0-73a2-4f19-9c5e-d08a6f2b17c4',
      instanceIds: ['i-07c4e2a9d1b3f5e68'],
      instanceId: 'i-07c4e2a9d1b3f5e68',
      time: new Date('2026-11-24T16:47:31Z'),
      region: 'eu-west-1',
      account: '210987654321',
    },
    required: COMMON_REQUIRED,
  },
  {
    kind: 'state_change',
    file: 'instance-state-change.json',
    body: readSample('instance-state-change.json'),
    snsBody: readSample('sns-instance-state-change.json'),
    fields: {
      kind: 'state_change',
      id: 'e2a05c19-86bd-4d37-b4f0-71c9a3e8d256',
      instanceIds: ['i-07c4e2a9d1b3f5e68'],
      instanceId: 'i-07c4e2a9d1b3f5e68',
      time: new Date('2026-11-24T16:54:09Z'),
      region: 'eu-west-1',
      account: '210987654321',
      state: 'shutting-down',
    },
    required: [...COMMON_REQUIRED, 'detail.state'],
  },
  {
    kind: 'capacity_reservation_interrupted',
    file: 'capacity-reservation-interruption-warning.json',
    body: readSample('capacity-reservation-interruption-warning.json'),
    snsBody: readSample('sns-capacity-reservation-interruption-warning.json'),
    fields: {
      kind: 'capacity_reservation_interrupted',
      id: 'b7e2c4d1-0a93-4f6e-9d58-3c1f7a2e6b90',
      instanceIds: ['i-0d5a8c3e1f7b92460'],
      instanceId: 'i-0d5a8c3e1f7b92460',
      time: new Date('2026-11-24T17:03:45Z'),
      deadline: new Date('2026-11-24T17:05:45Z'),
      region: 'eu-west-1',
      account: '210987654321',
      action: 'terminate',
    },
    required: [...COMMON_REQUIRED, 'detail.instance-action'],
  },
  {
    kind: 'scheduled_change',
    file: 'aws-health-scheduled-change.json',
    body: readSample('aws-health-scheduled-change.json'),
    snsBody: readSample('sns-aws-health-scheduled-change.json'),
    fields: {
      kind: 'scheduled_change',
      id: '3a9d6f20-c4e1-4b78-8f05-e17b2d9c4a63',
      instanceIds: ['i-07c4e2a9d1b3f5e68', 'i-0e91b4d7a2c6f8350'],
      time: new Date('2026-11-23T08:14:36Z'),
      region: 'eu-west-1',
      account: '210987654321',
      eventTypeCode: 'AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED',
      startTime: new Date('2026-12-07T09:00:00Z'),
    },
    required: [
      ...COMMON_REQUIRED.filter((path) => path !== 'detail.instance-id'),
      'detail.service',
      'detail.eventTypeCategory',
      'detail.eventTypeCode',
      'detail.startTime',
      'detail.affectedEntities',
      'detail.affectedEntities.0',
      'detail.affectedEntities.0.entityValue',
      'detail.affectedEntities.1',
      'detail.affectedEntities.1.entityValue',
    ],
  },
];

/** A fresh, mutable copy of a sample as a JSON object. */
export function sampleObject(sample: Sample): Record<string, unknown> {
  return JSON.parse(sample.body) as Record<string, unknown>;
}
