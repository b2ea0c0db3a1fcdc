import { configureLogger } from '../../shared/logger.js';
import { inheritedEnv } from '../../shared/config.js';

/** Root hooks: in-process components log only errors unless TEST_LOG_LEVEL asks for more. */
export const mochaHooks = {
  beforeAll(): void {
    configureLogger({ level: inheritedEnv().TEST_LOG_LEVEL ?? 'error', service: 'test' });
  },
};
