import type { Config } from '../runtime/config.js';
import { PostgresStore } from './postgres-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

export type { Store } from './store.js';

/** Opens the store DATABASE_URL names, migrated and ready. */
export async function openStore(config: Config): Promise<Store> {
  const db = config.database;
  if (db.kind === 'postgres') return PostgresStore.open(db.url, { poolMax: db.poolMax });
  return new SqliteStore(db.file, { busyTimeoutMs: config.sqliteBusyTimeoutMs });
}
