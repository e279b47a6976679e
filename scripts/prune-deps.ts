// Leaves in node_modules only the packages the bundle loads at run time and what they depend on,
// as package-lock.json resolves them. The image's deps stage runs it after `npm ci --omit=dev`:
//
//   node scripts/prune-deps.ts pino pino-pretty
//
// Why: the bundle (scripts/build.ts) holds the AWS SDK, client-node, undici and the rest, so the
// production node_modules beside it (about 113 MB) would be dead weight in every pull of the image,
// including the one that starts the controller on a new node during an interruption. Only the
// packages left out of the bundle (build.ts UNBUNDLED_PACKAGES) are loaded from node_modules.
//
// It runs on Node 24 without tsx (the deps stage has no dev dependency), so it imports nothing of
// the project and uses only syntax that Node's type stripping accepts.
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface LockEntry {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  dev?: boolean;
}

/**
 * Where Node would find `name` from the package installed at `from` (a lockfile path such as
 * `node_modules/a/node_modules/b`; '' is the project): its own node_modules first, then each
 * enclosing one up to the project's.
 */
function resolveFrom(packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = `${base === '' ? '' : `${base}/`}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (base === '') return undefined;
    const up = base.lastIndexOf('/node_modules/');
    base = up < 0 ? '' : base.slice(0, up);
  }
}

/** The lockfile paths of `roots` and everything they depend on (optional and peer dependencies included, when installed). */
export function runtimeClosure(packages: Record<string, LockEntry>, roots: readonly string[]): Set<string> {
  const keep = new Set<string>();
  const queue: string[] = [];
  for (const name of roots) {
    const path = resolveFrom(packages, '', name);
    if (path === undefined) throw new Error(`${name} is not in package-lock.json`);
    queue.push(path);
  }
  for (let path = queue.pop(); path !== undefined; path = queue.pop()) {
    if (keep.has(path)) continue;
    keep.add(path);
    const entry = packages[path] ?? {};
    const required = Object.keys(entry.dependencies ?? {});
    for (const name of required) {
      const found = resolveFrom(packages, path, name);
      if (found === undefined) throw new Error(`${path} needs ${name}, which package-lock.json does not resolve`);
      queue.push(found);
    }
    // Optional and peer dependencies count when installed; their absence is the package's to handle.
    for (const name of [...Object.keys(entry.optionalDependencies ?? {}), ...Object.keys(entry.peerDependencies ?? {})]) {
      const found = resolveFrom(packages, path, name);
      if (found !== undefined) queue.push(found);
    }
  }
  return keep;
}

/** Removes from projectDir/node_modules every installed package outside the closure of `roots`; returns what it removed. */
export function pruneDependencies(projectDir: string, roots: readonly string[]): string[] {
  const lock = JSON.parse(readFileSync(join(projectDir, 'package-lock.json'), 'utf8')) as { packages?: Record<string, LockEntry> };
  const packages = lock.packages ?? {};
  const keep = runtimeClosure(packages, roots);
  const removed: string[] = [];
  // Shortest paths first: a package removed takes its nested node_modules with it.
  const installed = Object.keys(packages)
    .filter((p) => p !== '' && existsSync(join(projectDir, p)))
    .sort((a, b) => a.length - b.length);
  for (const path of installed) {
    if (keep.has(path) || removed.some((r) => path.startsWith(`${r}/`))) continue;
    rmSync(join(projectDir, path), { recursive: true, force: true });
    removed.push(path);
  }
  // Links to removed packages' executables, npm's record of the old tree, and scopes left empty.
  const modules = join(projectDir, 'node_modules');
  rmSync(join(modules, '.bin'), { recursive: true, force: true });
  rmSync(join(modules, '.package-lock.json'), { force: true });
  for (const entry of readdirSync(modules)) {
    if (entry.startsWith('@') && readdirSync(join(modules, entry)).length === 0) rmdirSync(join(modules, entry));
  }
  return removed;
}

function invokedDirectly(): boolean {
  const invoked = process.argv[1];
  return invoked !== undefined && realpathSync(invoked) === realpathSync(fileURLToPath(import.meta.url));
}

if (invokedDirectly()) {
  const roots = process.argv.slice(2);
  if (roots.length === 0) {
    console.error('usage: node scripts/prune-deps.ts PACKAGE...');
    process.exitCode = 2;
  } else {
    // The closure is computed whole before anything is removed: a lock file that does not resolve
    // stops the build with nothing deleted.
    try {
      const removed = pruneDependencies(process.cwd(), roots);
      console.log(`kept ${roots.join(', ')} and their dependencies; removed ${removed.length} package(s)`);
    } catch (err) {
      console.error(`prune-deps: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    }
  }
}
