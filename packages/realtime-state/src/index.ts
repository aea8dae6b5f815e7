export * from './keys.js';
export * from './registry.js';
export { SCRIPT_NAMES, loadScript, type ScriptName } from './scripts.js';
export * from './snapshot.js';
export * from './ownership.js';
export * from './sweeper.js';
export * from './metrics.js';
