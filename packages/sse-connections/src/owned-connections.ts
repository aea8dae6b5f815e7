import type { OwnedConnection } from '@iotsupport/realtime-state';
import type { StreamTrack } from './stream-track.js';

export interface Owned {
  requestId: string;
  token: string;
  gateway: string;
  entities: Set<string>;
  /** performance.now() of the last probe (or of the take-over). */
  probedAt: number;
  /** performance.now() before which nothing is sent to it (the grace after a take-over). */
  sendableAt: number;
  /** Per watched entity: where its delivery stands (created at the first batch or from a recorded position). */
  tracks: Map<string, StreamTrack>;
  /** Counts the reads of its subscriptions applied (setEntities): a read older than the last applied one is stale. */
  entitiesRead: number;
}

/** Told when the first owned connection starts watching an entity and when the last one stops. */
export interface EntityWatchListener {
  entityWatched(entityId: string): void;
  entityUnwatched(entityId: string): void;
}

/**
 * The connections this process owns, in memory, indexed both ways: by request_id / token for
 * gateway answers, and entity → owned watchers for the fan-out. The entity index is the
 * reference count of the pod's channel subscriptions: the listener hears 0 → 1 and 1 → 0.
 */
export class OwnedConnections {
  private readonly byRid = new Map<string, Owned>();
  private readonly ridByToken = new Map<string, string>();
  private readonly watchers = new Map<string, Set<Owned>>();

  constructor(private readonly listener: EntityWatchListener) {}

  get size(): number {
    return this.byRid.size;
  }

  get(requestId: string): Owned | undefined {
    return this.byRid.get(requestId);
  }

  byToken(token: string): Owned | undefined {
    const rid = this.ridByToken.get(token);
    return rid === undefined ? undefined : this.byRid.get(rid);
  }

  all(): IterableIterator<Owned> {
    return this.byRid.values();
  }

  /** Owned connections watching the entity (live view: copy before awaiting). */
  watchersOf(entityId: string): ReadonlySet<Owned> | undefined {
    return this.watchers.get(entityId);
  }

  watchedEntities(): IterableIterator<string> {
    return this.watchers.keys();
  }

  /** Distinct entities watched (= log channels this pod listens to). */
  get watchedCount(): number {
    return this.watchers.size;
  }

  /** Records (or refreshes) an owned connection as Redis returned it. A new token replaces the old stream. */
  upsert(conn: OwnedConnection, now: number): Owned {
    let owned = this.byRid.get(conn.requestId);
    if (owned && owned.token !== conn.token) {
      this.remove(conn.requestId);
      owned = undefined;
    }
    if (!owned) {
      owned = { requestId: conn.requestId, token: conn.token, gateway: conn.gateway, entities: new Set(), probedAt: now, sendableAt: 0, tracks: new Map(), entitiesRead: 0 };
      this.byRid.set(conn.requestId, owned);
      this.ridByToken.set(conn.token, conn.requestId);
    }
    owned.gateway = conn.gateway;
    this.setEntities(owned, conn.entities);
    return owned;
  }

  /** Replaces what the connection watches with `entities` (both indexes, counted). */
  setEntities(owned: Owned, entities: Iterable<string>): void {
    const next = new Set(entities);
    owned.entitiesRead += 1;
    for (const eid of owned.entities) if (!next.has(eid)) this.unwatch(owned, eid);
    for (const eid of next) if (!owned.entities.has(eid)) this.watch(owned, eid);
  }

  remove(requestId: string): Owned | undefined {
    const owned = this.byRid.get(requestId);
    if (!owned) return undefined;
    for (const eid of [...owned.entities]) this.unwatch(owned, eid);
    this.byRid.delete(requestId);
    this.ridByToken.delete(owned.token);
    return owned;
  }

  /** Forgets everything (lease lost, shutdown); returns what was owned. */
  clear(): Owned[] {
    const all = [...this.byRid.values()];
    for (const owned of all) this.remove(owned.requestId);
    return all;
  }

  private watch(owned: Owned, eid: string): void {
    owned.entities.add(eid);
    let set = this.watchers.get(eid);
    if (!set) {
      set = new Set();
      this.watchers.set(eid, set);
      this.listener.entityWatched(eid);
    }
    set.add(owned);
  }

  private unwatch(owned: Owned, eid: string): void {
    owned.entities.delete(eid);
    owned.tracks.delete(eid);
    const set = this.watchers.get(eid);
    if (!set) return;
    set.delete(owned);
    if (set.size === 0) {
      this.watchers.delete(eid);
      this.listener.entityUnwatched(eid);
    }
  }
}
