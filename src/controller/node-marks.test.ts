// What the controller writes on Nodes: the seal, its record, taking back only what it added, and
// which scheduled changes are due.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Node, V1Taint } from '@kubernetes/client-node';
import { EXCLUDE_FROM_LB_LABEL, INTERRUPTED_TAINT_KEY, NODE_ANNOTATIONS } from '../state/annotations.js';
import {
  describeClearMarks,
  dueScheduledChanges,
  planClearMarks,
  planRebalanceExpiry,
  planSeal,
  planUnseal,
  readSealRecord,
  rebalanceMarkExpired,
  survivors,
  withMovedScope,
} from './node-marks.js';

const NOW = new Date('2026-11-30T10:00:00Z');
const theirs = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' };

function node(
  name: string,
  extra: { annotations?: Record<string, string>; labels?: Record<string, string>; unschedulable?: boolean; taints?: object[]; ready?: boolean } = {},
): V1Node {
  return {
    metadata: { name, resourceVersion: '42', annotations: extra.annotations ?? {}, labels: extra.labels ?? {} },
    spec: {
      providerID: `aws:///eu-west-1a/i-0${name.replace(/\D/g, '').padStart(16, '0')}`,
      unschedulable: extra.unschedulable,
      taints: extra.taints as V1Taint[] | undefined,
    },
    status: { conditions: [{ type: 'Ready', status: extra.ready === false ? 'False' : 'True' }] },
  } as V1Node;
}

/** The node as the API server would have it after the merge patch (null deletes). */
function applied(n: V1Node, patch: ReturnType<typeof planSeal>): V1Node {
  const merge = (base: Record<string, string> = {}, p: Record<string, string | null> = {}) => {
    const out = { ...base };
    for (const [k, v] of Object.entries(p))
      if (v === null) delete out[k];
      else out[k] = v;
    return out;
  };
  const spec = { ...n.spec };
  if (patch.spec && 'unschedulable' in patch.spec) spec.unschedulable = patch.spec.unschedulable ?? undefined;
  if (patch.spec && 'taints' in patch.spec) spec.taints = patch.spec.taints ?? undefined;
  return {
    ...n,
    metadata: {
      ...n.metadata,
      annotations: merge(n.metadata?.annotations, patch.metadata.annotations),
      labels: merge(n.metadata?.labels, patch.metadata.labels),
    },
    spec,
  };
}

describe('sealing a doomed node off', () => {
  it('cordons it, adds the taint (keeping the others) and the label, with the marks and a record of what it added', () => {
    const patch = planSeal(node('n1', { taints: [theirs] }), { [NODE_ANNOTATIONS.interruptedAt]: NOW.toISOString() }, NOW);
    assert.equal(patch.metadata.resourceVersion, '42', 'a stale copy must not overwrite the taint list');
    assert.deepEqual(patch.spec, {
      unschedulable: true,
      taints: [theirs, { key: INTERRUPTED_TAINT_KEY, value: 'true', effect: 'NoSchedule', timeAdded: NOW }],
    });
    assert.deepEqual(patch.metadata.labels, { [EXCLUDE_FROM_LB_LABEL]: 'true' });
    assert.deepEqual(JSON.parse(patch.metadata.annotations![NODE_ANNOTATIONS.sealed]!), { taint: true, label: true, cordon: true });
  });

  it('does not claim a label or cordon that was there before', () => {
    const before = node('n1', { labels: { [EXCLUDE_FROM_LB_LABEL]: 'true' }, unschedulable: true });
    const patch = planSeal(before, {}, NOW);
    assert.equal(patch.metadata.labels, undefined);
    assert.deepEqual(readSealRecord(applied(before, patch)), { taint: true, label: false, cordon: false });
  });

  it('a second seal keeps the first one record', () => {
    const first = node('n1');
    const once = applied(first, planSeal(first, {}, NOW));
    const twice = planSeal(once, {}, NOW);
    assert.equal(twice.spec?.taints, undefined, 'the taint is there already');
    assert.deepEqual(JSON.parse(twice.metadata.annotations![NODE_ANNOTATIONS.sealed]!), { taint: true, label: true, cordon: true });
  });
});

describe('a node that survived its deadline', () => {
  const marks = { [NODE_ANNOTATIONS.interruptedAt]: '2026-11-30T09:00:00Z', [NODE_ANNOTATIONS.terminationDeadline]: '2026-11-30T09:02:00Z' };

  it('is a survivor when sealed or interruption-marked, Ready, and past its deadline by the grace', () => {
    const sealed = (name: string, ready = true, deadline = '2026-11-30T09:02:00Z') => {
      const n = node(name, { annotations: { ...marks, [NODE_ANNOTATIONS.terminationDeadline]: deadline }, ready });
      return applied(n, planSeal(n, {}, NOW));
    };
    const grace = 10 * 60_000;
    const found = survivors(
      [
        sealed('n1'),
        sealed('n2', false),
        sealed('n3', true, '2026-11-30T09:55:00Z'),
        node('n4', { annotations: marks }),
        node('n5', { annotations: { [NODE_ANNOTATIONS.rebalanceRecommendedAt]: '2026-11-30T08:00:00Z' } }),
        node('n6'),
      ],
      NOW,
      grace,
    );
    assert.deepEqual(
      found.map((n) => n.metadata!.name),
      ['n1', 'n4'],
      'n4 carries the marks of a warning (an older version, no seal record): they expire too',
    );
  });

  it('an interruption-marked node with no seal record loses only the marks: a cordon there is not known to be ours', () => {
    const marked = node('n4', { unschedulable: true, annotations: marks });
    const patch = planUnseal(marked, NOW)!;
    assert.equal(patch.spec, undefined);
    assert.equal(patch.metadata.labels, undefined);
    const after = applied(marked, patch);
    assert.deepEqual(after.metadata?.annotations, { [NODE_ANNOTATIONS.survivedAt]: NOW.toISOString() });
    assert.equal(after.spec?.unschedulable, true);
    assert.deepEqual(survivors([after], NOW, 0), [], 'once taken back, it is no survivor again');
  });

  it('gets back exactly what the controller added, and its marks go', () => {
    const before = node('n1', {
      taints: [theirs],
      labels: { [EXCLUDE_FROM_LB_LABEL]: 'true' },
      annotations: { ...marks, [NODE_ANNOTATIONS.scheduledChangeAt]: '2026-11-30T09:02:00Z' },
    });
    const sealed = applied(before, planSeal(before, {}, NOW));
    const after = applied(sealed, planUnseal(sealed, NOW)!);
    assert.deepEqual(after.spec?.taints, [theirs]);
    assert.equal(after.spec?.unschedulable, undefined);
    assert.equal(after.metadata?.labels?.[EXCLUDE_FROM_LB_LABEL], 'true', 'the label was there before: it stays');
    assert.deepEqual(after.metadata?.annotations, { [NODE_ANNOTATIONS.survivedAt]: NOW.toISOString() });
  });

  it('a node someone had cordoned stays cordoned; a damaged record takes nothing back', () => {
    const cordoned = node('n1', { unschedulable: true });
    const after = applied(cordoned, planUnseal(applied(cordoned, planSeal(cordoned, {}, NOW)), NOW)!);
    assert.equal(after.spec?.unschedulable, true);
    assert.equal(after.spec?.taints, undefined);
    const damaged = node('n2', {
      unschedulable: true,
      taints: [{ key: INTERRUPTED_TAINT_KEY, effect: 'NoSchedule' }],
      annotations: { [NODE_ANNOTATIONS.sealed]: '{oops' },
    });
    assert.equal(planUnseal(damaged, NOW)!.spec, undefined);
    assert.equal(planUnseal(node('n3'), NOW), undefined, 'never sealed: nothing to do');
  });
});

describe('a rebalance recommendation mark', () => {
  const ttl = 60 * 60_000;
  const recommended = (at: string) => node('n1', { annotations: { [NODE_ANNOTATIONS.rebalanceRecommendedAt]: at, [NODE_ANNOTATIONS.rebalanceMovedAt]: at } });

  it('expires the ttl after the recommendation, and a mark that is not a time at once', () => {
    assert.equal(rebalanceMarkExpired(recommended('2026-11-30T09:00:01Z'), NOW, ttl), false);
    assert.equal(rebalanceMarkExpired(recommended('2026-11-30T09:00:00Z'), NOW, ttl), true);
    assert.equal(rebalanceMarkExpired(recommended('yesterday'), NOW, ttl), true);
    assert.equal(rebalanceMarkExpired(node('n2'), NOW, ttl), false, 'no mark, nothing to expire');
  });

  it('is removed with the resourceVersion it was read at; rebalance-moved-at stays, so a later one moves nothing again', () => {
    const old = recommended('2026-11-30T08:00:00Z');
    const patch = planRebalanceExpiry(old, NOW, ttl)!;
    assert.deepEqual(patch, { metadata: { resourceVersion: '42', annotations: { [NODE_ANNOTATIONS.rebalanceRecommendedAt]: null } } });
    assert.deepEqual(applied(old, patch).metadata?.annotations, { [NODE_ANNOTATIONS.rebalanceMovedAt]: '2026-11-30T08:00:00Z' });
    // Replanned on a fresh copy that a newer recommendation has marked: nothing to remove.
    assert.equal(planRebalanceExpiry(recommended('2026-11-30T09:59:00Z'), NOW, ttl), undefined);
  });
});

describe('scheduled changes due', () => {
  const lead = 10 * 60_000;
  const marked = (name: string, at: string, event = 'h-1', moved?: string) =>
    node(name, {
      annotations: {
        [NODE_ANNOTATIONS.scheduledChangeAt]: at,
        [NODE_ANNOTATIONS.scheduledChangeEvent]: event,
        ...(moved ? { [NODE_ANNOTATIONS.scheduledChangeMoved]: JSON.stringify({ prod: moved }) } : {}),
      },
    });

  it('due from startTime - lead, one change per event, and when the next one comes due', () => {
    const { due, nextAt } = dueScheduledChanges(
      [
        marked('n1', '2026-11-30T10:10:00.000Z'),
        marked('n2', '2026-11-30T10:10:00.000Z'),
        marked('n3', '2026-11-30T09:00:00.000Z', 'h-2'),
        marked('n4', '2026-11-30T10:30:00.000Z', 'h-3'),
        marked('n5', '2026-11-30T10:20:00.000Z', 'h-4'),
        node('n6'),
      ],
      NOW,
      lead,
      'prod',
    );
    assert.deepEqual(
      due.map((c) => [c.eventId, c.startTime.toISOString(), c.nodes.map((n) => n.node.metadata!.name)]),
      [
        ['h-1', '2026-11-30T10:10:00.000Z', ['n1', 'n2']],
        ['h-2', '2026-11-30T09:00:00.000Z', ['n3']],
      ],
    );
    assert.equal(due[0]!.nodes[0]!.instanceId, 'i-00000000000000001');
    assert.equal(nextAt?.toISOString(), '2026-11-30T10:10:00.000Z');
  });

  it('a change already moved is not due again; a new startTime on the same node is', () => {
    const at = '2026-11-30T10:05:00.000Z';
    assert.equal(dueScheduledChanges([marked('n1', at, 'h-1', at)], NOW, lead, 'prod').due.length, 0);
    assert.equal(dueScheduledChanges([marked('n1', at, 'h-2', '2026-11-01T00:00:00.000Z')], NOW, lead, 'prod').due.length, 1);
  });

  it("another install's move (another scope) does not stand in for this one's, and a new move keeps it", () => {
    const at = '2026-11-30T10:05:00.000Z';
    const n = marked('n1', at, 'h-1', at);
    assert.equal(dueScheduledChanges([n], NOW, lead, 'staging').due.length, 1);
    assert.deepEqual(JSON.parse(withMovedScope(n, 'staging', at)), { prod: at, staging: at });
  });
});

describe('clearing every mark at uninstall', () => {
  it('takes off every annotation of the controller, and the seal it added, leaving what was there before', () => {
    const sealedNode = applied(
      node('n1', { taints: [theirs], labels: { [EXCLUDE_FROM_LB_LABEL]: 'true' } }),
      planSeal(node('n1', { taints: [theirs], labels: { [EXCLUDE_FROM_LB_LABEL]: 'true' } }), { [NODE_ANNOTATIONS.interruptedAt]: NOW.toISOString() }, NOW),
    );
    const marked = {
      ...sealedNode,
      metadata: { ...sealedNode.metadata, annotations: { ...sealedNode.metadata!.annotations, [NODE_ANNOTATIONS.rebalanceRecommendedAt]: 'x', other: 'kept' } },
    };
    const patch = planClearMarks(marked)!;
    const after = applied(marked, patch);
    assert.deepEqual(after.metadata?.annotations, { other: 'kept' });
    assert.deepEqual(after.spec?.taints, [theirs]);
    assert.equal(after.metadata?.labels?.[EXCLUDE_FROM_LB_LABEL], 'true', 'the label was there before: not ours to take');
    assert.equal(after.spec?.unschedulable, undefined, 'the cordon was ours');
    assert.equal(patch.metadata.resourceVersion, '42');
    assert.match(describeClearMarks(patch), /annotations .*interrupted-at.*rebalance-recommended-at.*; taint spot-orchestrator\/interrupted; cordon/);
  });

  it('a cordon with no record is not ours; our taint is ours by its key even with a damaged record', () => {
    const n = node('n2', {
      unschedulable: true,
      taints: [{ key: INTERRUPTED_TAINT_KEY, value: 'true', effect: 'NoExecute' }],
      annotations: { [NODE_ANNOTATIONS.sealed]: '{oops' },
    });
    const after = applied(n, planClearMarks(n)!);
    assert.equal(after.spec?.unschedulable, true);
    assert.equal(after.spec?.taints, undefined);
    assert.deepEqual(after.metadata?.annotations, {});
  });

  it('nothing to do on a node the controller never marked', () => {
    assert.equal(planClearMarks(node('n3', { unschedulable: true, taints: [theirs], annotations: { other: 'x' } })), undefined);
  });
});
