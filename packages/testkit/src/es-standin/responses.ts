import type { IncomingMessage, ServerResponse } from 'node:http';

/** The version the stand-in claims to be; the 9.x client accepts it and sends `compatible-with=9`. */
export const STANDIN_VERSION = '9.4.0';

/** Elasticsearch's error body: `{error: {root_cause: [...], type, reason}, status}`. */
export function esErrorBody(status: number, type: string, reason: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const cause = { type, reason, ...extra };
  return { error: { root_cause: [cause], ...cause }, status };
}

const MEDIA_TYPE = /^application\/(?:(json|x-ndjson)|vnd\.elasticsearch\+(json|x-ndjson))\s*(?:;\s*compatible-with\s*=\s*(\d+))?\s*(?:;.*)?$/i;

export type MediaTypeCheck = { ok: true; compatibleWith: string | undefined } | { ok: false; status: number; body: Record<string, unknown> };

/**
 * Checks the request's Content-Type the way Elasticsearch 9 does: JSON or NDJSON, plain or the
 * vendored `application/vnd.elasticsearch+…; compatible-with=N` form (N 8 or 9); anything else is refused.
 */
export function checkMediaTypes(req: IncomingMessage, hasBody: boolean): MediaTypeCheck {
  const accept = req.headers.accept ?? '';
  const acceptVersion = /vnd\.elasticsearch\+json\s*;\s*compatible-with\s*=\s*(\d+)/i.exec(accept)?.[1];
  const contentType = req.headers['content-type'];
  let contentVersion: string | undefined;
  if (hasBody) {
    const match = contentType === undefined ? null : MEDIA_TYPE.exec(contentType);
    if (!match) {
      return { ok: false, status: 406, body: { error: `Content-Type header [${contentType ?? ''}] is not supported`, status: 406 } };
    }
    contentVersion = match[3];
    if (match[2] !== undefined && contentVersion === undefined) {
      return mediaTypeError('A compatible-with parameter is required on the vendored Content-Type');
    }
  }
  for (const version of [acceptVersion, contentVersion]) {
    if (version !== undefined && version !== '8' && version !== '9') {
      return mediaTypeError(`Compatible-with version [${version}] is not supported, only [8] and [9] are`);
    }
  }
  if (acceptVersion && contentVersion && acceptVersion !== contentVersion) {
    return mediaTypeError('Content-Type and Accept headers have to request the same compatible-with version');
  }
  return { ok: true, compatibleWith: acceptVersion ?? contentVersion };
}

function mediaTypeError(reason: string): MediaTypeCheck {
  return { ok: false, status: 400, body: esErrorBody(400, 'media_type_header_exception', `Invalid media-type value on headers [Accept, Content-Type]: ${reason}`) };
}

export interface ReplyContext {
  /** Whether `x-elastic-product: Elasticsearch` is sent (a test switch turns it off). */
  productHeader: boolean;
  /** Echo of the requested `compatible-with` version; decides the response Content-Type. */
  compatibleWith: string | undefined;
  head: boolean;
}

/** Sends a JSON answer with the headers every Elasticsearch response carries. */
export function reply(res: ServerResponse, ctx: ReplyContext, status: number, body: unknown): void {
  const payload = Buffer.from(JSON.stringify(body));
  const headers: Record<string, string | number> = {
    'content-type': ctx.compatibleWith
      ? `application/vnd.elasticsearch+json;compatible-with=${ctx.compatibleWith}`
      : 'application/json',
    'content-length': payload.length,
  };
  if (ctx.productHeader) headers['x-elastic-product'] = 'Elasticsearch';
  res.writeHead(status, headers);
  res.end(ctx.head ? undefined : payload);
}
