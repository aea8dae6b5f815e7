export * from './keys.js';
export * from './registry.js';
export * from './snapshot.js';
export * from './ownership.js';
export * from './metrics.js';
