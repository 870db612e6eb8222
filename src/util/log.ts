import { pino, type Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level?: string;
  /** Human-readable output (a terminal); JSON lines otherwise. */
  pretty?: boolean;
  /** Where log lines go; stderr by default so stdout stays for data. */
  destination?: number;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.EXAMLAB_LOG_LEVEL ?? 'info';
  const destination = options.destination ?? 2;
  if (options.pretty) {
    return pino({
      level,
      transport: {
        target: 'pino-pretty',
        options: { destination, colorize: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss' },
      },
    });
  }
  return pino({ level }, pino.destination({ fd: destination, sync: true }));
}
