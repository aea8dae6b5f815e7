export * from './errors.js';
export * from './log-channel.js';
export * from './rotation-nudge.js';
export * from './gateway.js';
export * from './stream-cursor.js';
export * from './stream-alive.js';
