import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import Database from 'better-sqlite3';
import pg from 'pg';
import { deleteTopology, topologyOf, type Topology } from '../../shared/broker/topology.js';
import { inheritedEnv, loadConfig, type Config } from '../../shared/runtime/config.js';
import { PostgresStore } from '../../shared/store/postgres-store.js';
import { SqliteStore } from '../../shared/store/sqlite-store.js';
import type { Store } from '../../shared/store/store.js';
import { endProcessesUsing } from './processes.js';

export type EnvOverrides = Record<string, string>;
export type StoreKind = 'sqlite' | 'postgres';

const env = inheritedEnv();
export const AMQP_URL = env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
/** A PostgreSQL role that may create databases; each namespace gets its own database. */
export const PG_ADMIN_URL = env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The stores every store-dependent suite runs against: TEST_STORES=sqlite,postgres (the default). */
export function testStores(): StoreKind[] {
  return (env.TEST_STORES ?? 'sqlite,postgres').split(',').map((s) => s.trim()) as StoreKind[];
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * One isolated world for a test: its own AMQP_PREFIX and its own database (a
 * SQLite file or a PostgreSQL database), removed again by cleanup(), so runs
 * never see each other's messages or rows.
 */
export class TestNamespace {
  readonly id = `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  readonly prefix = `test-${this.id}`;
  readonly dbFile = path.join(tmpdir(), `async-transfers-${this.id}.db`);
  readonly pgDatabase = `at_${this.id}`;
  /** The topology of the default settings; a system started with other retry delays also owns theirs. */
  readonly topology: Topology;
  private readonly topologies: Topology[] = [];
  private blocker: { release(): Promise<void> } | null = null;

  constructor(readonly store: StoreKind = 'sqlite') {
    this.topology = topologyOf(this.config());
  }

  get databaseUrl(): string {
    if (this.store === 'sqlite') return `sqlite:${this.dbFile}`;
    const url = new URL(PG_ADMIN_URL);
    url.pathname = `/${this.pgDatabase}`;
    return url.toString();
  }

  /** Creates the namespace's PostgreSQL database; SQLite creates its file on first open. */
  async prepare(): Promise<void> {
    if (this.store === 'postgres') await admin((c) => c.query(`CREATE DATABASE "${this.pgDatabase}"`));
  }

  /** Runs SQL straight against the namespace's database, as an earlier version or an operator would. */
  async execSql(statements: readonly string[]): Promise<void> {
    if (this.store === 'sqlite') {
      const db = new Database(this.dbFile);
      try {
        for (const sql of statements) db.exec(sql);
      } finally {
        db.close();
      }
      return;
    }
    const client = new pg.Client({ connectionString: this.databaseUrl });
    client.on('error', () => undefined);
    await client.connect();
    try {
      for (const sql of statements) await client.query(sql);
    } finally {
      await client.end();
    }
  }

  /** The environment a process of this namespace runs with. */
  env(overrides: EnvOverrides = {}): EnvOverrides {
    const result = {
      AMQP_URL,
      AMQP_PREFIX: this.prefix,
      DATABASE_URL: this.databaseUrl,
      PORT: '0',
      LOG_LEVEL: 'error',
      NOTIFY_LATENCY_MS: '0',
      SEED_DEMO_ACCOUNTS: 'true',
      SHUTDOWN_TIMEOUT_MS: '5000',
      ...overrides,
    };
    try {
      this.topologies.push(topologyOf(loadConfig(result)));
    } catch {
      // An invalid environment (a test of config errors) creates nothing on the broker.
    }
    return result;
  }

  config(overrides: EnvOverrides = {}): Config {
    return loadConfig(this.env(overrides));
  }

  /**
   * Takes the database away from the running processes until unblockDatabase():
   * SQLite gets an exclusive write lock held by another connection (reads still
   * work, writes time out); PostgreSQL stops accepting connections to the
   * namespace's database and ends the ones it has (nothing works).
   */
  async blockDatabase(): Promise<void> {
    if (this.store === 'sqlite') {
      const db = new Database(this.dbFile);
      db.exec('BEGIN EXCLUSIVE');
      this.blocker = {
        release: async () => {
          db.exec('ROLLBACK');
          db.close();
        },
      };
      return;
    }
    await admin(async (c) => {
      await c.query(`ALTER DATABASE "${this.pgDatabase}" ALLOW_CONNECTIONS false`);
      await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [this.pgDatabase]);
    });
    this.blocker = { release: () => admin((c) => c.query(`ALTER DATABASE "${this.pgDatabase}" ALLOW_CONNECTIONS true`)).then(() => undefined) };
  }

  async unblockDatabase(): Promise<void> {
    await this.blocker?.release();
    this.blocker = null;
  }

  /** The namespace's store, opened directly, without a broker (call prepare() first); the caller closes it. */
  openStore(): Promise<Store> {
    if (this.store === 'postgres') return PostgresStore.open(this.databaseUrl, { poolMax: 4 });
    return Promise.resolve(new SqliteStore(this.dbFile, { busyTimeoutMs: 2000 }));
  }

  async cleanup(): Promise<void> {
    await endProcessesUsing(this.prefix);
    await this.unblockDatabase();
    const connection = await amqp.connect(AMQP_URL);
    connection.on('error', () => undefined);
    try {
      for (const t of this.topologies) await deleteTopology(connection, t);
    } finally {
      await connection.close().catch(() => undefined);
    }
    await this.dropDatabase();
  }

  /** Removes the namespace's database (and nothing on the broker): cleanup for suites that never touch it. */
  async dropDatabase(): Promise<void> {
    if (this.store === 'postgres') {
      await admin((c) => c.query(`DROP DATABASE IF EXISTS "${this.pgDatabase}" WITH (FORCE)`));
    } else {
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${this.dbFile}${suffix}`, { force: true });
    }
  }
}
