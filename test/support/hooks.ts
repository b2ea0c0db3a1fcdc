import type { Context } from 'mocha';
import { inheritedEnv } from '../../shared/runtime/config.js';
import { configureLogger, logger } from '../../shared/runtime/logger.js';
import { captureTransport, takeTestLines } from './log-capture.js';

/** Root hooks: capture every log line; show a test's lines only when it fails. */
export const mochaHooks = {
  beforeAll(): void {
    configureLogger({ level: inheritedEnv().TEST_LOG_LEVEL ?? 'debug', service: 'test' });
    logger.clear();
    logger.add(captureTransport);
  },
  beforeEach(): void {
    takeTestLines();
  },
  afterEach(this: Context): void {
    const lines = takeTestLines();
    if (this.currentTest?.state === 'failed' && lines.length > 0) {
      process.stderr.write(`\n--- log lines of the failed test "${this.currentTest.title}" (last 200) ---\n${lines.slice(-200).join('\n')}\n---\n`);
    }
  },
};
