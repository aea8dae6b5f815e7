/**
 * `make demo` (with `make dev` running): log lines for the seeded devices, the way devices send
 * them (NDJSON on MQTT `iotsupport/logsink`, QoS 1, coloured messages, a `relative_time` that ingest
 * drops), plus a `POST /internal/rotation-nudge` every few seconds so `rotation-updated` shows too.
 *   node bench/dist/demo-publisher.js [--interval-ms 1000] [--nudge-seconds 10] [--count 0 (forever)]
 * MQTT_URL, MQTT_TOPIC_PREFIX and INTERNAL_URL (http://127.0.0.1:3111) come from the environment.
 * docs/forwarding.md shows the three commands that open a stream, subscribe and watch it.
 */
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { DEMO_DEVICES } from '@iotsupport/db';

const { values: args } = parseArgs({
  options: {
    'interval-ms': { type: 'string', default: '1000' },
    'nudge-seconds': { type: 'string', default: '10' },
    count: { type: 'string', default: '0' },
  },
});
const mqttUrl = process.env.MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const topic = `${process.env.MQTT_TOPIC_PREFIX ?? ''}iotsupport/logsink`;
const internalUrl = process.env.INTERNAL_URL ?? `http://127.0.0.1:${process.env.INTERNAL_PORT ?? 3111}`;
const entities = DEMO_DEVICES.map((d) => d.config.deviceEntityId);
const LEVELS = ['info', 'info', 'info', 'warn', 'debug'];
const COLOUR = { info: '\u001b[32m', warn: '\u001b[33m', debug: '\u001b[90m' } as Record<string, string>;

const client = await mqtt.connectAsync(mqttUrl, { clientId: `iotsupport-demo-${process.pid}` });
const startedAt = Date.now();
let round = 0;
let stopping = false;
const stop = () => (stopping = true);
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
console.log(`demo: ${entities.join(', ')} -> ${mqttUrl} ${topic}; rotation nudges via ${internalUrl}/internal/rotation-nudge (Ctrl-C stops)`);

while (!stopping && (Number(args.count) === 0 || round < Number(args.count))) {
  round += 1;
  for (const [i, entity] of entities.entries()) {
    const lines = Array.from({ length: 1 + ((round + i) % 3) }, (_, l) => {
      const level = LEVELS[(round + l + i) % LEVELS.length]!;
      const reading = (20 + 5 * Math.sin((round + i * 7) / 5)).toFixed(1);
      return JSON.stringify({
        entity_id: entity,
        level,
        message: `${COLOUR[level]}[${level.toUpperCase()}]\u001b[0m round ${round} line ${l}: temperature ${reading} C`,
        relative_time: (Date.now() - startedAt) / 1000,
      });
    });
    await client.publishAsync(topic, lines.join('\n'), { qos: 1 });
  }
  console.log(`round ${round}: published to ${entities.length} devices`);
  if (Number(args['nudge-seconds']) > 0 && round % Math.max(1, Math.round((Number(args['nudge-seconds']) * 1000) / Number(args['interval-ms']))) === 0) {
    const answer = await fetch(`${internalUrl}/internal/rotation-nudge`, { method: 'POST' }).catch((err: Error) => err);
    console.log(`rotation nudge: ${answer instanceof Error ? answer.message : answer.status}`);
  }
  await new Promise((r) => setTimeout(r, Number(args['interval-ms'])));
}
await client.endAsync();
