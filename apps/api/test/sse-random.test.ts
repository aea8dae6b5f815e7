import t from 'tap';
import { findDeviceById } from '@iotsupport/db';
import { startFleet, type Fleet, type Pod } from './sse-fleet.js';

/**
 * Randomised model check: thousands of connect / replace / subscribe / unsubscribe / disconnect
 * (current and stale) steps, in concurrent rounds spread over 3 pods. After every round Redis must
 * hold exactly what a sequential model holds after SOME order of that round's steps — the order
 * must also explain every HTTP answer — and every cross-key invariant must hold (both directions,
 * tokens, indexes, counter).
 */
const SEED = Number(process.env.SSE_RANDOM_SEED ?? Date.now() % 1_000_000);
const STEPS = Number(process.env.SSE_RANDOM_STEPS ?? 3000);

function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = Math.imul(s ^ (s >>> 15), 1 | s);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] as T };
}

interface Conn {
  token: string;
  subject: string;
  devices: Map<number, string>;
}
type Op =
  | { kind: 'connect'; rid: string; token: string; subject: string }
  | { kind: 'disconnect'; rid: string; token: string }
  | { kind: 'subscribe' | 'unsubscribe'; rid: string; device: number; caller: string };
interface Outcome {
  status: number;
  code?: string;
}

/** One step of the sequential model: the next state of the request_id and the answer it gives. */
function apply(state: Conn | null, op: Op, entityOf: Map<number, string>): { state: Conn | null; outcome: Outcome } {
  switch (op.kind) {
    case 'connect': {
      const devices = state && state.subject === op.subject ? new Map(state.devices) : new Map<number, string>();
      return { state: { token: op.token, subject: op.subject, devices }, outcome: { status: 200 } };
    }
    case 'disconnect':
      return { state: state?.token === op.token ? null : state, outcome: { status: 200 } };
    default: {
      if (!state) return { state, outcome: { status: 403, code: 'NO_IDENTITY_BINDING' } };
      if (state.subject !== op.caller) return { state, outcome: { status: 403, code: 'IDENTITY_MISMATCH' } };
      const devices = new Map(state.devices);
      if (op.kind === 'subscribe') {
        devices.set(op.device, entityOf.get(op.device) as string);
        return { state: { ...state, devices }, outcome: { status: 200 } };
      }
      if (!devices.delete(op.device)) return { state, outcome: { status: 404, code: 'SUBSCRIPTION_NOT_FOUND' } };
      return { state: { ...state, devices }, outcome: { status: 200 } };
    }
  }
}

function* permutations<T>(xs: T[]): Generator<T[]> {
  if (xs.length <= 1) {
    yield xs;
    return;
  }
  for (let i = 0; i < xs.length; i++) {
    const rest = [...xs.slice(0, i), ...xs.slice(i + 1)];
    for (const p of permutations(rest)) yield [xs[i] as T, ...p];
  }
}

const sameConn = (a: Conn | null, b: Conn | null) =>
  a === null || b === null
    ? a === b
    : a.token === b.token && a.subject === b.subject && a.devices.size === b.devices.size && [...a.devices].every(([d, e]) => b.devices.get(d) === e);

async function execute(fleet: Fleet, pod: Pod, op: Op, tokens: Map<string, string>): Promise<Outcome> {
  const res =
    op.kind === 'connect'
      ? await fleet.callback(pod, fleet.connectBody(op.token, op.rid, { authorization: `Bearer ${tokens.get(op.subject)}` }))
      : op.kind === 'disconnect'
        ? await fleet.callback(pod, { action: 'disconnect', reason: 'client_closed', token: op.token, request: { url: `/events?request_id=${op.rid}`, headers: {} } })
        : await fleet.deviceLogs(pod, op.kind, { request_id: op.rid, device_id: op.device }, { authorization: `Bearer ${tokens.get(op.caller)}` });
  return res.statusCode === 200 ? { status: 200 } : { status: res.statusCode, code: res.json().code };
}

t.test(`random concurrent steps across 3 pods keep Redis exactly equal to the model (seed ${SEED}, ${STEPS} steps)`, async (t) => {
  const fleet = await startFleet(t, { pods: 3, oidc: true, env: { REGISTRY_SWEEP_INTERVAL_SECONDS: '3600' } });
  const r = rng(SEED);
  const subjects = ['alice', 'bob'] as const;
  const bearer = new Map(subjects.map((s) => [s, fleet.issuer!.token({ sub: s })]));
  const rids = Array.from({ length: 8 }, (_, i) => `rid-${i}`);
  // two devices share an entity id: a connection keeps watching it until both are unsubscribed
  const first = await findDeviceById(fleet.pods[0]!.deps.db, fleet.devices.entity[0]!);
  const twin = await fleet.devices.repo.create({ key: 'twin0000', device_model_id: first!.device_model_id, config: { deviceEntityId: 'sensor.0' } });
  const devices = [...fleet.devices.entity.slice(0, 4), twin.id];
  const entityOf = new Map<number, string>(devices.map((d, i) => [d, i < 4 ? `sensor.${i}` : 'sensor.0']));

  const model = new Map<string, Conn | null>(rids.map((rid) => [rid, null]));
  const pastTokens = new Map<string, string[]>(rids.map((rid) => [rid, []]));
  let tokenSeq = 0;
  let steps = 0;
  let rounds = 0;
  const counts: Record<string, number> = {};

  const randomOp = (): Op => {
    const rid = r.pick(rids);
    const conn = model.get(rid) ?? null;
    const roll = r.next();
    if (roll < 0.2) return { kind: 'connect', rid, token: `tok-${++tokenSeq}`, subject: r.next() < 0.75 && conn ? conn.subject : r.pick(subjects) };
    if (roll < 0.3) {
      const stale = pastTokens.get(rid) ?? [];
      const token = conn && r.next() < 0.6 ? conn.token : stale.length ? r.pick(stale) : `never-${++tokenSeq}`;
      return { kind: 'disconnect', rid, token };
    }
    const caller = conn && r.next() < 0.85 ? conn.subject : r.pick(subjects);
    const device = conn?.devices.size && r.next() < 0.5 ? r.pick([...conn.devices.keys()]) : r.pick(devices);
    return { kind: roll < 0.7 ? 'subscribe' : 'unsubscribe', rid, device, caller };
  };

  while (steps < STEPS) {
    const ops = Array.from({ length: 1 + r.int(6) }, randomOp);
    for (const op of ops) if (op.kind === 'connect') pastTokens.get(op.rid)!.push(op.token);
    const outcomes = await Promise.all(ops.map((op) => execute(fleet, r.pick(fleet.pods), op, bearer)));
    steps += ops.length;
    rounds += 1;
    for (const op of ops) counts[op.kind] = (counts[op.kind] ?? 0) + 1;

    const snap = await fleet.consistent(); // every cross-key invariant, or it throws
    const byRid = new Map<string, number[]>();
    ops.forEach((op, i) => byRid.set(op.rid, [...(byRid.get(op.rid) ?? []), i]));
    for (const rid of rids) {
      const stored = snap.connections[rid];
      const observed: Conn | null = stored
        ? { token: stored.token as string, subject: stored.subject as string, devices: new Map(Object.entries(snap.devices[rid] ?? {}).map(([d, e]) => [Number(d), e])) }
        : null;
      const indexes = byRid.get(rid) ?? [];
      let explained: Conn | null | undefined;
      for (const order of permutations(indexes)) {
        let state = model.get(rid) ?? null;
        let ok = true;
        for (const i of order) {
          const step = apply(state, ops[i] as Op, entityOf);
          const got = outcomes[i] as Outcome;
          if (step.outcome.status !== got.status || step.outcome.code !== got.code) {
            ok = false;
            break;
          }
          state = step.state;
        }
        if (ok && sameConn(state, observed)) {
          explained = state;
          break;
        }
      }
      if (explained === undefined) {
        t.fail(`round ${rounds}: no order of ${JSON.stringify(indexes.map((i) => [ops[i], outcomes[i]]))} explains ${rid} = ${JSON.stringify(stored)} ${JSON.stringify(snap.devices[rid])} from ${JSON.stringify(model.get(rid), (_k, v) => (v instanceof Map ? [...v] : v))}`);
        return;
      }
      model.set(rid, explained);
    }
  }
  t.pass(`${steps} steps in ${rounds} concurrent rounds: ${JSON.stringify(counts)}`);
  const final = await fleet.consistent();
  t.equal(Object.keys(final.connections).length, [...model.values()].filter(Boolean).length);
  t.equal(final.subscriptionCount, [...model.values()].reduce((n, c) => n + (c?.devices.size ?? 0), 0));
});
