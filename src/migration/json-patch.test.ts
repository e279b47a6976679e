import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { applyJsonPatch, escapePointerToken, jsonEqual, parsePointer, pointer } from './json-patch.js';

describe('JSON pointers', () => {
  it('escapes ~ before / (RFC 6901)', () => {
    assert.equal(escapePointerToken('a/b~c'), 'a~1b~0c');
    assert.equal(pointer('metadata', 'annotations', 'spot-orchestrator/state'), '/metadata/annotations/spot-orchestrator~1state');
  });

  it('parses tokens, decoding ~1 before ~0', () => {
    assert.deepEqual(parsePointer(''), []);
    assert.deepEqual(parsePointer('/a~1b/~01/'), ['a/b', '~1', '']);
    assert.throws(() => parsePointer('a/b'), /does not start/);
    assert.throws(() => parsePointer('/a~2'), /invalid escape/);
  });
});

describe('applyJsonPatch', () => {
  it('adds object members and array elements, including "-" for append', () => {
    const out = applyJsonPatch({ foo: ['bar', 'baz'] }, [
      { op: 'add', path: '/foo/1', value: 'qux' },
      { op: 'add', path: '/foo/-', value: 'end' },
      { op: 'add', path: '/child', value: { grandchild: {} } },
    ]);
    assert.deepEqual(out, { foo: ['bar', 'qux', 'baz', 'end'], child: { grandchild: {} } });
  });

  it('add replaces an existing member', () => {
    assert.deepEqual(applyJsonPatch({ a: 1 }, [{ op: 'add', path: '/a', value: 2 }]), { a: 2 });
  });

  it('removes, replaces, moves and copies', () => {
    const out = applyJsonPatch({ a: { b: 1, c: [1, 2, 3] }, d: 'x' }, [
      { op: 'remove', path: '/a/c/1' },
      { op: 'replace', path: '/d', value: 'y' },
      { op: 'move', from: '/a/b', path: '/e' },
      { op: 'copy', from: '/a/c', path: '/f' },
    ]);
    assert.deepEqual(out, { a: { c: [1, 3] }, d: 'y', e: 1, f: [1, 3] });
  });

  it('handles escaped keys', () => {
    const out = applyJsonPatch({ m: { 'a/b': 1 } }, [
      { op: 'add', path: '/m/c~0d', value: 2 },
      { op: 'remove', path: '/m/a~1b' },
    ]);
    assert.deepEqual(out, { m: { 'c~d': 2 } });
  });

  it('fails on errors and leaves the input untouched (atomic)', () => {
    const doc = { a: 1, list: [0] };
    assert.throws(
      () =>
        applyJsonPatch(doc, [
          { op: 'remove', path: '/a' },
          { op: 'remove', path: '/missing' },
        ]),
      /op #1/,
    );
    assert.throws(() => applyJsonPatch(doc, [{ op: 'replace', path: '/nope', value: 1 }]));
    assert.throws(() => applyJsonPatch(doc, [{ op: 'add', path: '/x/y', value: 1 }]));
    assert.throws(() => applyJsonPatch(doc, [{ op: 'add', path: '/list/2', value: 1 }]));
    assert.throws(() => applyJsonPatch(doc, [{ op: 'add', path: '/list/01', value: 1 }]));
    assert.throws(() => applyJsonPatch(doc, [{ op: 'move', from: '/list', path: '/list/0' }]));
    assert.deepEqual(doc, { a: 1, list: [0] });
  });

  it('test compares JSON values deeply, key order ignored', () => {
    const doc = { o: { x: 1, y: [1, { z: null }] } };
    assert.deepEqual(applyJsonPatch(doc, [{ op: 'test', path: '/o', value: { y: [1, { z: null }], x: 1 } }]), doc);
    assert.throws(() => applyJsonPatch(doc, [{ op: 'test', path: '/o/x', value: '1' }]), /op #0 \(test/);
  });

  it('does not alias op values into the result', () => {
    const value = { k: 'v' };
    const out = applyJsonPatch({} as Record<string, unknown>, [{ op: 'add', path: '/a', value }]);
    value.k = 'changed';
    assert.deepEqual(out, { a: { k: 'v' } });
  });

  it('treats "__proto__" as a plain member', () => {
    const out = applyJsonPatch({} as Record<string, unknown>, [{ op: 'add', path: '/__proto__', value: { polluted: true } }]);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.deepEqual(Object.keys(out), ['__proto__']);
  });

  it('jsonEqual ignores undefined members', () => {
    assert.ok(jsonEqual({ a: 1, b: undefined }, { a: 1 }));
    assert.ok(!jsonEqual([1], { 0: 1 }));
  });
});
