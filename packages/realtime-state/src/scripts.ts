import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

/**
 * The package's Lua scripts (the registry's and ownership's), one per state transition, in the
 * style BullMQ uses: plain `.lua` files under src/lua (readable, diffable), a `--- @include "name"`
 * line pulls in src/lua/includes/<name>.lua, and each script is registered with ioredis
 * `defineCommand` (EVALSHA with a transparent EVAL fallback after a script cache flush).
 *
 * `tsc -b` does not copy `.lua` files, so the compiled module (dist/src/scripts.js) reads them from
 * the package's own src/lua, two directories up: the package ships `src/lua` (see `files` in
 * package.json), and the layout dist/src ↔ src is fixed by rootDir '.'.
 */
const LUA_DIR = new URL('../../src/lua/', import.meta.url);
const INCLUDE = /^--- @include "([a-z-]+)"$/gm;

/** The registry's scripts: src/lua/<name>.lua each. */
const REGISTRY_SCRIPTS = [
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

export type ScriptName = (typeof REGISTRY_SCRIPTS)[number];

export type ScriptCall = (...keysThenArgs: (string | number)[]) => Promise<unknown>;

const sources = new Map<string, string>();

/** The source of src/lua/<file>.lua with its includes inlined (read once per process). */
function luaSource(file: string): string {
  let lua = sources.get(file);
  if (lua === undefined) {
    const source = readFileSync(new URL(`${file}.lua`, LUA_DIR), 'utf8');
    lua = source.replace(INCLUDE, (_line, include: string) => readFileSync(new URL(`includes/${include}.lua`, LUA_DIR), 'utf8'));
    sources.set(file, lua);
  }
  return lua;
}

/** `take-over-dead` / `takeOverDead` → `TakeOverDead`. */
function pascalCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, _dash, c: string) => c.toUpperCase());
}

/**
 * Defines each script on the client (once per client, method name and key count) and returns
 * callers by name. `scripts` maps a name to its file under src/lua. The ioredis method is
 * `<methodPrefix><PascalName>K<numberOfKeys>`: the prefix keeps it clear of client methods such as
 * `connect`, and the key count is part of the name because it is fixed at definition time while it
 * depends on the key layout (indexKeysForRemoval).
 */
export function defineScripts<Name extends string>(
  redis: Redis | Cluster,
  methodPrefix: string,
  numberOfKeys: number,
  scripts: Record<Name, string>,
): Record<Name, ScriptCall> {
  const calls = {} as Record<Name, ScriptCall>;
  const client = redis as unknown as Record<string, ScriptCall | undefined>;
  for (const [name, file] of Object.entries(scripts) as [Name, string][]) {
    const method = `${methodPrefix}${pascalCase(name)}K${numberOfKeys}`;
    if (typeof client[method] !== 'function') redis.defineCommand(method, { numberOfKeys, lua: luaSource(file) });
    const fn = client[method] as ScriptCall;
    calls[name] = (...args) => fn.apply(redis, args);
  }
  return calls;
}

/** The registry's scripts on the client; `numberOfKeys` = its fixed KEYS (lua/includes/common.lua). */
export function defineRegistryScripts(redis: Redis | Cluster, numberOfKeys: number): Record<ScriptName, ScriptCall> {
  const files = Object.fromEntries(REGISTRY_SCRIPTS.map((name) => [name, name])) as Record<ScriptName, string>;
  return defineScripts(redis, 'registry', numberOfKeys, files);
}
