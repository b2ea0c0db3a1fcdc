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
  configureLogger({ level: config.logLevel, service });
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
