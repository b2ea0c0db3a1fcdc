import { randomInt } from 'node:crypto';
import pg from 'pg';
import { logger } from '../runtime/logger.js';

/**
 * How workers sharing a PostgreSQL database tell whether another one is alive:
 * each holds a session-level advisory lock (this namespace, its own id) on a
 * connection of its own for as long as it runs. A worker killed with -9 or a lost
 * machine closes that connection, PostgreSQL drops the lock at once, and its
 * claims stop counting; a worker that only lost the broker keeps it, and with it
 * its claims. `LIVE_HOLDER` is the SQL test the claim uses.
 */
export const LIVENESS_LOCK_NAMESPACE = 0x616c7665;

/** True when the claim's worker (its token is its lock id) holds its liveness lock in this database. */
export const LIVE_HOLDER = (token: string) => `EXISTS (
  SELECT 1 FROM pg_locks l
  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND l.classid = ${LIVENESS_LOCK_NAMESPACE} AND l.objid = (${token})::oid)`;

export class LivenessLock {
  private client: pg.Client | null = null;
  private closed = false;
  private retry: NodeJS.Timeout | null = null;

  private constructor(
    private readonly url: string,
    readonly id: number,
  ) {}

  /** Takes a lock id no other live process holds. */
  static async acquire(url: string): Promise<LivenessLock> {
    for (let tries = 0; ; tries++) {
      const lock = new LivenessLock(url, randomInt(1, 2 ** 31 - 1));
      if (await lock.connect()) return lock;
      await lock.close();
      if (tries >= 5) throw new Error('could not take a liveness lock in PostgreSQL');
    }
  }

  /** True once this connection holds the lock. */
  private async connect(): Promise<boolean> {
    const client = new pg.Client({ connectionString: this.url, application_name: 'async-transfers-worker-liveness' });
    client.on('error', (err) => {
      logger.warn('the worker lost its PostgreSQL liveness connection; other workers now take its claims as dead', { error: err.message });
      this.reconnectSoon();
    });
    client.on('end', () => this.reconnectSoon());
    await client.connect();
    this.client = client;
    const { rows } = await client.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS got', [LIVENESS_LOCK_NAMESPACE, this.id]);
    return rows[0]!.got;
  }

  /** After an outage, takes the same lock again so the claims it made count once more. */
  private reconnectSoon(): void {
    if (this.closed || this.retry) return;
    const old = this.client;
    this.client = null;
    old?.removeAllListeners('end');
    void old?.end().catch(() => undefined);
    this.retry = setTimeout(() => {
      this.retry = null;
      this.connect().then(
        (got) => {
          if (!got) this.reconnectSoon();
          else logger.info('the worker holds its PostgreSQL liveness lock again');
        },
        () => this.reconnectSoon(),
      );
    }, 1000);
    this.retry.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const client = this.client;
    this.client = null;
    client?.removeAllListeners('end');
    await client?.end().catch(() => undefined);
  }
}
