import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';

/**
 * The gateway is an Express 5 app; these reproduce what its framework answers on its own:
 * JSON bodies, the HTML error page of its default error handler (production mode), and the
 * JSON body parser's limits.
 */

/** express.json()'s default limit, '100kb' = 102400 bytes; one byte more is a 413. */
export const SEND_BODY_LIMIT = 100 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': payload.length });
  res.end(payload);
}

/** `{"error":{"message","code"}}`, the gateway's own error shape. */
export function sendError(res: ServerResponse, status: number, message: string, code: string): void {
  sendJson(res, status, { error: { message, code } });
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** The framework's HTML error page: malformed JSON (400), too large (413), handler crash (500), unknown route (404). */
export function sendHtmlError(res: ServerResponse, status: number, message = STATUS_CODES[status] ?? 'Error'): void {
  const page = `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n<body>\n<pre>${escapeHtml(message)}</pre>\n</body>\n</html>\n`;
  const payload = Buffer.from(page);
  res.writeHead(status, {
    'content-security-policy': "default-src 'none'",
    'x-content-type-options': 'nosniff',
    'content-type': 'text/html; charset=utf-8',
    'content-length': payload.length,
  });
  res.end(payload);
}

export type JsonBody = { kind: 'none' } | { kind: 'parsed'; value: unknown } | { kind: 'error'; status: 400 | 413 };

/**
 * Reads a body the way express.json() does: only `application/json` is parsed (anything else leaves
 * no body, which makes the gateway's handler throw: 500); over the limit is 413; the top level must
 * be an object or array ("strict"), otherwise 400; an empty body is `{}`.
 */
export async function readJsonBody(req: IncomingMessage): Promise<JsonBody> {
  const hasBody = req.headers['transfer-encoding'] !== undefined || req.headers['content-length'] !== undefined;
  const mediaType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (!hasBody || mediaType !== 'application/json') {
    req.resume();
    return { kind: 'none' };
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > SEND_BODY_LIMIT) {
    req.resume();
    return { kind: 'error', status: 413 };
  }
  // Listening to 'data' (not for-await, which destroys the socket on an early exit) so a 413 can still be answered.
  const raw = await new Promise<Buffer | null>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= SEND_BODY_LIMIT) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > SEND_BODY_LIMIT ? null : Buffer.concat(chunks)));
    req.on('error', reject);
  });
  if (raw === null) return { kind: 'error', status: 413 };
  const text = raw.toString('utf8');
  if (text.trim() === '') return { kind: 'parsed', value: {} };
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') return { kind: 'error', status: 400 };
  try {
    return { kind: 'parsed', value: JSON.parse(text) };
  } catch {
    return { kind: 'error', status: 400 };
  }
}
