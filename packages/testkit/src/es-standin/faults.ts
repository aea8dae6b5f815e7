import type { WriteAction } from './store.js';

/**
 * Failure switches a test flips at run time. Each mirrors something a real cluster does to a
 * bulk writer: the node is unreachable, the whole request is refused, or single items fail.
 */

/** `reset`: connections are accepted and destroyed at once (client: ConnectionError, "socket hang up").
 *  `refuse`: the port stops listening (client: ConnectionError, ECONNREFUSED).
 *  `hang`: requests are read and never answered (client: TimeoutError after its requestTimeout). */
export type OutageMode = 'reset' | 'refuse' | 'hang';

export interface RequestFailureOptions {
  /** HTTP status of the whole response; 503 by default (the client retries 502/503/504). */
  status?: number;
  /** How many requests fail before the stand-in answers normally again; unlimited by default. */
  count?: number;
  /** Elasticsearch error `type`; a sensible one per status by default. */
  type?: string;
  reason?: string;
}

/** What an item rule sees of a bulk item (also passed to `when`). */
export interface BulkItemInfo {
  action: WriteAction;
  index: string;
  id: string;
  /** The parsed source line (`undefined` for delete). */
  document: Record<string, unknown> | undefined;
}

export interface ItemRejectionOptions {
  /** 429: `es_rejected_execution_exception` (retry later); 400: `document_parsing_exception` (never retry). */
  status: 429 | 400;
  /** Only items for which this returns true are rejected. */
  when?: (item: BulkItemInfo) => boolean;
  /** How many items this rule rejects; 1 without `when`, unlimited with it. */
  count?: number;
  /** e.g. `mapping_parser_exception` instead of the default for the status. */
  type?: string;
  reason?: string;
}

export interface ItemError {
  status: number;
  type: string;
  reason: string;
}

interface ItemRule {
  status: number;
  when: ((item: BulkItemInfo) => boolean) | undefined;
  remaining: number;
  type: string;
  reason: string | undefined;
}

const DEFAULT_REQUEST_ERROR: Record<number, string> = {
  429: 'es_rejected_execution_exception',
  500: 'exception',
  502: 'exception',
  503: 'unavailable_shards_exception',
  504: 'exception',
};

export class FaultControls {
  outage: OutageMode | null = null;
  productHeader = true;
  private requestFailure: { status: number; remaining: number; type: string; reason: string } | null = null;
  private itemRules: ItemRule[] = [];

  failRequests(options: RequestFailureOptions = {}): void {
    const status = options.status ?? 503;
    this.requestFailure = {
      status,
      remaining: options.count ?? Number.POSITIVE_INFINITY,
      type: options.type ?? DEFAULT_REQUEST_ERROR[status] ?? 'exception',
      reason: options.reason ?? `stand-in: request failure switched on (status ${status})`,
    };
  }

  stopFailingRequests(): void {
    this.requestFailure = null;
  }

  /** The failure for this request, if one is switched on (and counts it down). */
  takeRequestFailure(): ItemError | null {
    const failure = this.requestFailure;
    if (!failure) return null;
    failure.remaining -= 1;
    if (failure.remaining <= 0) this.requestFailure = null;
    return { status: failure.status, type: failure.type, reason: failure.reason };
  }

  rejectItems(options: ItemRejectionOptions): void {
    this.itemRules.push({
      status: options.status,
      when: options.when,
      remaining: options.count ?? (options.when ? Number.POSITIVE_INFINITY : 1),
      type: options.type ?? (options.status === 429 ? 'es_rejected_execution_exception' : 'document_parsing_exception'),
      reason: options.reason,
    });
  }

  stopRejectingItems(): void {
    this.itemRules = [];
  }

  /** The error for this item, if a rule matches it (the first matching rule counts down). */
  takeItemError(item: BulkItemInfo): ItemError | null {
    for (const rule of this.itemRules) {
      if (rule.when && !rule.when(item)) continue;
      rule.remaining -= 1;
      if (rule.remaining <= 0) this.itemRules = this.itemRules.filter((r) => r !== rule);
      return { status: rule.status, type: rule.type, reason: rule.reason ?? defaultItemReason(rule, item) };
    }
    return null;
  }

  reset(): void {
    this.outage = null;
    this.productHeader = true;
    this.requestFailure = null;
    this.itemRules = [];
  }
}

function defaultItemReason(rule: ItemRule, item: BulkItemInfo): string {
  if (rule.status === 429) {
    return `rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, primary_operation_bytes=0, max_coordinating_and_primary_bytes=0] on index [${item.index}]`;
  }
  return `[1:1] failed to parse: document [${item.id}] rejected by the stand-in`;
}
