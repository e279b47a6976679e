import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LaunchQueue } from './launch-queue.js';
import { TokenBucket } from './token-bucket.js';

const queue = (burst: number, perSecond: number) => new LaunchQueue<string>(new TokenBucket({ burst, perSecond }, 0));

describe('LaunchQueue', () => {
  it('launches the burst at once and the rest one per token, first come first served', () => {
    const q = queue(2, 10);
    for (const name of ['a', 'b', 'c', 'd']) q.add(name, name, 0);
    assert.deepEqual(q.launchable(0), { launch: ['a', 'b'], retryInMs: 100 });
    assert.deepEqual(q.launchable(99), { launch: [], retryInMs: 1 });
    assert.deepEqual(q.launchable(100), { launch: ['c'], retryInMs: 100 });
    assert.deepEqual(q.launchable(200), { launch: ['d'] });
    assert.equal(q.size, 0);
  });

  it('orders by creation time, then by arrival, so a relist cannot put a newer pod first', () => {
    const q = queue(1, 1);
    q.add('new', 'new', 2000);
    q.add('old-1', 'old-1', 1000);
    q.add('old-2', 'old-2', 1000);
    q.add('newest', 'newest', 3000);
    const order: string[] = [];
    for (let t = 0; q.size > 0; t += 1000) order.push(...q.launchable(t).launch);
    assert.deepEqual(order, ['old-1', 'old-2', 'new', 'newest']);
  });

  it('forgets a pod deleted while it waits, and adds a pod once', () => {
    const q = queue(1, 1);
    q.launchable(0); // empties the bucket
    q.add('a', 'a', 0);
    q.add('a', 'a', 0);
    q.add('b', 'b', 0);
    assert.equal(q.size, 2);
    assert.equal(q.remove('a'), true);
    assert.equal(q.remove('a'), false);
    assert.equal(q.has('a'), false);
    assert.deepEqual(q.launchable(1000).launch, ['b']);
  });

  it('says nothing about retrying when nobody waits', () => {
    const q = queue(1, 1);
    assert.deepEqual(q.launchable(0), { launch: [] });
  });
});
