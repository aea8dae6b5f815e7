#!/usr/bin/env node
/**
 * Runs a stand-in as its own process for `make dev`:
 *   node packages/testkit/dist/src/cli.js es --port 9200
 *   node packages/testkit/dist/src/cli.js gateway --port 3102 --callback-url 'http://127.0.0.1:3111/api/sse/callback?secret=…'
 *   node packages/testkit/dist/src/cli.js keycloak --port 8080 --audience iotsupport-api --admin-client-id ID --admin-client-secret SECRET
 * The gateway also reads the real gateway's variables (PORT, CALLBACK_URL, HEARTBEAT_INTERVAL_SECONDS);
 * flags win. Prints one line when listening; SIGTERM/SIGINT stop it and exit 0.
 */
import { parseArgs } from 'node:util';
import { startElasticsearchStandin } from './es-standin/index.js';
import { startGatewayStandin } from './gateway-standin/index.js';
import { startKeycloakStandin } from './keycloak-standin.js';
import { startOidcIssuer } from './oidc-issuer.js';

const USAGE = `usage:
  cli.js es [--port 9200] [--host 127.0.0.1]
  cli.js gateway --callback-url URL [--port 3000] [--host 127.0.0.1] [--heartbeat-seconds 15]
  cli.js keycloak --admin-client-id ID --admin-client-secret SECRET [--port 8080] [--audience iotsupport-api]`;

/** Dev runs last for hours: keep only recent records in memory. */
const DEV_HISTORY_LIMIT = 1_000;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function toNumber(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer, got "${value}"`);
  return n;
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      'callback-url': { type: 'string' },
      'heartbeat-seconds': { type: 'string' },
      audience: { type: 'string', default: 'iotsupport-api' },
      'admin-client-id': { type: 'string' },
      'admin-client-secret': { type: 'string' },
    },
    strict: true,
  });

  let stop: () => Promise<void>;
  if (command === 'es') {
    const es = await startElasticsearchStandin({ port: toNumber('port', values.port, 9200), host: values.host, historyLimit: DEV_HISTORY_LIMIT });
    stop = () => es.stop();
    process.stdout.write(`elasticsearch stand-in listening on ${es.url}\n`);
  } else if (command === 'gateway') {
    const callbackUrl = values['callback-url'] ?? process.env.CALLBACK_URL;
    if (!callbackUrl) fail('gateway needs --callback-url (or CALLBACK_URL)');
    const gateway = await startGatewayStandin({
      callbackUrl,
      port: toNumber('port', values.port ?? process.env.PORT, 3000),
      host: values.host,
      heartbeatIntervalMs: toNumber('heartbeat-seconds', values['heartbeat-seconds'] ?? process.env.HEARTBEAT_INTERVAL_SECONDS, 15) * 1000,
      historyLimit: DEV_HISTORY_LIMIT,
    });
    stop = () => gateway.stop();
    process.stdout.write(`sse gateway stand-in listening on ${gateway.url}, callbacks to ${callbackUrl}\n`);
  } else if (command === 'keycloak') {
    const adminClientId = values['admin-client-id'];
    const adminClientSecret = values['admin-client-secret'];
    if (!adminClientId || !adminClientSecret) fail('keycloak needs --admin-client-id and --admin-client-secret');
    const issuer = await startOidcIssuer({ audience: values.audience, port: toNumber('port', values.port, 8080) });
    startKeycloakStandin(issuer, { adminClientId, adminClientSecret });
    stop = () => issuer.close();
    // No login pages: an operator token for the api's user routes, valid for 12 hours.
    const operatorToken = issuer.token({ sub: 'dev-operator', expiresIn: 12 * 3600, extra: { realm_access: { roles: ['iot-admin'] } } });
    process.stdout.write(`keycloak stand-in: issuer ${issuer.url} (audience ${issuer.audience})\noperator token (12 h): ${operatorToken}\n`);
  } else {
    fail(command ? `unknown stand-in "${command}"` : 'which stand-in?');
  }

  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`stop failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
