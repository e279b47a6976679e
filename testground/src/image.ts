// The container image's command line and environment, read from the Dockerfile, so the benchmark and
// the shipping test run the controller exactly as the image does (the same node flags, the same glibc
// tunables), with no second copy of them.
import { readFileSync } from 'node:fs';

const DOCKERFILE = new URL('../../Dockerfile', import.meta.url);

export interface ImageCommand {
  /** What runs as PID 1 in front of node (tini and its `--`). */
  init: string[];
  /** The node flags between `node` and the script, e.g. --max-semi-space-size=16. */
  nodeFlags: string[];
  /** The script, relative to the image's WORKDIR: dist/src/cli.js. */
  script: string;
  /** CMD: the default subcommand. */
  cmd: string[];
  /** The final stage's ENV, e.g. the glibc malloc tunables. */
  env: Record<string, string>;
}

function jsonArray(dockerfile: string, instruction: 'ENTRYPOINT' | 'CMD'): string[] {
  const line = new RegExp(`^${instruction} (\\[.*\\])$`, 'm').exec(dockerfile)?.[1];
  if (line === undefined) throw new Error(`Dockerfile: no ${instruction} in exec (JSON array) form`);
  return JSON.parse(line) as string[];
}

export function imageCommand(dockerfile = readFileSync(DOCKERFILE, 'utf8')): ImageCommand {
  const entrypoint = jsonArray(dockerfile, 'ENTRYPOINT');
  const node = entrypoint.indexOf('node');
  const script = entrypoint.findIndex((arg, i) => i > node && !arg.startsWith('-'));
  if (node < 0 || script < 0) throw new Error(`Dockerfile: ENTRYPOINT ${JSON.stringify(entrypoint)} does not run node on a script`);
  return {
    init: entrypoint.slice(0, node),
    nodeFlags: entrypoint.slice(node + 1, script),
    script: entrypoint[script]!,
    cmd: jsonArray(dockerfile, 'CMD'),
    env: finalStageEnv(dockerfile),
  };
}

/** `ENV NAME=value ...` lines after the last FROM. Quoted or spaced values are refused, not guessed at. */
function finalStageEnv(dockerfile: string): Record<string, string> {
  const lines = dockerfile.split('\n');
  const lastFrom = lines.findLastIndex((l) => /^FROM\s/.test(l));
  const env: Record<string, string> = {};
  for (const line of lines.slice(lastFrom + 1)) {
    const m = /^ENV\s+(.*)$/.exec(line);
    if (!m) continue;
    for (const pair of m[1]!.trim().split(/\s+/)) {
      const kv = /^([A-Za-z_][A-Za-z0-9_]*)=([^"'\s\\]*)$/.exec(pair);
      if (!kv) throw new Error(`Dockerfile: "${line}" is not ENV NAME=value ... with plain values`);
      env[kv[1]!] = kv[2]!;
    }
  }
  return env;
}
