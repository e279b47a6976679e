// The folder layering holds: no folder imports one that imports it back, and no file either. The
// check itself is proven to fail on a cycle, so a broken configuration cannot pass silently.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const PROJECT_DIR = fileURLToPath(new URL('..', import.meta.url));
const DEPCRUISE = join(PROJECT_DIR, 'node_modules', '.bin', 'depcruise');
const CONFIG = join(PROJECT_DIR, '.dependency-cruiser.json');

function cruise(cwd: string, ...paths: string[]): { status: number | null; output: string } {
  const run = spawnSync(DEPCRUISE, ['--config', CONFIG, '--output-type', 'err', ...paths], { cwd, encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('import structure', () => {
  it('has no import cycle between folders or files', () => {
    const { status, output } = cruise(PROJECT_DIR, 'src', 'testground/src', 'bench', 'test', 'demo');
    assert.equal(status, 0, output);
    assert.match(output, /no dependency violations found/);
  });

  it('the check fails when two folders import each other', () => {
    const dir = mkdtempSync(join(tmpdir(), 'import-cycle-'));
    try {
      mkdirSync(join(dir, 'src', 'controller'), { recursive: true });
      mkdirSync(join(dir, 'src', 'recovery'), { recursive: true });
      writeFileSync(join(dir, 'src', 'controller', 'flow.ts'), "import { loop } from '../recovery/loop.js';\nexport const flow = () => loop;\n");
      writeFileSync(join(dir, 'src', 'recovery', 'loop.ts'), 'export const loop = 1;\n');
      writeFileSync(join(dir, 'src', 'recovery', 'uses-flow.ts'), "import { flow } from '../controller/flow.js';\nexport const usesFlow = flow;\n");
      writeFileSync(join(dir, 'tsconfig.json'), '{ "compilerOptions": { "module": "nodenext", "moduleResolution": "nodenext" } }\n');
      const { status, output } = cruise(dir, 'src');
      assert.notEqual(status, 0, output);
      assert.match(output, /no-folder-cycles: src\/controller/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
