export * from './guest-agent.js';
export * from './host-connection.js';
export * from './machine-session.js';
export * from './powershell.js';
export * from './ssh-client.js';
