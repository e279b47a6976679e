// The README quotes log lines in its troubleshooting table so that people can search their logs for
// them; a quote the code never prints sends them looking for nothing. Convention: the table has a
// column headed "log line", whose cells hold only log messages, each in backticks, exactly as the
// `message` field has them. Each must be a whole string literal in src/ (tests excluded), so that a
// quote of part of a message, or of a message that has since changed, fails.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = new URL('..', import.meta.url).pathname;

/** The cells of the "log line" column of the table in the README's "## Troubleshooting" section. */
export function quotedLogLines(readme: string): string[] {
  const start = readme.indexOf('\n## Troubleshooting\n');
  assert.ok(start >= 0, 'the README has a Troubleshooting section');
  const end = readme.indexOf('\n## ', start + 1);
  const rows = readme
    .slice(start, end < 0 ? undefined : end)
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) =>
      line
        .split(/(?<!\\)\|/)
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
  const [header = [], , ...body] = rows;
  const column = header.indexOf('log line');
  assert.ok(column >= 0, `the troubleshooting table has a "log line" column (headers: ${header.join(', ')})`);
  return body.flatMap((cells) => [...(cells[column] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!));
}

/** The non-test sources under src/, concatenated. */
function sources(): string {
  return readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.includes('test-support') && !f.includes('test-fixtures'))
    .map((file) => readFileSync(join(ROOT, 'src', file), 'utf8'))
    .join('\n');
}

/** Whether the text is a whole string literal somewhere in the code: quoted, with nothing added. */
function isLiteralIn(code: string, text: string): boolean {
  return ["'", '"', '`'].some((quote) => code.includes(`${quote}${text}${quote}`));
}

describe('README troubleshooting', () => {
  it('quotes only log lines that src/ prints', () => {
    const quoted = quotedLogLines(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    assert.ok(quoted.length >= 5, `found ${quoted.length} quoted log lines; the convention must have been broken`);
    const code = sources();
    const missing = quoted.filter((line) => !isLiteralIn(code, line));
    assert.deepEqual(missing, [], 'log lines quoted in the README that no log call in src/ prints');
  });

  it('reads the convention: backticked text in the log line column only', () => {
    const readme = [
      '## Troubleshooting',
      '',
      '| symptom | log line | look at |',
      '|---|---|---|',
      '| `a` | `one`, `two` | `three` |',
      '| b | | c |',
      '',
      '## Next',
      '| x | log line |',
      '| `no` | `nope` |',
    ].join('\n');
    assert.deepEqual(quotedLogLines(`\n${readme}`), ['one', 'two']);
  });
});

describe('README Kubernetes Events', () => {
  it('lists exactly the Event reasons the controller records', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const start = readme.indexOf('\n### Kubernetes Events\n');
    assert.ok(start >= 0, 'the README has a Kubernetes Events section');
    const section = readme.slice(start + 1, readme.indexOf('\n#', start + 1));
    const listed = [...section.matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1]!).sort();
    // recorder.record(target, 'Normal' | 'Warning', reason, message): the reason argument follows the
    // type, a literal or a choice of literals.
    const reasonArguments = [...sources().matchAll(/'(?:Normal|Warning)',\s*([^,]+),/g)].map((m) => m[1]!);
    const recorded = [...new Set(reasonArguments.flatMap((arg) => [...arg.matchAll(/'([A-Z][A-Za-z]+)'/g)].map((m) => m[1]!)))].sort();
    assert.ok(recorded.length >= 15, `found ${recorded.length} reasons in src/; the pattern must have stopped matching`);
    assert.deepEqual(listed, recorded);
  });
});
