// The controller's build, as the image ships it: src/cli.ts and everything it imports in one ES module,
// dist/src/cli.js, with a linked source map beside it.
//
// Why one bundle and not tsc's file per module: loading client-node 2 module by module (its generated
// API and model files, about a thousand) held 145-148 MiB at start against 108-110 MiB for the same
// code as one file, and the controller's peak at 1000 Deployments was 12 MiB lower on the means of
// six pairs (bench/results/2026-12-02-bundle.md).
// The types are still checked by `tsc -p tsconfig.build.json` first (npm run build).
//
// Usage: node --import tsx scripts/build.ts [OUT_DIR]   (default: dist)
import { realpathSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

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
export async function bundleController(outDir: string, entryPoint = 'src/cli.ts'): Promise<string> {
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
  return outfile;
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
