export { createSecretBox, generateClientSecret, readableSecret, secretContext, SecretDecryptError, type SecretBox, type SecretBoxOptions } from './secret-box.js';
export { deviceClientId, parseDeviceClientId } from './client-id.js';
export { DeviceClients, type DeviceClientsDeps } from './device-clients.js';
export { startIdpOutboxPoller, type IdpOutboxPoller } from './idp-outbox-poller.js';
export type { NudgeSource, RotationNudger } from './nudge.js';
export { createMqttProvisioningNotifier, whenConnected, MqttNotConnectedError, type ProvisioningNotifier, type MqttProvisioningNotifierOptions } from './provisioning-notifier.js';
export { RotationStore, withRotationColumns, type RotationStoreOptions, type SecretPublication, type RotationSecretColumns, type RotationDatabase, type RotationTarget, type DashboardRow } from './rotation-store.js';
export { buildDashboard, categorize, type Dashboard, type DashboardDevice, type DashboardCategory } from './dashboard.js';
export {
  RotationService,
  DEFAULT_NOTICE_TIMEOUT_MS,
  type RotationServiceDeps,
  type RotationStatus,
  type ProvisioningResponse,
  type TickResult,
  type NoticeResult,
} from './rotation-service.js';
export {
  createRotationService,
  publishingNudger,
  PROVISIONING_TOPIC,
  type CreateRotationServiceOptions,
  type RotationServiceConfig,
} from './create-rotation-service.js';
export {
  ROTATION_QUEUE_NAME,
  FLEET_SCHEDULER_ID,
  TICK_SCHEDULER_ID,
  rotationQueuePrefix,
  createRotationQueue,
  ensureSchedulers,
  nextFleetRun,
  SchedulerWatchdog,
  type ScheduleSettings,
  type Repair,
  type RepairReason,
  type RotationJobName,
} from './scheduling.js';
export { createRotationWorker, scheduledSlot, type RotationWorkerOptions } from './rotation-worker.js';
export { createRotationMetrics, createRotationNoticeCounter, registerIdpOutboxGauge, registerRotationStateGauge, type RotationMetrics } from './metrics.js';
