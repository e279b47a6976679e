// What the controller's memory comes to when the collector has just run: the bench starts the
// controller with the inspector on a loopback port and, at a chosen moment, asks V8 for full
// collections over the DevTools protocol (HeapProfiler.collectGarbage, the same collection a heap
// snapshot makes, without writing one). RSS read right after is the floor that no GC policy can go
// below at that moment: what is left is live objects, code, native memory and the binary's pages.

/** The node flag that opens the inspector on `port`, loopback only. */
export const inspectorFlag = (port: number) => `--inspect=127.0.0.1:${port}`;

/** Two full collections in the process whose inspector listens on `inspectorPort`; resolves once both are done. */
export async function collectGarbage(inspectorPort: number): Promise<void> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`, { signal: AbortSignal.timeout(5000) })).json()) as {
    webSocketDebuggerUrl?: string;
  }[];
  const url = targets[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`the inspector on 127.0.0.1:${inspectorPort} lists no target`);
  const socket = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener('open', () => resolve(), { once: true });
    socket.addEventListener('error', () => reject(new Error(`cannot open the inspector's WebSocket ${url}`)), { once: true });
  });
  let nextId = 0;
  const call = (method: string) =>
    new Promise<void>((resolve, reject) => {
      const id = ++nextId;
      const timer = setTimeout(() => reject(new Error(`${method}: no answer from the inspector in 30 s`)), 30_000);
      const onMessage = (e: MessageEvent) => {
        const reply = JSON.parse(String(e.data)) as { id?: number; error?: { message: string } };
        if (reply.id !== id) return;
        clearTimeout(timer);
        socket.removeEventListener('message', onMessage);
        if (reply.error) reject(new Error(`${method}: ${reply.error.message}`));
        else resolve();
      };
      socket.addEventListener('message', onMessage);
      socket.send(JSON.stringify({ id, method }));
    });
  try {
    // Two: the first can leave objects that only a second pass finds unreachable (weak references, finalizers).
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
  } finally {
    socket.close();
  }
}
