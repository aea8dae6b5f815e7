import { parse as parseCookies } from 'cookie';

/** Header values as fastify and the SSE gateway deliver them (the gateway may send arrays). */
export type HeaderBag = Record<string, string | string[] | undefined>;

const BEARER = /^Bearer[ \t]+([A-Za-z0-9\-_.~+/]+=*)[ \t]*$/i;

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The access token of a request: the `authorization: Bearer` header, else the cookie
 * `cookieName` (contract). Header names are lower-case (HTTP/Node and the gateway both do so).
 * A malformed Authorization header does not hide a valid cookie: browsers' EventSource cannot set
 * headers, so the cookie is the usual carrier and the header the API clients' one.
 */
export function accessTokenFromHeaders(headers: HeaderBag, cookieName: string): string | null {
  const bearer = BEARER.exec(firstValue(headers.authorization) ?? '');
  if (bearer?.[1]) return bearer[1];
  const rawCookie = headers.cookie;
  if (rawCookie === undefined) return null;
  const cookieHeader = Array.isArray(rawCookie) ? rawCookie.join('; ') : rawCookie;
  const value = parseCookies(cookieHeader)[cookieName];
  return value ? value : null;
}
