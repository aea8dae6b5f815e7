import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

/**
 * The registry's Lua scripts, one per state transition, in the style BullMQ uses: plain `.lua`
 * files under src/lua (readable, diffable), a `--- @include "name"` line pulls in
 * src/lua/includes/<name>.lua, and each script is registered with ioredis `defineCommand`
 * (EVALSHA with a transparent EVAL fallback after a script cache flush).
 *
 * `tsc -b` does not copy `.lua` files, so the compiled module (dist/src/scripts.js) reads them from
 * the package's own src/lua, two directories up: the package ships `src/lua` (see `files` in
 * package.json), and the layout dist/src ↔ src is fixed by rootDir '.'.
 */
const LUA_DIR = new URL('../../src/lua/', import.meta.url);

export const SCRIPT_NAMES = [
  'connect',
  'disconnect',
  'gateway-gone',
  'subscribe',
  'unsubscribe',
  'expire-binding',
  'sweep-expired',
  'mark-seen',
  'drop-unconfirmed',
] as const;

export type ScriptName = (typeof SCRIPT_NAMES)[number];

const INCLUDE = /^--- @include "([a-z-]+)"$/gm;

/** The source of one script with its includes inlined. */
export function loadScript(name: ScriptName): string {
  const source = readFileSync(new URL(`${name}.lua`, LUA_DIR), 'utf8');
  return source.replace(INCLUDE, (_line, include: string) => readFileSync(new URL(`includes/${include}.lua`, LUA_DIR), 'utf8'));
}

/** ioredis method name of a script: `registry` + PascalCase (never clashes with client methods such as `connect`). */
export function commandName(name: ScriptName): string {
  return `registry${name.replace(/(^|-)([a-z])/g, (_m, _dash, c: string) => c.toUpperCase())}`;
}

export type ScriptCall = (...keysThenArgs: (string | number)[]) => Promise<unknown>;

const sources = new Map<ScriptName, string>();

/**
 * Defines every registry script on the client (once per client and key count) and returns callers.
 * `numberOfKeys` depends on how many per-connection indexes the layout has (indexKeysForRemoval).
 */
export function defineRegistryScripts(redis: Redis | Cluster, numberOfKeys: number): Record<ScriptName, ScriptCall> {
  const calls = {} as Record<ScriptName, ScriptCall>;
  const client = redis as unknown as Record<string, ScriptCall | undefined>;
  for (const name of SCRIPT_NAMES) {
    const method = `${commandName(name)}K${numberOfKeys}`;
    if (typeof client[method] !== 'function') {
      let lua = sources.get(name);
      if (lua === undefined) {
        lua = loadScript(name);
        sources.set(name, lua);
      }
      redis.defineCommand(method, { numberOfKeys, lua });
    }
    const fn = client[method] as ScriptCall;
    calls[name] = (...args) => fn.apply(redis, args);
  }
  return calls;
}
