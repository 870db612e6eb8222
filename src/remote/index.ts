export * from './machine-session.js';
export * from './powershell.js';
export * from './ssh-client.js';
