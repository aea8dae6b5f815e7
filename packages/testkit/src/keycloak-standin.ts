import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readRequestBody } from './http-body.js';
import type { OidcIssuer } from './oidc-issuer.js';

/**
 * A strict stand-in for the subset of Keycloak the api uses, served on the test issuer's own
 * origin (so OIDC_ISSUER_URL points at both, as with Keycloak) and signing through the issuer's
 * keys (same JWKS):
 * - `POST /realms/{realm}/protocol/openid-connect/token`, grant `client_credentials` (form body or
 *   HTTP Basic): the admin service account, and every device client with its current secret; a
 *   device token has `azp` = the client id and the audiences of its audience mappers.
 * - `/admin/realms/{realm}/clients` (GET `?clientId=`, POST → 201 + Location, 409 on a duplicate),
 *   `/clients/{id}` (GET, PUT with the representation — `secret` sets the secret —, DELETE),
 *   `/clients/{id}/client-secret` (GET; POST regenerates), `/clients/{id}/protocol-mappers/models` (POST).
 *   Bearer admin token required (401), `view-clients` to read and `manage-clients` to write (403).
 * Faults: `down` drops the connection, `hang` holds the request unanswered and unapplied.
 * Never used by production code.
 */
export type KeycloakFault = 'down' | 'hang' | undefined;
/** `admin`: the admin API and the service account's token requests; `all`: device token requests too. */
export type KeycloakFaultScope = 'admin' | 'all';

export interface StandinClient {
  id: string;
  clientId: string;
  secret: string;
  enabled: boolean;
  publicClient: boolean;
  serviceAccountsEnabled: boolean;
  protocolMappers: Array<{ id: string; name: string; protocol: string; protocolMapper: string; config: Record<string, string> }>;
  /** Every other field as last written. */
  attributes: Record<string, unknown>;
}

export interface KeycloakStandinOptions {
  adminClientId?: string;
  adminClientSecret?: string;
  /** realm-management roles of the admin service account (default manage-clients, view-clients). */
  adminRoles?: string[];
}

export interface KeycloakStandin {
  readonly realm: string;
  readonly adminClientId: string;
  readonly adminClientSecret: string;
  /** By client id. */
  readonly clients: ReadonlyMap<string, StandinClient>;
  /** Admin API requests served (not counting faults). */
  readonly adminRequests: number;
  /** Requests currently held by a `hang` fault. */
  readonly held: number;
  setFault(fault: KeycloakFault, scope?: KeycloakFaultScope): void;
  /** What a device does: the client credentials grant. `token` when the secret is accepted. */
  deviceToken(clientId: string, secret: string): Promise<{ status: number; token?: string; error?: string }>;
}

const INVALID_CLIENT = { error: 'unauthorized_client', error_description: 'Invalid client or Invalid client credentials' };

function json(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  if (body === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function representation(c: StandinClient): Record<string, unknown> {
  return {
    ...c.attributes,
    id: c.id,
    clientId: c.clientId,
    secret: c.secret,
    enabled: c.enabled,
    publicClient: c.publicClient,
    serviceAccountsEnabled: c.serviceAccountsEnabled,
    clientAuthenticatorType: 'client-secret',
    protocolMappers: c.protocolMappers,
  };
}

export function startKeycloakStandin(issuer: OidcIssuer, options: KeycloakStandinOptions = {}): KeycloakStandin {
  const realm = /\/realms\/([^/]+)$/.exec(issuer.url)?.[1];
  if (!realm) throw new Error(`issuer ${issuer.url} is not a realm URL`);
  const origin = new URL(issuer.url).origin;
  const adminClientId = options.adminClientId ?? 'iotsupport-admin';
  const adminClientSecret = options.adminClientSecret ?? randomBytes(16).toString('hex');
  const adminRoles = new Set(options.adminRoles ?? ['manage-clients', 'view-clients']);
  const clients = new Map<string, StandinClient>();
  const adminTokens = new Set<string>();
  let fault: KeycloakFault;
  let faultScope: KeycloakFaultScope = 'admin';
  let adminRequests = 0;
  let held = 0;

  const tokenPath = `/realms/${realm}/protocol/openid-connect/token`;
  const adminPrefix = `/admin/realms/${realm}/clients`;
  const byId = (id: string) => [...clients.values()].find((c) => c.id === id);

  /** Applies the fault, if any, to a request in its scope; true when the request was taken. */
  const faulted = (req: IncomingMessage, admin: boolean): boolean => {
    if (!fault || (!admin && faultScope === 'admin')) return false;
    if (fault === 'down') req.socket.destroy();
    else {
      held += 1;
      req.socket.once('close', () => (held -= 1));
    }
    return true;
  };

  const credentials = (req: IncomingMessage, form: URLSearchParams): { id?: string; secret?: string } => {
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (basic) {
      const [id, secret] = Buffer.from(basic, 'base64').toString().split(':');
      return { id: decodeURIComponent(id ?? ''), secret: decodeURIComponent(secret ?? '') };
    }
    return { id: form.get('client_id') ?? undefined, secret: form.get('client_secret') ?? undefined };
  };

  const token = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') return json(res, 405, { error: 'RESTEASY003650: No resource method found for GET, return 405 with Allow header' });
    if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return json(res, 415, { error: 'HTTP 415 Unsupported Media Type' });
    const form = new URLSearchParams((await readRequestBody(req)).toString());
    const { id, secret } = credentials(req, form);
    if (faulted(req, id === adminClientId)) return;
    if (form.get('grant_type') !== 'client_credentials') return json(res, 400, { error: 'unsupported_grant_type', error_description: 'Unsupported grant_type' });
    if (id === adminClientId) {
      if (secret !== adminClientSecret) return json(res, 401, INVALID_CLIENT);
      const access = issuer.token({ sub: `service-account-${adminClientId}`, azp: adminClientId, aud: 'realm-management', expiresIn: 300, extra: { resource_access: { 'realm-management': { roles: [...adminRoles] } } } });
      adminTokens.add(access);
      return json(res, 200, { access_token: access, expires_in: 300, refresh_expires_in: 0, token_type: 'Bearer', 'not-before-policy': 0, scope: 'profile email' });
    }
    const client = id ? clients.get(id) : undefined;
    if (!client?.enabled || client.publicClient || secret !== client.secret) return json(res, 401, INVALID_CLIENT);
    if (!client.serviceAccountsEnabled) return json(res, 400, { error: 'unauthorized_client', error_description: 'Client not enabled to retrieve service account' });
    const audiences = client.protocolMappers.filter((m) => m.protocolMapper === 'oidc-audience-mapper' && m.config['access.token.claim'] === 'true').map((m) => m.config['included.custom.audience']!);
    const access = issuer.token({
      sub: `service-account-${client.clientId}`,
      azp: client.clientId,
      expiresIn: 300,
      // No audience mapper, no `aud`: the api must refuse such a token, as it would Keycloak's.
      extra: { aud: audiences.length === 0 ? undefined : audiences.length === 1 ? audiences[0] : audiences, typ: 'Bearer', clientId: client.clientId },
    });
    return json(res, 200, { access_token: access, expires_in: 300, refresh_expires_in: 0, token_type: 'Bearer', 'not-before-policy': 0, scope: 'profile email' });
  };

  const readJson = async (req: IncomingMessage): Promise<Record<string, unknown> | undefined> => {
    if (!String(req.headers['content-type']).startsWith('application/json')) return undefined;
    try {
      const value = JSON.parse((await readRequestBody(req)).toString()) as unknown;
      return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };

  const mapper = (m: Record<string, unknown>) => ({
    id: randomUUID(),
    name: String(m.name),
    protocol: String(m.protocol ?? 'openid-connect'),
    protocolMapper: String(m.protocolMapper),
    config: { ...(m.config as Record<string, string>) },
  });

  const admin = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    if (faulted(req, true)) return;
    adminRequests += 1;
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || !adminTokens.has(bearer)) return json(res, 401, { error: 'HTTP 401 Unauthorized' });
    const write = req.method !== 'GET';
    if (!adminRoles.has(write ? 'manage-clients' : 'view-clients')) return json(res, 403, { error: 'HTTP 403 Forbidden' });
    const rest = path.slice(adminPrefix.length).split('/').filter(Boolean).map(decodeURIComponent);
    const query = new URL(req.url ?? '/', origin).searchParams;

    if (rest.length === 0 && req.method === 'GET') {
      const wanted = query.get('clientId');
      const list = [...clients.values()].filter((c) => wanted === null || c.clientId === wanted);
      return json(res, 200, list.map(representation));
    }
    if (rest.length === 0 && req.method === 'POST') {
      const body = await readJson(req);
      if (!body || typeof body.clientId !== 'string' || body.clientId === '') return json(res, 400, { errorMessage: 'Invalid client representation' });
      if (clients.has(body.clientId)) return json(res, 409, { errorMessage: `Client ${body.clientId} already exists` });
      const { id: _id, clientId, secret, enabled, publicClient, serviceAccountsEnabled, protocolMappers, ...attributes } = body;
      const client: StandinClient = {
        id: randomUUID(),
        clientId,
        secret: typeof secret === 'string' ? secret : randomBytes(24).toString('base64url'),
        enabled: enabled !== false,
        publicClient: publicClient === true,
        serviceAccountsEnabled: serviceAccountsEnabled === true,
        protocolMappers: Array.isArray(protocolMappers) ? (protocolMappers as Record<string, unknown>[]).map(mapper) : [],
        attributes,
      };
      clients.set(clientId, client);
      return json(res, 201, undefined, { location: `${origin}${adminPrefix}/${client.id}` });
    }
    const client = rest[0] ? byId(rest[0]) : undefined;
    if (!client) return json(res, 404, { error: 'Could not find client' });
    const sub = rest.slice(1).join('/');
    if (sub === '' && req.method === 'GET') return json(res, 200, representation(client));
    if (sub === '' && req.method === 'DELETE') {
      clients.delete(client.clientId);
      return json(res, 204);
    }
    if (sub === '' && req.method === 'PUT') {
      const body = await readJson(req);
      if (!body) return json(res, 400, { errorMessage: 'Invalid client representation' });
      if (body.id !== undefined && body.id !== client.id) return json(res, 400, { errorMessage: 'Client id does not match' });
      if (typeof body.clientId === 'string' && body.clientId !== client.clientId) {
        if (clients.has(body.clientId)) return json(res, 409, { errorMessage: `Client ${body.clientId} already exists` });
        clients.delete(client.clientId);
        client.clientId = body.clientId;
        clients.set(client.clientId, client);
      }
      // Keycloak ignores protocolMappers on update: they have their own endpoint.
      const { id: _id, clientId: _clientId, secret, enabled, publicClient, serviceAccountsEnabled, protocolMappers: _m, ...attributes } = body;
      if (typeof secret === 'string') client.secret = secret;
      if (typeof enabled === 'boolean') client.enabled = enabled;
      if (typeof publicClient === 'boolean') client.publicClient = publicClient;
      if (typeof serviceAccountsEnabled === 'boolean') client.serviceAccountsEnabled = serviceAccountsEnabled;
      Object.assign(client.attributes, attributes);
      return json(res, 204);
    }
    if (sub === 'client-secret' && (req.method === 'GET' || req.method === 'POST')) {
      if (req.method === 'POST') client.secret = randomBytes(24).toString('base64url');
      return json(res, 200, { type: 'secret', value: client.secret });
    }
    if (sub === 'protocol-mappers/models' && req.method === 'POST') {
      const body = await readJson(req);
      if (!body || typeof body.name !== 'string' || typeof body.protocolMapper !== 'string') return json(res, 400, { errorMessage: 'Invalid protocol mapper' });
      if (client.protocolMappers.some((m) => m.name === body.name)) return json(res, 409, { errorMessage: `Protocol mapper exists with same name` });
      const created = mapper(body);
      client.protocolMappers.push(created);
      return json(res, 201, undefined, { location: `${origin}${adminPrefix}/${client.id}/protocol-mappers/models/${created.id}` });
    }
    return json(res, 405, { error: 'HTTP 405 Method Not Allowed' });
  };

  issuer.mount((req, res, path) => {
    const handle = path === tokenPath ? token(req, res) : path === adminPrefix || path.startsWith(`${adminPrefix}/`) ? admin(req, res, path) : undefined;
    if (!handle) return false;
    handle.catch((err: unknown) => json(res, 500, { error: String(err) }));
    return true;
  });

  return {
    realm,
    adminClientId,
    adminClientSecret,
    clients,
    get adminRequests() {
      return adminRequests;
    },
    get held() {
      return held;
    },
    setFault(next, scope = 'admin') {
      fault = next;
      faultScope = scope;
    },
    async deviceToken(clientId, secret) {
      const res = await fetch(`${origin}${tokenPath}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }).toString(),
      });
      const body = (await res.json()) as { access_token?: string; error?: string };
      return { status: res.status, token: body.access_token, error: body.error };
    },
  };
}
