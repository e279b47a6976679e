import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { asciiComments, bundleController, ENTRY_POINT } from './build.js';

describe('the build (scripts/build.ts)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'build-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('bundles an entry and what it imports into one runnable file, replacing an earlier build there', async () => {
    // esbuild keeps a comment inside an object literal, as it kept undici's.
    writeFileSync(join(dir, 'dep.ts'), 'export const greeting: string = {\n  // it’s “bundled”\n  text: "bundled",\n}.text;\n');
    writeFileSync(
      join(dir, 'entry.ts'),
      'import { greeting } from "./dep.js";\nimport { createHash } from "node:crypto";\nconsole.log(greeting, createHash("sha256").digest("hex").length);\n',
    );
    const out = join(dir, 'dist');
    mkdirSync(join(out, 'src/controller'), { recursive: true });
    writeFileSync(join(out, 'src/controller/stale.js'), 'left by a file-per-module build\n');

    const entry = await bundleController(out, join(dir, 'entry.ts'));

    assert.equal(entry, join(out, ENTRY_POINT));
    assert.ok(!existsSync(join(out, 'src/controller/stale.js')), 'an earlier build in the output is removed');
    assert.equal(execFileSync(process.execPath, [entry], { encoding: 'utf8' }).trim(), 'bundled 64');
    const text = readFileSync(entry, 'utf8');
    assert.match(text, /it\?s \?bundled\?/, 'the comment is kept, its quotes made ASCII');
    assert.doesNotMatch(text, /[\u0080-\u{10ffff}]/u, 'the bundle is ASCII-only');
  });

  it('refuses a build that esbuild warned about, naming the warning', async () => {
    writeFileSync(join(dir, 'warned.ts'), 'export const settings = { retries: 1, retries: 2 };\n');
    await assert.rejects(
      bundleController(join(dir, 'warned-dist'), join(dir, 'warned.ts')),
      /the build had 1 warning\(s\): .*warned\.ts:1 Duplicate key "retries"/,
    );
  });
});

describe('asciiComments', () => {
  it('replaces non-ASCII characters in comments unit for unit, so columns hold', async () => {
    const code = 'const a = 1; // response’s type 😀\n/* “quoted” */ const b = "x";\n';
    const out = await asciiComments(code);
    assert.equal(out, 'const a = 1; // response?s type ??\n/* ?quoted? */ const b = "x";\n');
    assert.equal(out.length, code.length);
  });

  it('leaves ASCII code as it is', async () => {
    const code = 'export const s = "\\u2019";\n';
    assert.equal(await asciiComments(code), code);
  });

  it('refuses to change a non-ASCII character in code', async () => {
    await assert.rejects(asciiComments('export const s = "’";\n'), /non-ASCII characters outside comments/);
  });
});
