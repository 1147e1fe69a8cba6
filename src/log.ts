import pino, { type Logger } from 'pino';

export type { Logger };

/** The one root logger; components take `log.child({ component })`. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    { level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/** A logger that drops everything: for unit tests and short CLI commands. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
