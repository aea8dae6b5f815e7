import t from 'tap';
import { Redis } from 'ioredis';
import { decodeRotationNudge, publishRotationNudge, rotationNudgeChannel, type RotationNudgeMessage } from '@iotsupport/contracts';
import { LOCAL_REDIS_URL, eventually } from '@iotsupport/testkit';
import { buildTestApi } from './helpers.js';

t.test('POST /internal/rotation-nudge: 200 {"status":"ok"} and one broadcast per call, whatever the body', async (t) => {
  const { internalServer, config } = await buildTestApi(t);
  const listener = new Redis(LOCAL_REDIS_URL);
  const sentinelPublisher = new Redis(LOCAL_REDIS_URL);
  t.teardown(() => {
    listener.disconnect();
    sentinelPublisher.disconnect();
  });
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
  // Published after every call answered, so it arrives after all their nudges: once it is here,
  // a second broadcast from any call would be here too.
  await publishRotationNudge(sentinelPublisher, config.REDIS_KEY_PREFIX, 'worker');
  await eventually(() => heard.some((n) => n.source === 'worker'));
  t.same(
    heard.map((n) => n.source),
    ['internal', 'internal', 'internal', 'internal', 'worker'],
    'one nudge per call, source internal (then the sentinel)',
  );
});
