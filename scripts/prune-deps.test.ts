import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pruneDependencies, runtimeClosure } from './prune-deps.js';

// A lockfile where `a` needs `b` at two versions: the top-level one, and its own nested copy for `c`.
const PACKAGES = {
  '': { dependencies: { a: '1', big: '1' } },
  'node_modules/a': { dependencies: { c: '1', b: '2' }, optionalDependencies: { 'not-installed': '1' } },
  'node_modules/a/node_modules/b': { dependencies: { d: '1' } },
  'node_modules/b': {},
  'node_modules/c': { dependencies: { b: '1' }, peerDependencies: { '@s/p': '1' } },
  'node_modules/d': {},
  'node_modules/@s/p': {},
  'node_modules/@s/q': {},
  'node_modules/big': { dependencies: { '@t/huge': '1' } },
  'node_modules/@t/huge': {},
  'node_modules/typescript': { dev: true },
};

describe('prune-deps', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('keeps a package and what it needs, resolving nested copies first, as Node does', () => {
    const keep = runtimeClosure(PACKAGES, ['a']);
    assert.deepEqual([...keep].sort(), [
      'node_modules/@s/p',
      'node_modules/a',
      'node_modules/a/node_modules/b',
      'node_modules/b',
      'node_modules/c',
      'node_modules/d',
    ]);
  });

  it('names what the lockfile does not resolve', () => {
    assert.throws(() => runtimeClosure(PACKAGES, ['nope']), /nope is not in package-lock\.json/);
    assert.throws(() => runtimeClosure({ ...PACKAGES, 'node_modules/d': { dependencies: { ghost: '1' } } }, ['a']), /node_modules\/d needs ghost/);
  });

  it('removes every other installed package, the .bin links and the scopes left empty', () => {
    const dir = mkdtempSync(join(tmpdir(), 'prune-deps-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ lockfileVersion: 3, packages: PACKAGES }));
    for (const path of Object.keys(PACKAGES).filter((p) => p !== '' && p !== 'node_modules/typescript')) {
      mkdirSync(join(dir, path), { recursive: true });
      writeFileSync(join(dir, path, 'package.json'), '{}');
    }
    mkdirSync(join(dir, 'node_modules/.bin'));
    const removed = pruneDependencies(dir, ['a']);
    assert.deepEqual(removed.sort(), ['node_modules/@s/q', 'node_modules/@t/huge', 'node_modules/big']);
    assert.deepEqual(readdirSync(join(dir, 'node_modules')).sort(), ['@s', 'a', 'b', 'c', 'd']);
    assert.ok(existsSync(join(dir, 'node_modules/a/node_modules/b/package.json')));
    assert.ok(existsSync(join(dir, 'node_modules/@s/p/package.json')));
    // A root the lock file does not have stops it before anything is removed.
    assert.throws(() => pruneDependencies(dir, ['nope']), /nope is not in package-lock\.json/);
    assert.deepEqual(readdirSync(join(dir, 'node_modules')).sort(), ['@s', 'a', 'b', 'c', 'd']);
  });
});
