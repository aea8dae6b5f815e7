import { createServer } from 'node:http';
import { listenOnLoopback } from '@iotsupport/testkit';

/**
 * The issuer's JWKS behind a switch, to count the fetches an outage costs (a closed issuer counts
 * nothing). Up, it relays the issuer's JWKS; down, it takes each request and never answers, as an
 * issuer that has gone away behind a load balancer does: the verifier's fetch timeout ends it.
 */
export interface JwksGate {
  readonly url: string;
  /** JWKS requests that reached the gate, answered or not. */
  readonly requests: number;
  up: boolean;
}

export async function startJwksGate(t: { teardown(fn: () => unknown): void }, jwksUrl: string): Promise<JwksGate> {
  let requests = 0;
  const server = createServer((_req, res) => {
    requests += 1;
    if (!gate.up) return; // never answered
    fetch(jwksUrl)
      .then(async (upstream) => {
        res.writeHead(upstream.status, { 'content-type': 'application/json' });
        res.end(await upstream.text());
      })
      .catch(() => res.destroy());
  });
  const url = `http://127.0.0.1:${await listenOnLoopback(server)}/certs`;
  const gate: JwksGate = {
    url,
    get requests() {
      return requests;
    },
    up: true,
  };
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // the requests left hanging while down
      }),
  );
  return gate;
}
