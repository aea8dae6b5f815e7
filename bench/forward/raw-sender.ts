/**
 * The SSE Gateway stand-in's own `/internal/send` rate, as its own process (like an api pod):
 *   node bench/dist/forward/raw-sender.js <gateway url> <seconds> <in flight> <token> [<token> ...]
 * Keeps `in flight` requests open over a keep-alive undici Pool (what a pod does, minus everything
 * else a pod does), round robin over the tokens, for `seconds`; prints `{"sent":N,"seconds":S,"errors":E}`.
 */
import { Pool } from 'undici';

const [url, secondsArg, inFlightArg, ...tokens] = process.argv.slice(2);
if (!url || !secondsArg || !inFlightArg || tokens.length === 0) {
  process.stderr.write('usage: raw-sender.js <gateway url> <seconds> <in flight> <token>...\n');
  process.exit(2);
}
const inFlight = Number(inFlightArg);
const pool = new Pool(url, { connections: inFlight, pipelining: 1 });
const bodies = tokens.map((token) => JSON.stringify({ token, event: { name: 'raw', data: '{"raw":true}' } }));
const deadline = performance.now() + Number(secondsArg) * 1000;
let sent = 0;
let errors = 0;
let next = 0;

async function lane(): Promise<void> {
  while (performance.now() < deadline) {
    const body = bodies[next++ % bodies.length]!;
    try {
      const res = await pool.request({ method: 'POST', path: '/internal/send', headers: { 'content-type': 'application/json' }, body });
      await res.body.dump();
      if (res.statusCode === 200) sent += 1;
      else errors += 1;
    } catch {
      errors += 1;
    }
  }
}

const start = performance.now();
await Promise.all(Array.from({ length: inFlight }, () => lane()));
const seconds = (performance.now() - start) / 1000;
await pool.close();
process.stdout.write(`${JSON.stringify({ sent, seconds, errors })}\n`);
