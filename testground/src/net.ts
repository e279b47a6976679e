// Loopback ports for the processes tests and benchmarks start beside the ground (controllers'
// metrics ports and the like). They come from a block below Linux's ephemeral range (32768-60999):
// a port the OS picks (listen on 0) lies inside that range, where any outbound connection can take
// it between the pick and the child's listen. The block is TESTGROUND_FREE_PORTS (default
// 31000-32767), which no ground's port block (TESTGROUND_PORT_BASE + 247..566) reaches by default.
import { createServer } from 'node:net';

export interface PortRange {
  first: number;
  last: number;
}

export const DEFAULT_FREE_PORTS: PortRange = { first: 31000, last: 32767 };

/** `31000-32767` → the range; unprivileged ports only. */
export function parsePortRange(text: string): PortRange {
  const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(text);
  const first = Number(m?.[1]);
  const last = Number(m?.[2]);
  if (!m || first < 1024 || last > 65535 || first > last)
    throw new Error(`TESTGROUND_FREE_PORTS: "${text}" is not a port range <first>-<last> within 1024-65535`);
  return { first, last };
}

export function freePortRange(env: NodeJS.ProcessEnv = process.env): PortRange {
  return env.TESTGROUND_FREE_PORTS ? parsePortRange(env.TESTGROUND_FREE_PORTS) : DEFAULT_FREE_PORTS;
}

/** The order ports are tried in: from `start` (an offset into the range) round to just before it. */
export function probeOrder(range: PortRange, start: number): number[] {
  const size = range.last - range.first + 1;
  const from = ((Math.floor(start) % size) + size) % size;
  return Array.from({ length: size }, (_, i) => range.first + ((from + i) % size));
}

/** Whether a listener could take `port` on every IPv4 address right now. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    // 0.0.0.0 clashes with a listener on any IPv4 address, loopback included, so a port held on
    // 127.0.0.1 or on all addresses is seen as taken either way.
    server.listen({ port, host: '0.0.0.0', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

// Ports this process handed out: the caller may not have bound one yet when it asks for the next.
const handedOut = new Set<number>();
let cursor: number | undefined;

export interface FreePortOptions {
  range?: PortRange;
  /** Where in the range the first search starts; random, so that processes searching at once rarely collide. */
  random?: () => number;
  isFree?: (port: number) => Promise<boolean>;
}

/** A TCP port below the ephemeral range that was free a moment ago, never the same twice in a process. */
export async function freePort(options: FreePortOptions = {}): Promise<number> {
  const range = options.range ?? freePortRange();
  const isFree = options.isFree ?? isPortFree;
  const size = range.last - range.first + 1;
  cursor ??= Math.floor((options.random ?? Math.random)() * size);
  for (const port of probeOrder(range, cursor)) {
    if (handedOut.has(port)) continue;
    if (await isFree(port)) {
      handedOut.add(port);
      cursor = port - range.first + 1;
      return port;
    }
  }
  throw new Error(`no free port on 127.0.0.1 in ${range.first}-${range.last} (TESTGROUND_FREE_PORTS)`);
}
