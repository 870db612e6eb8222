export * from './authenticator.js';
export * from './failed-tokens.js';
export * from './credentials.js';
export * from './principal.js';
export * from './session-registry.js';
export * from './tokens.js';
export * from './staff-tokens.js';
