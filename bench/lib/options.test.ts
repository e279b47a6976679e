import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withoutEmpty } from './controller-process.js';
import { mainScenarioPods, parseOptions, podsPerNode } from './options.js';

test('node pods: the ground default, a number, or packed', () => {
  assert.equal(parseOptions([], {}).nodePods, 250);
  assert.equal(parseOptions(['--node-pods', '90'], {}).nodePods, 90);
  assert.equal(parseOptions([], { BENCH_NODE_PODS: 'packed' }).nodePods, 'packed');
  assert.throws(() => parseOptions(['--node-pods', 'full'], {}), /--node-pods must be an integer >= 1, got "full"/);
});

test('a packed pool holds the scenario plus 5 %, so half the pool cannot take in the other half', () => {
  // 600 Deployments of 1-5 replicas in turn: 1800 pods on 20 nodes, 90 each.
  const pods = mainScenarioPods({ n: 600, replicasMin: 1, replicasMax: 5 });
  assert.equal(pods, 1800);
  const perNode = podsPerNode('packed', pods, 20)!;
  assert.equal(perNode, 95);
  // The 10 survivors hold their own 900 and have room for 50 of the warned 900.
  assert.equal(10 * perNode - 900, 50);
  assert.equal(podsPerNode(250, pods, 20), 250);
  assert.equal(podsPerNode(undefined, pods, 20), undefined);
});

test('controller environment: NAME=value words, none by default, anything else refused with the word named', () => {
  assert.deepEqual(parseOptions([], {}).controllerEnv, {});
  assert.deepEqual(parseOptions([], { BENCH_CONTROLLER_ENV: 'MALLOC_ARENA_MAX=2  MALLOC_TRIM_THRESHOLD_=131072' }).controllerEnv, {
    MALLOC_ARENA_MAX: '2',
    MALLOC_TRIM_THRESHOLD_: '131072',
  });
  assert.deepEqual(parseOptions(['--controller-env', 'EMPTY='], {}).controllerEnv, { EMPTY: '' });
  assert.throws(() => parseOptions(['--controller-env', 'A=1 oops'], {}), /--controller-env: "oops" is not NAME=value, in "A=1 oops"/);
});

test("controller environment: NAME= takes out what the image sets, so a run can compare against glibc's defaults", () => {
  const image = { NODE_ENV: 'production', MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' };
  const asked = parseOptions([], { BENCH_CONTROLLER_ENV: 'MALLOC_ARENA_MAX= MALLOC_MMAP_THRESHOLD_= EXTRA=1' }).controllerEnv;
  assert.deepEqual(withoutEmpty({ ...image, ...asked }), { NODE_ENV: 'production', EXTRA: '1' });
});

test('the watched floor is off unless asked for', () => {
  assert.equal(parseOptions([], {}).watchedFloor, false);
  assert.equal(parseOptions([], { BENCH_WATCHED_FLOOR: '1' }).watchedFloor, true);
});
