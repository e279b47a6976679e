import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hitZeroList } from './report.js';
import type { HitZeroApp } from './run-strategy.js';

describe('naming the at-risk Deployments that hit zero', () => {
  it('gives each its replicas and its place in the patch order, or says it was not patched', () => {
    const apps: HitZeroApp[] = [
      { app: 'app-00007', replicas: 1, patchedSeconds: 4.2, patchRank: 311 },
      { app: 'app-00042', replicas: 3, patchedSeconds: null, patchRank: null },
    ];
    assert.equal(hitZeroList(apps, 500), 'app-00007 (1 replica, patched 4.2 s after the warning, 311 of 500); app-00042 (3 replicas, not patched in phase 1)');
  });

  it('names at most twelve and counts the rest', () => {
    const apps = Array.from({ length: 15 }, (_, i): HitZeroApp => ({ app: `app-${i}`, replicas: 2, patchedSeconds: i, patchRank: i + 1 }));
    const text = hitZeroList(apps, 100);
    assert.equal(text.split('; ').length, 13);
    assert.match(text, /app-11 \(2 replicas, patched 11 s after the warning, 12 of 100\); and 3 more \(the \.json has them all\)$/);
    assert.doesNotMatch(text, /app-12 /);
  });
});
