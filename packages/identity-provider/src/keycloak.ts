import { IdentityProviderRejectedError, IdentityProviderUnavailableError, type IdentityProvider } from './identity-provider.js';
import { keycloakUrls } from './keycloak-urls.js';

export interface KeycloakOptions {
  /** OIDC_ISSUER_URL, `https://host[/prefix]/realms/<realm>`: the realm of the device clients. */
  issuerUrl: string;
  /** The service account that manages device clients (realm-management: manage-clients, view-clients). */
  adminClientId: string;
  adminClientSecret: string;
  /** OIDC_AUDIENCE: put into every device token by an audience mapper, so the api accepts it. */
  audience: string;
  /** Per HTTP request (default 5000 ms); past it the outcome is unknown and the caller retries. */
  timeoutMs?: number;
}

/** The part of Keycloak's ClientRepresentation we read and write. */
interface ClientRepresentation {
  id?: string;
  clientId: string;
  secret?: string;
  protocolMappers?: ProtocolMapper[];
  [field: string]: unknown;
}

interface ProtocolMapper {
  name: string;
  protocol: string;
  protocolMapper: string;
  config: Record<string, string>;
}

/** A device client as the api needs it: confidential, client credentials grant only. */
const DEVICE_CLIENT_SETTINGS = {
  protocol: 'openid-connect',
  enabled: true,
  publicClient: false,
  bearerOnly: false,
  clientAuthenticatorType: 'client-secret',
  serviceAccountsEnabled: true,
  standardFlowEnabled: false,
  implicitFlowEnabled: false,
  directAccessGrantsEnabled: false,
} as const;

const AUDIENCE_MAPPER = 'oidc-audience-mapper';

function audienceMapper(audience: string): ProtocolMapper {
  return {
    name: `audience ${audience}`,
    protocol: 'openid-connect',
    protocolMapper: AUDIENCE_MAPPER,
    config: { 'included.custom.audience': audience, 'access.token.claim': 'true', 'id.token.claim': 'false', 'introspection.token.claim': 'true' },
  };
}

function hasAudienceMapper(client: ClientRepresentation, audience: string): boolean {
  return (client.protocolMappers ?? []).some((m) => m.protocolMapper === AUDIENCE_MAPPER && m.config['included.custom.audience'] === audience);
}

/**
 * The identity provider over Keycloak's admin REST API (fetch, one timeout per request). The
 * admin token comes from the client credentials grant of a service account and is reused until
 * shortly before it expires (or until the admin API refuses it once).
 */
export class KeycloakIdentityProvider implements IdentityProvider {
  private readonly urls;
  private readonly timeoutMs: number;
  private adminToken: { value: string; renewAt: number } | undefined;

  constructor(private readonly opts: KeycloakOptions) {
    this.urls = keycloakUrls(opts.issuerUrl);
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }

  async upsertDeviceClient(clientId: string, secret?: string): Promise<void> {
    let client = await this.findClient(clientId);
    if (!client) {
      const created = await this.admin('POST', '/clients', {
        clientId,
        ...DEVICE_CLIENT_SETTINGS,
        ...(secret === undefined ? {} : { secret }),
        protocolMappers: [audienceMapper(this.opts.audience)],
      });
      if (created.status !== 409) return; // 409: created concurrently (another pod's retry): update it below
      client = await this.findClient(clientId);
      if (!client) throw new IdentityProviderUnavailableError(`client ${clientId} reported as existing but not found`);
    }
    const path = `/clients/${encodeURIComponent(client.id!)}`;
    // A client made before this service (or by hand) gets the device settings too.
    await this.admin('PUT', path, { ...client, ...DEVICE_CLIENT_SETTINGS, ...(secret === undefined ? {} : { secret }) });
    if (!hasAudienceMapper(client, this.opts.audience)) {
      await this.admin('POST', `${path}/protocol-mappers/models`, audienceMapper(this.opts.audience), [409]);
    }
  }

  async deleteDeviceClient(clientId: string): Promise<void> {
    const client = await this.findClient(clientId);
    if (client) await this.admin('DELETE', `/clients/${encodeURIComponent(client.id!)}`, undefined, [404]);
  }

  async getClientSecret(clientId: string): Promise<string | undefined> {
    const client = await this.findClient(clientId);
    if (!client) return undefined;
    const res = await this.admin('GET', `/clients/${encodeURIComponent(client.id!)}/client-secret`);
    return ((await res.json()) as { value?: string }).value;
  }

  private async findClient(clientId: string): Promise<ClientRepresentation | undefined> {
    const res = await this.admin('GET', `/clients?clientId=${encodeURIComponent(clientId)}&search=false`);
    const found = (await res.json()) as ClientRepresentation[];
    return found.find((c) => c.clientId === clientId);
  }

  /** One admin API call; `tolerated` statuses are returned instead of thrown. Renews the token once on a 401. */
  private async admin(method: string, path: string, body?: unknown, tolerated: number[] = [409]): Promise<Response> {
    for (let attempt = 0; ; attempt += 1) {
      const token = await this.token();
      const res = await this.send(`${this.urls.adminRealmUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      if (res.status === 401 && attempt === 0) {
        this.adminToken = undefined;
        await res.body?.cancel();
        continue;
      }
      if (res.ok || tolerated.includes(res.status)) return res;
      await res.body?.cancel();
      throw this.failure(res.status, `${method} admin ${path.split('?')[0]}`);
    }
  }

  private async token(): Promise<string> {
    if (this.adminToken && Date.now() < this.adminToken.renewAt) return this.adminToken.value;
    const res = await this.send(this.urls.tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: this.opts.adminClientId, client_secret: this.opts.adminClientSecret }).toString(),
    });
    if (!res.ok) {
      await res.body?.cancel();
      // Refused credentials are a deployment problem, but retrying is all the caller can do either way.
      throw new IdentityProviderUnavailableError(`the identity provider refused the service account's token request (${res.status})`);
    }
    const json = (await res.json()) as { access_token: string; expires_in?: number };
    const lifetimeMs = (json.expires_in ?? 60) * 1000;
    this.adminToken = { value: json.access_token, renewAt: Date.now() + Math.max(lifetimeMs - 30_000, lifetimeMs / 2) };
    return json.access_token;
  }

  private async send(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new IdentityProviderUnavailableError(`the identity provider did not answer (${(err as Error).name})`, { cause: err });
    }
  }

  private failure(status: number, what: string): Error {
    if (status >= 500 || status === 401) return new IdentityProviderUnavailableError(`${what}: ${status}`);
    return new IdentityProviderRejectedError(`${what}: ${status}`, status);
  }
}
