import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { TokenVerificationError } from './errors.js';

export interface JwksResolverOptions {
  /** OIDC_ISSUER_URL: its discovery document names the JWKS unless `jwksUrl` is given. */
  issuerUrl: string;
  /** OIDC_JWKS_URL. */
  jwksUrl?: string | undefined;
  /** How long a fetched key is used before it is fetched again (a stale key is used if that fails). */
  keyTtlMs?: number;
  /**
   * Minimum time between two JWKS fetches caused by an unknown `kid`. Without it every forged
   * token with a fresh random kid would make us call the issuer (amplification); with it, a key
   * the issuer just rotated in becomes usable at most this long after its first use. Also the
   * time after a failed fetch before an expired key is refreshed again (its stale copy serves meanwhile).
   */
  unknownKidCooldownMs?: number;
  /** Per fetch (discovery or JWKS). */
  fetchTimeoutMs?: number;
}

/** One key of the issuer's JWKS, as last seen in a fetch. */
interface KnownKey {
  jwk: JsonWebKey & { kid: string; alg?: string };
  /** When a successful fetch last listed it: it is used without refetching for `keyTtlMs` after that. */
  seenAt: number;
  pem?: string;
}

/**
 * Resolves `(kid, alg)` to a public key in PEM, from the issuer's JWKS. Every fetch caches **all**
 * keys of the document (not only the kid asked for): a key the issuer rotated in is known as soon
 * as any fetch saw it, so tokens with random kids (each may trigger the rate-limited refetch) cannot
 * use up the refetches a legitimately rotated key needs. The discovery document is fetched once
 * (not per miss), unknown kids trigger at most one JWKS fetch per cooldown, concurrent lookups share
 * one fetch, a key older than `keyTtlMs` is refreshed (its stale copy used if that fetch fails, and
 * for a cooldown after it without asking again), an unknown kid during the cooldown after a failed
 * fetch is `jwks_unavailable` (we cannot tell), and JWKs are converted with node:crypto (RSA, EC
 * and OKP/EdDSA). get-jwks was used before, but it caches only the requested kid of each fetch and
 * offers no way to read the whole set.
 */
export class JwksResolver {
  private readonly ttl: number;
  private readonly cooldown: number;
  private readonly timeout: number;
  private jwksUri: Promise<URL> | null = null;
  /** kid → the keys with that kid (normally one; several if they differ by alg). */
  private keys = new Map<string, KnownKey[]>();
  /** The JWKS fetch in flight: every lookup that needs one shares it. */
  private fetching: Promise<void> | null = null;
  private lastUnknownKidFetch = Number.NEGATIVE_INFINITY;
  /** When the last JWKS fetch failed; null once one succeeds. */
  private failedAt: number | null = null;

  constructor(private readonly options: JwksResolverOptions) {
    this.ttl = options.keyTtlMs ?? 10 * 60_000;
    this.cooldown = options.unknownKidCooldownMs ?? 10_000;
    this.timeout = options.fetchTimeoutMs ?? 5_000;
  }

  async publicKey(kid: string, alg: string): Promise<string> {
    const known = this.find(kid, alg);
    if (known && Date.now() - known.seenAt < this.ttl) return pemOf(known);
    if (known) {
      // expired: refresh (the whole set); the stale copy serves while the issuer is unreachable.
      // Right after a failed fetch it serves without asking again: otherwise, during an outage,
      // every verification would wait the full fetch timeout before falling back to it.
      if (this.failedRecently()) return pemOf(known);
      try {
        await this.refetch();
      } catch {
        return pemOf(known);
      }
      const fresh = this.find(kid, alg);
      if (!fresh) throw new TokenVerificationError('unknown_key', `kid ${kid} is no longer in the JWKS`);
      return pemOf(fresh);
    }
    if (!this.fetching) {
      // a fetch already under way (any cause) is shared; only a new one is rate-limited
      const now = Date.now();
      if (now - this.lastUnknownKidFetch < this.cooldown) {
        // after a failed fetch we do not know the issuer's keys: the token may well be valid (503, not 401)
        if (this.failedAt !== null) throw new TokenVerificationError('jwks_unavailable', `kid ${kid} not in the JWKS, and the last JWKS fetch failed`);
        throw new TokenVerificationError('unknown_key', `kid ${kid} not in the JWKS (refetch rate-limited)`);
      }
      this.lastUnknownKidFetch = now;
    }
    await this.refetch();
    const found = this.find(kid, alg);
    if (!found) throw new TokenVerificationError('unknown_key', `kid ${kid} not in the JWKS`);
    return pemOf(found);
  }

  private find(kid: string, alg: string): KnownKey | undefined {
    return this.keys.get(kid)?.find((k) => k.jwk.alg === undefined || k.jwk.alg === alg);
  }

  private failedRecently(): boolean {
    return this.failedAt !== null && Date.now() - this.failedAt < this.cooldown;
  }

  /** Fetches the JWKS once for all concurrent callers and records every key in it. */
  private refetch(): Promise<void> {
    this.fetching ??= this.fetchJwks()
      .then(
        (jwks) => {
          this.remember(jwks);
          this.failedAt = null;
        },
        (err: unknown) => {
          this.failedAt = Date.now();
          throw err;
        },
      )
      .finally(() => {
        this.fetching = null;
      });
    return this.fetching;
  }

  private remember(jwks: Array<JsonWebKey & { kid: string; alg?: string }>): void {
    const now = Date.now();
    const next = new Map<string, KnownKey[]>();
    for (const jwk of jwks) {
      // the same key as before keeps its converted PEM
      const previous = this.keys.get(jwk.kid)?.find((k) => JSON.stringify(k.jwk) === JSON.stringify(jwk));
      const entry: KnownKey = previous ? { ...previous, seenAt: now } : { jwk, seenAt: now };
      next.set(jwk.kid, [...(next.get(jwk.kid) ?? []), entry]);
    }
    // keys the issuer no longer lists stay usable until their TTL runs out (as a cached key would)
    for (const [kid, entries] of this.keys) {
      if (next.has(kid)) continue;
      const live = entries.filter((k) => now - k.seenAt < this.ttl);
      if (live.length) next.set(kid, live);
    }
    this.keys = next;
  }

  private async fetchJwks(): Promise<Array<JsonWebKey & { kid: string; alg?: string }>> {
    const uri = await this.resolveJwksUri();
    let body: { keys?: unknown };
    try {
      const response = await fetch(uri, { signal: AbortSignal.timeout(this.timeout) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      body = (await response.json()) as { keys?: unknown };
    } catch (err) {
      // fetch's own abort signal (not a race around it): a timed-out request is really cancelled
      const message = (err as Error).name === 'TimeoutError' ? `JWKS fetch timed out after ${this.timeout} ms` : `JWKS ${uri.href}: ${(err as Error).message}`;
      throw new TokenVerificationError('jwks_unavailable', message);
    }
    if (!Array.isArray(body.keys)) throw new TokenVerificationError('jwks_unavailable', `JWKS ${uri.href}: no keys array`);
    return body.keys.filter((k): k is JsonWebKey & { kid: string; alg?: string } => typeof k === 'object' && k !== null && typeof (k as { kid?: unknown }).kid === 'string');
  }

  /** OIDC_JWKS_URL, else `jwks_uri` of `<issuer>/.well-known/openid-configuration` (fetched once; retried after a failure). */
  private resolveJwksUri(): Promise<URL> {
    if (this.options.jwksUrl) return Promise.resolve(new URL(this.options.jwksUrl));
    this.jwksUri ??= this.discover().catch((err: unknown) => {
      this.jwksUri = null;
      throw err;
    });
    return this.jwksUri;
  }

  private async discover(): Promise<URL> {
    const url = `${this.options.issuerUrl.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(this.timeout) });
      if (!response.ok) throw new Error(`discovery document: HTTP ${response.status}`);
      const body = (await response.json()) as { jwks_uri?: unknown };
      if (typeof body.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri');
      return new URL(body.jwks_uri);
    } catch (err) {
      throw new TokenVerificationError('jwks_unavailable', `${url}: ${(err as Error).message}`);
    }
  }
}

function pemOf(key: KnownKey): string {
  if (key.pem) return key.pem;
  try {
    key.pem = createPublicKey({ key: key.jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
  } catch {
    throw new TokenVerificationError('unknown_key', `kid ${key.jwk.kid} is not a usable public key`);
  }
  return key.pem;
}
