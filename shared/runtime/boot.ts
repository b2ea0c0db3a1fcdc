import cluster from 'node:cluster';
import { ConfigError, loadConfig, type Config } from './config.js';
import { configureLogger, logger } from './logger.js';
import { exitOnSignals } from './lifecycle.js';

/**
 * The shared shape of an entry point: validated config, configured logger,
 * start, and stop on SIGTERM/SIGINT. A bad config or a failed start exits 1.
 */
export async function boot(service: string, start: (config: Config) => Promise<{ stop(): Promise<boolean> }>): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${JSON.stringify({ level: 'error', service, message: error.message })}\n`);
    process.exit(1);
  }
  // One of several API processes (API_PROCESSES) says which in every line.
  configureLogger({ level: config.logLevel, service, meta: cluster.isWorker ? { pid: process.pid } : undefined });
  try {
    const running = await start(config);
    exitOnSignals(() => running.stop());
  } catch (error) {
    logger.error('failed to start', { error });
    process.exit(1);
  }
}
