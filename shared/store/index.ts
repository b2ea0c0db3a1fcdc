import { ConfigError, type Config } from '../runtime/config.js';
import { PostgresStore } from './postgres-store.js';
import type { Store } from './store.js';

export type { Store } from './store.js';

/** Opens the store DATABASE_URL names, migrated and ready. */
export async function openStore(config: Config): Promise<Store> {
  const db = config.database;
  if (db.kind === 'postgres') return PostgresStore.open(db.url, { poolMax: db.poolMax });
  const { SqliteStore } = await loadSqlite();
  try {
    return new SqliteStore(db.file, { busyTimeoutMs: config.sqliteBusyTimeoutMs });
  } catch (error) {
    // Installed without its install script (npm ci --ignore-scripts): the package is there, its addon is not.
    if (/Could not locate the bindings file/.test((error as Error).message)) {
      throw new ConfigError(`DATABASE_URL names a SQLite file, but better-sqlite3's native addon was never built here (run npm rebuild better-sqlite3)`, { cause: error });
    }
    throw error;
  }
}

/**
 * better-sqlite3 is loaded only when SQLite is asked for: the Docker image leaves
 * it out unless built with WITH_SQLITE=true (the Compose stack runs on PostgreSQL),
 * and a process that never opens SQLite must not need it.
 */
async function loadSqlite(): Promise<typeof import('./sqlite-store.js')> {
  try {
    return await import('./sqlite-store.js');
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    if (code === 'ERR_MODULE_NOT_FOUND' && /'better-sqlite3'/.test(message ?? '')) {
      throw new ConfigError(
        'DATABASE_URL names a SQLite file, but better-sqlite3 is not installed here: this image was built without SQLite. ' +
          'Use a postgres:// DATABASE_URL, or build the image with --build-arg WITH_SQLITE=true',
        { cause: error },
      );
    }
    throw error;
  }
}
