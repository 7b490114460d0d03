/** Structured JSON logs (pino) to stderr, so stdout stays free for command output. */
import { pino } from 'pino';
import type { Logger } from 'pino';

export function createLogger(level: string, name: string): Logger {
  return pino({ name, level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
}
