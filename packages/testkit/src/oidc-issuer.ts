import { createHmac, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSigner, type Algorithm } from 'fast-jwt';
import { listenOnLoopback } from './ports.js';

/**
 * A local OIDC issuer for tests (node:http): discovery document + JWKS, key rotation, and helpers
 * that mint every kind of token the verifier must accept or refuse. Never used by production code.
 */
export type IssuerKeyAlg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';

interface IssuerKey {
  kid: string;
  alg: IssuerKeyAlg;
  privateKey: KeyObject;
  publicKey: KeyObject;
  published: boolean;
}

export interface TokenClaims {
  sub?: string;
  aud?: string | string[];
  iss?: string;
  azp?: string;
  /** Seconds from now (negative = already expired). Default 3600. */
  expiresIn?: number;
  /** Extra/overriding claims, raw. */
  extra?: Record<string, unknown>;
}

export interface OidcIssuer {
  /** The issuer identifier (OIDC_ISSUER_URL); it has a path, like a Keycloak realm. */
  readonly url: string;
  readonly jwksUrl: string;
  readonly audience: string;
  /** How many times each document was fetched. */
  readonly requests: { discovery: number; jwks: number };
  /** kid of the key that signs by default. */
  readonly currentKid: string;
  /** A valid token for `sub` (or per claims) signed with `kid` (default: current key). */
  token(claims?: TokenClaims, kid?: string): string;
  expiredToken(sub?: string): string;
  wrongAudienceToken(sub?: string): string;
  wrongIssuerToken(sub?: string): string;
  /** Correct header and claims, a published kid, signed with a key that is NOT that kid's. */
  forgedSignatureToken(sub?: string): string;
  /** `alg: none`, no signature. */
  algNoneToken(sub?: string): string;
  /** HS256 with the current public key (PEM) as the HMAC secret: the classic key-confusion attack. */
  hs256WithPublicKeyToken(sub?: string): string;
  /** Signed with a key whose kid the JWKS does not list. */
  unknownKidToken(sub?: string): string;
  /** A new key; published in the JWKS only when `publish` (default true). Returns its kid. */
  addKey(alg?: IssuerKeyAlg, publish?: boolean): string;
  /** Lists a key in the JWKS from now on. */
  publish(kid: string): void;
  /** Removes a key from the JWKS. */
  retire(kid: string): void;
  /** Makes `kid` the default signing key. */
  useKey(kid: string): void;
  /**
   * Serves more paths on the issuer's own origin (the Keycloak stand-in's token endpoint and admin
   * API live next to the realm, as in Keycloak). The handler returns false for paths it does not serve.
   */
  mount(handler: IssuerRouteHandler): void;
  close(): Promise<void>;
}

export type IssuerRouteHandler = (req: IncomingMessage, res: ServerResponse, path: string) => boolean;

function generate(alg: IssuerKeyAlg): { privateKey: KeyObject; publicKey: KeyObject } {
  if (alg === 'ES256') return generateKeyPairSync('ec', { namedCurve: 'P-256' });
  if (alg === 'EdDSA') return generateKeyPairSync('ed25519');
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

const b64url = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** `port`: a fixed loopback port (the `make dev` stand-in); default a free one. */
export async function startOidcIssuer(options: { audience?: string; alg?: IssuerKeyAlg; port?: number } = {}): Promise<OidcIssuer> {
  const audience = options.audience ?? 'iotsupport-test';
  const keys = new Map<string, IssuerKey>();
  const requests = { discovery: 0, jwks: 0 };
  let currentKid = '';
  let stranger: IssuerKey | undefined;
  let base = '';
  const mounted: IssuerRouteHandler[] = [];

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/realms/test/.well-known/openid-configuration') {
      requests.discovery += 1;
      return send(200, { issuer: `${base}/realms/test`, jwks_uri: `${base}/realms/test/protocol/openid-connect/certs` });
    }
    if (path === '/realms/test/protocol/openid-connect/certs') {
      requests.jwks += 1;
      const published = [...keys.values()].filter((k) => k.published);
      return send(200, { keys: published.map((k) => ({ ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, alg: k.alg, use: 'sig' })) });
    }
    if (mounted.some((handler) => handler(req, res, path))) return;
    send(404, { error: 'not found' });
  });
  const port = options.port ? await new Promise<number>((resolve, reject) => server.once('error', reject).listen(options.port, '127.0.0.1', () => resolve(options.port!))) : await listenOnLoopback(server);
  base = `http://127.0.0.1:${port}`;
  const url = `${base}/realms/test`;

  const addKey = (alg: IssuerKeyAlg = options.alg ?? 'RS256', publish = true): string => {
    const kid = `k-${randomBytes(6).toString('hex')}`;
    keys.set(kid, { kid, alg, ...generate(alg), published: publish });
    return kid;
  };
  const keyOf = (kid: string): IssuerKey => {
    const key = keys.get(kid);
    if (!key) throw new Error(`no key ${kid}`);
    return key;
  };
  currentKid = addKey();

  const payload = (claims: TokenClaims = {}): Record<string, unknown> => {
    const now = Math.floor(Date.now() / 1000);
    return {
      iss: claims.iss ?? url,
      aud: claims.aud ?? audience,
      sub: claims.sub ?? 'alice',
      iat: now,
      exp: now + (claims.expiresIn ?? 3600),
      ...(claims.azp ? { azp: claims.azp } : {}),
      ...claims.extra,
    };
  };
  const signWith = (key: IssuerKey, kid: string, body: Record<string, unknown>): string =>
    createSigner({ key: key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), algorithm: key.alg as Algorithm, kid, noTimestamp: true })(body);

  const issuer: OidcIssuer = {
    url,
    jwksUrl: `${url}/protocol/openid-connect/certs`,
    audience,
    requests,
    get currentKid() {
      return currentKid;
    },
    token: (claims, kid = currentKid) => signWith(keyOf(kid), kid, payload(claims)),
    expiredToken: (sub) => issuer.token({ sub, expiresIn: -3600 }),
    wrongAudienceToken: (sub) => issuer.token({ sub, aud: 'someone-else' }),
    wrongIssuerToken: (sub) => issuer.token({ sub, iss: `${base}/realms/other` }),
    forgedSignatureToken: (sub) => {
      const impostor = { ...keyOf(currentKid), ...generate(keyOf(currentKid).alg) };
      return signWith(impostor, currentKid, payload({ sub }));
    },
    algNoneToken: (sub) => `${b64url({ alg: 'none', typ: 'JWT', kid: currentKid })}.${b64url(payload({ sub }))}.`,
    hs256WithPublicKeyToken: (sub) => {
      const input = `${b64url({ alg: 'HS256', typ: 'JWT', kid: currentKid })}.${b64url(payload({ sub }))}`;
      const secret = keyOf(currentKid).publicKey.export({ format: 'pem', type: 'spki' }).toString();
      return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
    },
    unknownKidToken: (sub) => {
      // a fresh kid each time, signed by one stranger key (generating RSA keys is slow)
      stranger ??= { ...keyOf(currentKid), ...generate(keyOf(currentKid).alg) };
      return signWith(stranger, `unknown-${randomBytes(6).toString('hex')}`, payload({ sub }));
    },
    addKey,
    publish: (kid) => {
      keyOf(kid).published = true;
    },
    retire: (kid) => {
      keyOf(kid).published = false;
    },
    useKey: (kid) => {
      keyOf(kid);
      currentKid = kid;
    },
    mount: (handler) => void mounted.push(handler),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // fetch keeps connections alive
      }),
  };
  return issuer;
}
