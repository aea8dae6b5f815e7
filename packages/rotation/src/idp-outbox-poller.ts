import type { Logger } from '@iotsupport/observability';
import type { DeviceClients } from './device-clients.js';

export interface IdpOutboxPoller {
  /** Stops polling and waits for a pass in progress. */
  stop(): Promise<void>;
}

/**
 * The worker's retry of device clients the identity provider is not in step with: every
 * `intervalMs`, one pass over the due outbox rows (DeviceClients.applyDue). Several workers may
 * poll at once; each row is applied under its client's lock and removed once.
 */
export function startIdpOutboxPoller(clients: DeviceClients, intervalMs: number, logger: Logger): IdpOutboxPoller {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const pass = async () => {
    try {
      const { applied, failed } = await clients.applyDue();
      if (applied + failed > 0) logger.info({ applied, failed }, 'identity provider outbox pass');
    } catch (err) {
      logger.warn({ err }, 'identity provider outbox pass failed; retried next interval');
    }
  };
  const timer = setInterval(() => {
    if (stopped) return;
    running = running.then(pass);
  }, intervalMs);
  running = pass();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
