import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { registryKeys, type RegistryKeys } from './keys.js';
import { defineScripts, type ScriptCall } from './scripts.js';

/**
 * Which api process sends to which SSE connection, in Redis (docs/forwarding.md has the picture).
 *
 * - Every api process registers as an *instance* (a number from `pod-seq`, never reused, so a
 *   restarted pod never inherits what its previous self owned) with a lease in the `pods` zset,
 *   renewed every third of OWNERSHIP_LEASE_SECONDS. One lease per process, not per connection:
 *   renewal costs one command whatever the number of connections.
 * - `idx:owner` maps each owned connection to its owner's instance. It is one of the registry's
 *   per-connection indexes, so every registry removal (disconnect, replacement, expiry, 404, sweep)
 *   drops the ownership in the same atomic step.
 * - A connection whose owner's lease ran out is free: a live process takes it with one script
 *   (take-connections / take-over-dead), so exactly one process owns it at any time.
 * - Fencing is the owner's own job: it never starts a send its lease would not outlive, measuring
 *   the lease from *before* it asked Redis to renew, so by the time Redis sees the lease expired
 *   (and lets another take over) the old owner's last send has ended.
 */

/** Script name → its file under src/lua (ioredis methods `ownership<Name>K5`, see scripts.ts). */
const OWNERSHIP_SCRIPTS = {
  register: 'ownership-register',
  renew: 'renew-pod-lease',
  take: 'take-connections',
  takeOverDead: 'take-over-dead',
  release: 'ownership-release',
  findUnowned: 'ownership-find-unowned',
} as const;

type OwnershipScript = keyof typeof OWNERSHIP_SCRIPTS;

/** A connection as its new owner needs it. */
export interface OwnedConnection {
  requestId: string;
  token: string;
  /** The gateway holding the stream (the connection record's `gateway`). */
  gateway: string;
  /** Entities it watches (distinct). */
  entities: string[];
  /** entity_id → stream cursor: where delivery stands (keys.positions); entities without one start live. */
  positions: Record<string, string>;
}

/** One changed position of an owner, written with its lease renewal. */
export interface Checkpoint {
  requestId: string;
  /** The stream the position was delivered to: a replaced connection's position is not written. */
  token: string;
  entityId: string;
  cursor: string;
}

export interface LeaseRenewal {
  renewed: boolean;
  /** The registry's generation now ('' when it has none: its data was lost). */
  generation: string;
  /** Checkpoints written (those of connections still owned by this stream and entity). */
  written: number;
}

export interface PodInfo {
  pod: string;
  gateway: string;
  started_at: number;
  /** Set when the instance released its lease itself (drain): it had stopped sending by then. */
  released_at?: number;
}

export interface Takeover {
  deadInstance: string;
  /** When the dead instance's lease ran out (Redis clock, epoch ms; 0 = released on shutdown). */
  deadLeaseUntilMs: number;
  deadInfo: PodInfo | null;
  connections: OwnedConnection[];
}

export class OwnershipLostError extends Error {
  readonly code = 'OWNERSHIP_LEASE_LOST';
  constructor(readonly instance: string) {
    super(`the ownership lease of instance ${instance} has run out`);
    this.name = 'OwnershipLostError';
  }
}

export type GatewayTopology = 'shared' | 'per-pod';

type RawOwned = [string, string, string, string[], string[]];

function parsePodInfo(json: string | undefined): PodInfo | null {
  if (!json) return null;
  try {
    return JSON.parse(json) as PodInfo;
  } catch {
    return null;
  }
}

function toOwned(raw: RawOwned[]): OwnedConnection[] {
  return raw.map(([requestId, token, gateway, entities, positions]) => ({ requestId, token, gateway, entities: [...new Set(entities)], positions: pairsToRecord(positions) }));
}

function pairsToRecord(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

/** The ownership transitions, one Lua script each; state lives under the registry's key base. */
export class OwnershipStore {
  readonly keys: RegistryKeys;
  private readonly scripts: Record<OwnershipScript, ScriptCall>;
  private readonly fixedKeys: string[];

  constructor(
    readonly redis: Redis | Cluster,
    readonly prefix: string,
  ) {
    this.keys = registryKeys(prefix);
    this.fixedKeys = [this.keys.pods, this.keys.byOwner, this.keys.podSeq, this.keys.podInfo, this.keys.byLastSeen];
    this.scripts = defineScripts(redis, 'ownership', this.fixedKeys.length, OWNERSHIP_SCRIPTS);
  }

  private run(name: OwnershipScript, ...args: (string | number)[]): Promise<unknown> {
    return this.scripts[name](...this.fixedKeys, this.keys.base, ...args);
  }

  /** A new process: its instance number, first lease deadline (Redis clock) and the registry's generation. */
  async registerInstance(podId: string, gateway: string, leaseMs: number): Promise<{ instance: string; leaseUntilMs: number; generation: string }> {
    const [instance, deadline, generation] = (await this.run('register', leaseMs, podId, gateway, randomBytes(9).toString('base64url'))) as [number, number, string];
    return { instance: String(instance), leaseUntilMs: Number(deadline), generation };
  }

  /** Extends the lease; false once it has run out (then the process must stop sending and re-register). */
  async renewLease(instance: string, leaseMs: number): Promise<boolean> {
    return (await this.renew(instance, leaseMs, [])).renewed;
  }

  /**
   * Extends the lease and writes the owner's changed checkpoints, in one script call (one round
   * trip, whatever the number of positions): the only way positions are written by owners.
   */
  async renew(instance: string, leaseMs: number, checkpoints: readonly Checkpoint[]): Promise<LeaseRenewal> {
    const args = checkpoints.flatMap((c) => [c.requestId, c.token, c.entityId, c.cursor]);
    const [renewed, generation, written] = (await this.run('renew', instance, leaseMs, ...args)) as [number, string, number];
    return { renewed: Number(renewed) === 1, generation, written: Number(written) };
  }

  /** Ends the lease now (drain): live processes take the connections over at their next pass. */
  async releaseLease(instance: string): Promise<boolean> {
    return Number(await this.run('release', instance)) === 1;
  }

  /**
   * Takes the given connections that have no live owner (and re-reads the ones already owned).
   * `token` pins the connection to one stream ('' or undefined: the current one).
   */
  async take(
    instance: string,
    podId: string,
    topology: GatewayTopology,
    gateway: string,
    wanted: Array<{ requestId: string; token?: string }>,
  ): Promise<OwnedConnection[]> {
    if (wanted.length === 0) return [];
    const pairs = wanted.flatMap((w) => [w.requestId, w.token ?? '']);
    const reply = (await this.run('take', instance, podId, topology, gateway, ...pairs)) as [string, RawOwned[]?];
    if (reply[0] === 'lease_lost') throw new OwnershipLostError(instance);
    return toOwned(reply[1] ?? []);
  }

  /** Moves up to `limit` connections of one dead instance to this one; null when no instance is dead. */
  async takeOverDead(instance: string, podId: string, limit: number): Promise<Takeover | null> {
    const reply = (await this.run('takeOverDead', instance, podId, limit)) as [string, string?, string?, string?, RawOwned[]?];
    if (reply[0] === 'lease_lost') throw new OwnershipLostError(instance);
    if (reply[0] !== 'taken') return null;
    return { deadInstance: reply[1]!, deadLeaseUntilMs: Number(reply[2]), deadInfo: parsePodInfo(reply[3]), connections: toOwned(reply[4] ?? []) };
  }

  /** One page of connections without an owner, older than `minAgeMs`; `next` 0 at the end. */
  async findUnowned(startRank: number, pageSize: number, minAgeMs: number): Promise<{ next: number; requestIds: string[] }> {
    const [next, requestIds] = (await this.run('findUnowned', startRank, pageSize, minAgeMs)) as [number, string[]];
    return { next: Number(next), requestIds };
  }

  /** Instance number owning the connection, or null. */
  async ownerOf(requestId: string): Promise<string | null> {
    return this.redis.zscore(this.keys.byOwner, requestId);
  }

  /** request_ids owned by an instance. */
  async ownedBy(instance: string): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.byOwner, instance, instance);
  }

  /** Live and not-yet-taken-over instances with their lease deadlines. */
  async instances(): Promise<Array<{ instance: string; leaseUntilMs: number; info: PodInfo | null }>> {
    const [flat, infos] = await Promise.all([this.redis.zrange(this.keys.pods, 0, -1, 'WITHSCORES'), this.redis.hgetall(this.keys.podInfo)]);
    const out = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const instance = flat[i]!;
      out.push({ instance, leaseUntilMs: Number(flat[i + 1]), info: parsePodInfo(infos[instance]) });
    }
    return out;
  }
}
