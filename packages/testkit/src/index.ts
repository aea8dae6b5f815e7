export * from './isolation.js';
export * from './es-standin/index.js';
export * from './oidc-issuer.js';
export * from './gateway-standin/index.js';
export * from './sse-client.js';
export * from './ports.js';
export * from './metrics.js';
export * from './http-body.js';
