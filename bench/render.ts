// Re-renders a results file (Markdown and README fragment) from its JSON, without measuring
// anything again: `node --import tsx bench/render.ts bench/results/<stamp>.json`. For when the
// report's wording or layout changed after a run.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { PROJECT_DIR } from './lib/controller-process.js';
import { renderReadmeFragment, renderResults, type BenchResults } from './lib/report.js';

const jsonPath = process.argv[2];
if (!jsonPath) {
  console.error('usage: node --import tsx bench/render.ts bench/results/<stamp>.json [README fragment path]');
  process.exit(2);
}
const results = JSON.parse(readFileSync(jsonPath, 'utf8')) as BenchResults;
const mdPath = join(dirname(jsonPath), `${results.stamp}.md`);
writeFileSync(mdPath, renderResults(results));
const fragment = renderReadmeFragment(results, relative(PROJECT_DIR, mdPath));
writeFileSync(join(dirname(jsonPath), `${results.stamp}-readme-fragment.md`), fragment);
if (process.argv[3]) writeFileSync(process.argv[3], fragment);
console.log(`rendered ${relative(PROJECT_DIR, mdPath)}`);
