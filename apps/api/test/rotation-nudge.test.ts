import t from 'tap';
import { Redis } from 'ioredis';
import { decodeRotationNudge, rotationNudgeChannel, type RotationNudgeMessage } from '@iotsupport/contracts';
import { LOCAL_REDIS_URL, eventually } from '@iotsupport/testkit';
import { buildTestApi } from './helpers.js';

t.test('POST /internal/rotation-nudge: 200 {"status":"ok"} and one broadcast per call, whatever the body', async (t) => {
  const { internalServer, config } = await buildTestApi(t);
  const listener = new Redis(LOCAL_REDIS_URL);
  t.teardown(() => listener.disconnect());
  const heard: RotationNudgeMessage[] = [];
  listener.on('message', (_channel: string, raw: string) => {
    const nudge = decodeRotationNudge(raw);
    if (nudge) heard.push(nudge);
  });
  await listener.subscribe(rotationNudgeChannel(config.REDIS_KEY_PREFIX));

  const bodies: Array<{ payload?: string; headers?: Record<string, string> }> = [
    {},
    { payload: '{}', headers: { 'content-type': 'application/json' } },
    { payload: '{not json', headers: { 'content-type': 'application/json' } },
    { payload: 'anything', headers: { 'content-type': 'text/plain' } },
  ];
  for (const body of bodies) {
    const res = await internalServer.inject({ method: 'POST', url: '/internal/rotation-nudge', ...body });
    t.equal(res.statusCode, 200, `body ${JSON.stringify(body.payload ?? null)} is ignored`);
    t.same(res.json(), { status: 'ok' });
  }
  await eventually(() => heard.length === bodies.length);
  t.same(
    heard.map((n) => n.source),
    ['internal', 'internal', 'internal', 'internal'],
    'one nudge per call, source internal',
  );
});
