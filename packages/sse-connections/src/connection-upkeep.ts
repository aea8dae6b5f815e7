import type { Prober } from './prober.js';
import type { RegistrySweeper } from './registry-sweeper.js';

/**
 * The periodic checks of a pod, started and stopped together: the owner's probe of the
 * connections it owns (Prober) and the fleet-wide registry sweep (RegistrySweeper).
 */
export class ConnectionUpkeep {
  constructor(
    readonly prober: Prober,
    readonly sweeper: RegistrySweeper,
  ) {}

  start(): void {
    this.prober.start();
    this.sweeper.start();
  }

  /** Resolves once a sweep round in flight and its closes have ended. */
  async stop(): Promise<void> {
    this.prober.stop();
    await this.sweeper.stop();
  }
}
