/** Runs until SIGINT/SIGTERM, then shuts down cleanly once (a second signal forces exit 1). */
import type { Logger } from 'pino';

export function runUntilSignal(logger: Logger, shutdown: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal: sig }, 'second signal: exiting without a clean shutdown');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal: sig }, 'shutting down');
      shutdown().then(
        () => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolve();
        },
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exitCode = 1;
          resolve();
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
