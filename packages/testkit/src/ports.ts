import { createServer } from 'node:net';

/**
 * Ports for processes a test starts. Best: the child listens on port 0 and reports its address
 * (`listeningUrls`), so no other process can take the port in between. Where a child cannot report
 * it, `freePort()` gives a port free right now; it is closed again before the child binds it, so a
 * parallel test can take it meanwhile: retry the start when the child's output `isAddressInUse`.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** True when a child's output says a port it was given was taken meanwhile. */
export function isAddressInUse(output: string): boolean {
  return output.includes('EADDRINUSE');
}

/**
 * The addresses a fastify app started with port 0 logged (`Server listening at http://…`, level
 * info), keyed by the log line's `listener` field (`default` when it has none).
 */
export function listeningUrls(output: string): Record<string, string> {
  const urls: Record<string, string> = {};
  for (const line of output.split('\n')) {
    const url = /"msg":"Server listening at (http:\/\/[^"]+)"/.exec(line)?.[1];
    if (url) urls[/"listener":"([^"]+)"/.exec(line)?.[1] ?? 'default'] = url;
  }
  return urls;
}

/** Starts a test's own HTTP (or net) server on a free loopback port and returns that port. */
export async function listenOnLoopback(server: { listen(port: number, host: string, cb: () => void): unknown; address(): unknown }): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}
