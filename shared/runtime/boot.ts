import cluster from 'node:cluster';
import { ConfigError, loadConfig, type Config } from './config.js';
import { configureLogger, logger } from './logger.js';
import { exitOnSignals } from './lifecycle.js';

/**
 * The shared shape of an entry point: validated config, configured logger,
 * start, and stop on SIGTERM/SIGINT. A bad config or a failed start exits 1.
 */
export async function boot(service: string, start: (config: Config) => Promise<{ stop(): Promise<boolean> }>): Promise<void> {
  // A setting this process cannot work with: one line saying which, not a stack trace.
  const refuse: (error: ConfigError) => never = (error) => {
    process.stderr.write(`${JSON.stringify({ level: 'error', service, message: error.message })}\n`);
    process.exit(1);
  };
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    refuse(error);
  }
  // One of several API processes (API_PROCESSES) says which in every line.
  configureLogger({ level: config.logLevel, service, meta: cluster.isWorker ? { pid: process.pid } : undefined });
  // A bug that escapes every handler leaves the process in an unknown state: say so as a JSON
  // line like every other, then exit 1 so the supervisor (compose, systemd) starts a fresh one.
  // Nothing is lost: unacked deliveries go back to the queue, unpublished events stay in the outbox.
  const fatal = (message: string) => (error: unknown) => {
    logger.error(message, { error });
    process.exit(1);
  };
  process.on('uncaughtException', fatal('uncaught exception, exiting'));
  process.on('unhandledRejection', fatal('unhandled promise rejection, exiting'));
  try {
    const running = await start(config);
    exitOnSignals(() => running.stop());
  } catch (error) {
    // Found only once starting, e.g. SQLite asked of an image built without it.
    if (error instanceof ConfigError) refuse(error);
    logger.error('failed to start', { error });
    process.exit(1);
  }
}
