import { loadConfigOrExit } from '@iotsupport/config';
import { createApiPod } from './pod.js';

/** An api pod as deployed: config → createApiPod (pod.ts) → start; SIGTERM runs its shutdown sequence and exits with its code. */
const pod = createApiPod(loadConfigOrExit('api'));
pod.lifecycle.installSignalHandlers();
pod.lifecycle.installCrashHandlers();
try {
  await pod.start();
} catch (err) {
  pod.logger.fatal({ err }, 'api failed to start');
  process.exit(1);
}
