import type { FetchLike, SubscribeAnswer } from './types.js';

/**
 * The api refused a subscribe: `status` and the contract's `code` (from the error registry,
 * packages/contracts/src/errors.ts — e.g. `DEVICE_NOT_FOUND`, `NO_IDENTITY_BINDING`).
 */
export class SubscribeError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'SubscribeError';
  }

  /** Worth trying again later: the api was unreachable, failing, or did not know the connection yet. */
  get retryable(): boolean {
    return this.status === 0 || this.status >= 500 || this.code === 'NO_IDENTITY_BINDING';
  }
}

export interface SubscribeRequest {
  requestId: string;
  deviceId: number;
  since?: string;
}

/** `POST /api/device-logs/<op>`; network failures are a SubscribeError with status 0. */
export interface ApiTarget {
  fetch: FetchLike;
  apiUrl: string;
  headers: Record<string, string>;
  withCredentials: boolean;
}

export async function postDeviceLogs(
  { fetch, apiUrl, headers, withCredentials }: ApiTarget,
  op: 'subscribe' | 'unsubscribe',
  request: SubscribeRequest,
): Promise<SubscribeAnswer> {
  const body: Record<string, unknown> = { request_id: request.requestId, device_id: request.deviceId };
  if (op === 'subscribe' && request.since !== undefined) body.since = request.since;
  let response: Awaited<ReturnType<FetchLike>>;
  try {
    response = await fetch(`${apiUrl}/api/device-logs/${op}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      credentials: withCredentials ? 'include' : 'same-origin',
    });
  } catch (err) {
    throw new SubscribeError(0, undefined, `api unreachable: ${String(err)}`);
  }
  const answer = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (response.status !== 200) {
    const code = typeof answer?.code === 'string' ? answer.code : undefined;
    const message = typeof answer?.error === 'string' ? answer.error : `HTTP ${response.status}`;
    throw new SubscribeError(response.status, code, message);
  }
  return answer as unknown as SubscribeAnswer;
}
