import { Type } from 'typebox';
import { publishRotationNudge } from '@iotsupport/contracts';
import type { ApiRoutePlugin } from '../deps.js';

const NudgeReply = Type.Object({ status: Type.Literal('ok') }, { additionalProperties: false });

/**
 * `POST /internal/rotation-nudge` (internal listener): 200 `{"status":"ok"}` and one
 * `rotation-updated` broadcast to every SSE connection of the fleet (each pod sends it to the
 * connections it owns; `sse_rotation_nudge_broadcast_total{source="internal"}`).
 * The body is ignored, whatever it is: callers (cron jobs, scripts) need not agree on one.
 */
const rotationNudgeRoutes: ApiRoutePlugin = async (app, deps) => {
  // Encapsulated to this plugin: any content type, any (even broken) body is accepted and dropped.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, undefined));

  app.post('/internal/rotation-nudge', { schema: { hide: true, response: { 200: NudgeReply } } }, async () => {
    await publishRotationNudge(deps.redis, deps.config.REDIS_KEY_PREFIX, 'internal');
    return { status: 'ok' as const };
  });
};

export default rotationNudgeRoutes;
