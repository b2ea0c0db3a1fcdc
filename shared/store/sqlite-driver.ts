import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { ConfigError } from '../runtime/config.js';

const require = createRequire(import.meta.url);

/**
 * Opens a SQLite database through better-sqlite3, loaded only here, on first use:
 * the Docker image leaves the native driver out unless built with WITH_SQLITE=true
 * (the Compose stack runs on PostgreSQL), and a process that never opens SQLite
 * must not need it. Asked for anyway, it stops with what to do instead of a stack.
 * (A require, not a dynamic import: under the test runner a dynamic import would
 * load a second copy of the modules sqlite-store shares with the rest.)
 */
export function openSqliteDatabase(file: string, options: Database.Options): Database.Database {
  let Driver: typeof Database;
  try {
    Driver = require('better-sqlite3') as typeof Database;
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    if (code === 'MODULE_NOT_FOUND' && /'better-sqlite3'/.test(message ?? '')) {
      throw new ConfigError(
        'DATABASE_URL names a SQLite file, but better-sqlite3 is not installed here: this image was built without SQLite. ' +
          'Use a postgres:// DATABASE_URL, or build the image with --build-arg WITH_SQLITE=true',
        { cause: error },
      );
    }
    throw error;
  }
  try {
    return new Driver(file, options);
  } catch (error) {
    // Installed without its install script (npm ci --ignore-scripts): the package is there, its addon is not.
    if (/Could not locate the bindings file/.test((error as Error).message)) {
      throw new ConfigError("DATABASE_URL names a SQLite file, but better-sqlite3's native addon was never built here (run npm rebuild better-sqlite3)", { cause: error });
    }
    throw error;
  }
}
