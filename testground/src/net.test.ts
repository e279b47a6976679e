import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { describe, it } from 'node:test';
import { DEFAULT_FREE_PORTS, freePort, freePortRange, isPortFree, parsePortRange, probeOrder } from './net.js';

const EPHEMERAL = { first: 32768, last: 60999 };

describe('free ports', () => {
  it('hands out ports below the ephemeral range by default', () => {
    assert.ok(DEFAULT_FREE_PORTS.last < EPHEMERAL.first);
    assert.deepEqual(freePortRange({}), DEFAULT_FREE_PORTS);
    assert.deepEqual(freePortRange({ TESTGROUND_FREE_PORTS: '20000-20099' }), { first: 20000, last: 20099 });
  });

  it('reads a range and refuses what is none', () => {
    assert.deepEqual(parsePortRange(' 31000 - 31010 '), { first: 31000, last: 31010 });
    for (const bad of ['', '31000', '31010-31000', '80-90', '60000-70000', 'a-b']) assert.throws(() => parsePortRange(bad), /TESTGROUND_FREE_PORTS/, bad);
  });

  it('tries every port of the range once, from the start offset round', () => {
    assert.deepEqual(probeOrder({ first: 100, last: 104 }, 3), [103, 104, 100, 101, 102]);
    assert.deepEqual(probeOrder({ first: 100, last: 104 }, 12), [102, 103, 104, 100, 101]);
  });

  it('skips taken ports, never hands out one twice, and says when the range is used up', async () => {
    const taken = new Set([31001]);
    const range = { first: 31000, last: 31003 };
    const options = { range, random: () => 0, isFree: async (p: number) => !taken.has(p) };
    // The cursor is per process: whatever an earlier test left, the four ports come out once each.
    const got = [await freePort(options), await freePort(options), await freePort(options)];
    assert.deepEqual([...got].sort(), [31000, 31002, 31003]);
    await assert.rejects(freePort(options), /no free port on 127.0.0.1 in 31000-31003/);
  });

  it('sees a port held by a listener on loopback as taken', async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      assert.equal(await isPortFree(port), false);
    } finally {
      await new Promise((r) => server.close(r));
    }
    assert.equal(await isPortFree(port), true);
  });
});
