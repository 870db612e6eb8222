export * from './ssh-gateway.js';
