export { deviceStreamKeys, type DeviceStreamKeys } from './keys.js';
export { streamRetention, epochCandidate, type StreamRetention, type RetentionSettings } from './retention.js';
export { defineStreamScripts } from './scripts.js';
export { queueAppendBatch, appendResult, type StreamBatch, type AppendResult } from './append-batch.js';
export { readAfterCursor, streamHead, type ReadAfterCursor, type StreamLine } from './read-after-cursor.js';
