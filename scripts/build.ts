// The controller's build, as the image ships it: src/cli.ts and everything it imports in one ES module,
// dist/src/cli.js, with a linked source map beside it.
//
// Why one bundle and not tsc's file per module: loading client-node 2 module by module (its generated
// API and model files, about a thousand) held 145-148 MiB at start against 108-110 MiB for the same
// code as one file, and the controller's peak at 1000 Deployments was 12 MiB lower on the means of
// six pairs (bench/results/2026-12-02-bundle.md).
// The types are still checked by `tsc -p tsconfig.build.json` first (npm run build).
//
// Why the bundle is made ASCII-only: esbuild escapes every non-ASCII character in code but keeps
// comments as written, and a few curly quotes in undici's comments made V8 hold the whole 9 MB source
// as a two-byte string. ASCII-only, it is held one byte a character: 8.8 MiB less once loaded
// (`make bench-load`), with lines and names left as they were.
//
// Usage: node --import tsx scripts/build.ts [OUT_DIR]   (default: dist)
import { readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, transform } from 'esbuild';

const PROJECT_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Left to node_modules at run time. pino's transports (the coloured console format) start a worker
 * thread that loads pino's own files and pino-pretty by name, which a bundle cannot provide.
 */
export const UNBUNDLED_PACKAGES = ['pino', 'pino-pretty'] as const;

/** Where the entry point lands under the output directory; the image, `bin` and the bench run this. */
export const ENTRY_POINT = 'src/cli.js';

/**
 * Bundles the controller into OUT_DIR/src/cli.js. Refuses to produce a build that esbuild warned
 * about: a warning there (an import it could not resolve, a require it could not follow) is a
 * failure at run time, on the first code path that reaches it.
 */
export async function bundleController(outDir: string, entryPoint = 'src/cli.ts', { ascii = true }: { ascii?: boolean } = {}): Promise<string> {
  const outfile = join(outDir, ENTRY_POINT);
  // A tsc build left here (file per module) would sit beside the bundle and could be run by mistake.
  rmSync(dirname(outfile), { recursive: true, force: true });
  const result = await build({
    absWorkingDir: PROJECT_DIR,
    entryPoints: [entryPoint],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    external: [...UNBUNDLED_PACKAGES],
    // Some dependencies are CommonJS and require Node's built-in modules; an ES module has no require.
    banner: { js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);" },
    // Not minified: stack traces and heap snapshots from production keep readable names and lines.
    sourcemap: 'linked',
    legalComments: 'linked',
    logLevel: 'silent',
  });
  if (result.warnings.length > 0) {
    throw new Error(
      `the build had ${result.warnings.length} warning(s): ${result.warnings.map((w) => `${w.location?.file ?? ''}:${w.location?.line ?? ''} ${w.text}`).join('; ')}`,
    );
  }
  if (ascii) {
    const code = readFileSync(outfile, 'utf8');
    const asciiOnly = await asciiComments(code);
    if (asciiOnly !== code) writeFileSync(outfile, asciiOnly);
  }
  return outfile;
}

/**
 * The code with every non-ASCII character replaced by as many `?` as it takes UTF-16 units, so the
 * source map's columns still hold. Proven to touch comments only: without comments and whitespace
 * (esbuild's minifyWhitespace), the code before and after must be the same text, else it throws.
 */
export async function asciiComments(code: string): Promise<string> {
  const ascii = code.replace(/[\u0080-\u{10ffff}]/gu, (ch) => '?'.repeat(ch.length));
  if (ascii === code) return code;
  const bare = async (text: string) => (await transform(text, { loader: 'js', format: 'esm', minifyWhitespace: true, logLevel: 'silent' })).code;
  if ((await bare(ascii)) !== (await bare(code))) {
    throw new Error('the bundle holds non-ASCII characters outside comments, which making it ASCII-only would change; set esbuild to escape them');
  }
  return ascii;
}

function invokedDirectly(): boolean {
  const invoked = process.argv[1];
  return invoked !== undefined && realpathSync(invoked) === realpathSync(fileURLToPath(import.meta.url));
}

if (invokedDirectly()) {
  const outDir = resolve(process.argv[2] ?? join(PROJECT_DIR, 'dist'));
  bundleController(outDir).then(
    (entry) => console.log(`built ${entry}`),
    (err: unknown) => {
      console.error(`build failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}
