import pg from 'pg';
import type { StoredApiKey } from '../domain/api-keys.js';
import { AppError } from '../domain/errors.js';
import {
  checkTransfer,
  newTransfer,
  requestFingerprint,
  resolveReplay,
  type Account,
  type IdempotencyClaim,
  type TransferRequest,
} from '../domain/ledger.js';
import type { Channel } from '../domain/notifications.js';
import { decideClaims } from '../domain/send-claims.js';
import { logger } from '../runtime/logger.js';
import { LIVE_HOLDER, LivenessLock } from './postgres-liveness.js';
import { POSTGRES_MIGRATIONS } from './postgres-schema.js';
import {
  iso,
  toAccount,
  toApiKey,
  toClaimCandidate,
  toClaimedEvents,
  toNotifications,
  toTransfer,
  type AccountRow,
  type ApiKeyRow,
  type ClaimRow,
  type NotificationRow,
  type OutboxRow,
  type TransferRow,
} from './rows.js';
import {
  outboxEventFor,
  type AttemptRecord,
  type Claimant,
  type ClaimedEvent,
  type OutboxLease,
  type SendClaim,
  type Store,
  type TransferReceipt,
  type TransferRecord,
} from './store.js';

/** BIGINT arrives as a string by default; our amounts stay far below 2^53, so numbers are exact. */
const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

const TRANSFER_WRITE = `
  WITH locked AS (
    SELECT id FROM accounts WHERE id IN ($2, $3) ORDER BY id FOR UPDATE
  ), debit AS (
    UPDATE accounts SET balance_minor = balance_minor - $4
    WHERE id = $2 AND balance_minor >= $4 AND (SELECT count(*) FROM locked) = 2
    RETURNING id
  ), credit AS (
    UPDATE accounts SET balance_minor = balance_minor + $4 WHERE id = $3 AND EXISTS (SELECT 1 FROM debit)
    RETURNING id
  ), transfer AS (
    INSERT INTO transfers (id, from_account, to_account, amount_minor, currency, reference, idempotency_key, request_hash, created_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE EXISTS (SELECT 1 FROM credit)
    RETURNING id
  )
  INSERT INTO outbox (id, transfer_id, type, payload, created_at, lease_owner, lease_until)
  SELECT $10, id, $11, $12, $9, $13, now() + make_interval(secs => $14::double precision / 1000) FROM transfer
  RETURNING id`;

/** The advisory lock a transaction holds while it processes an Idempotency-Key. */
export const idempotencyLockName = (key: string) => `idempotency:${key}`;

/** Any number works as long as every process uses the same one: it serialises migrations across processes. */
const MIGRATION_LOCK = 0x6173796e;

/**
 * SQLSTATE classes and driver errors that mean "cannot reach or use the database
 * now": connection exceptions (08), insufficient resources (53), operator
 * intervention such as a restart, a terminated backend or a statement timeout (57),
 * a lock timeout, and socket errors.
 */
function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  // 55P03: lock_timeout passed waiting for a row another session holds (57014, statement_timeout, is class 57).
  if (typeof code === 'string' && (/^(08|53|57)/.test(code) || code === '55P03')) return true;
  if (typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EPIPE|EHOSTUNREACH)$/.test(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|Query read timeout/.test(message);
}

/** Deadlocks and serialization failures: the transaction was rolled back whole and may simply run again. */
const isRetryable = (error: unknown) => /^(40P01|40001)$/.test(String((error as { code?: unknown }).code ?? ''));

function translate(error: unknown): unknown {
  if (error instanceof AppError) return error;
  if (isUnavailable(error)) {
    return new AppError('database_unavailable', 'the database is unavailable, try again later', undefined, { cause: error });
  }
  return error;
}

type Row = Record<string, any>;

const NOTIFICATIONS_JSON = `(SELECT json_agg(n) FROM notifications n WHERE n.transfer_id = t.id)`;

/**
 * The shared store for several processes or machines. Same behaviour as the
 * SQLite store: one transaction per transfer with both accounts locked in id
 * order (no deadlock between A->B and B->A), and an outbox claimed with
 * FOR UPDATE SKIP LOCKED so several API replicas never publish the same event twice.
 */
export class PostgresStore implements Store {
  private readonly liveness: LivenessLock[] = [];

  private constructor(
    private readonly pool: pg.Pool,
    private readonly url: string,
  ) {}

  static async open(url: string, options: { poolMax: number }): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolMax,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      // The server gives up first (57014, rolled back, an outage: 503) so that the
      // client-side timeout, after which an outcome would be unknown, never fires in practice.
      statement_timeout: 10_000,
      lock_timeout: 5000,
      idle_in_transaction_session_timeout: 15_000,
      query_timeout: 15_000,
      application_name: 'async-transfers',
      types,
    });
    // An idle client losing its connection emits here; without a listener it would crash the process.
    pool.on('error', (err) => logger.warn('PostgreSQL idle client error', { error: err.message }));
    const store = new PostgresStore(pool, url);
    await store.migrate();
    return store;
  }

  private async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
      const { rows } = await client.query('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations');
      for (const [index, sql] of POSTGRES_MIGRATIONS.entries()) {
        const version = index + 1;
        if (version <= rows[0].v) continue;
        await client.query('BEGIN');
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
        await client.query('COMMIT');
      }
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
      client.release();
    }
  }

  /** Any failure to get a connection (refused, database gone or closed to connections, auth) is an outage. */
  private async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (error) {
      throw new AppError('database_unavailable', 'the database is unavailable, try again later', undefined, { cause: error });
    }
  }

  /** Runs fn on a pooled connection outside a transaction (each statement commits on its own). */
  private async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.connect();
    let broken = false;
    try {
      return await fn(client);
    } catch (error) {
      broken = isUnavailable(error);
      throw translate(error);
    } finally {
      client.release(broken);
    }
  }

  /** One statement; `name` makes it a prepared statement, parsed once per connection. */
  private async query<R extends object = Row>(sql: string, params: unknown[] = [], name?: string): Promise<R[]> {
    return this.withClient(async (c) => (await c.query<R>(name ? { name, text: sql, values: params } : { text: sql, values: params })).rows);
  }

  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.connect();
      let broken = false;
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        broken = isUnavailable(error);
        if (!broken) await client.query('ROLLBACK').catch(() => undefined);
        if (isRetryable(error) && attempt < 3) continue;
        throw translate(error);
      } finally {
        // A client whose connection failed (or timed out mid-query) must not go back into the pool.
        client.release(broken);
      }
    }
  }

  async seedAccounts(accounts: readonly Account[]): Promise<void> {
    await this.transaction(async (c) => {
      for (const a of accounts) {
        await c.query(
          `INSERT INTO accounts (id, owner_name, email, phone, currency, balance_minor) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
          [a.id, a.ownerName, a.email, a.phone, a.currency, a.balanceMinor],
        );
      }
    });
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1');
  }

  async close(): Promise<void> {
    await Promise.all(this.liveness.splice(0).map((lock) => lock.close()));
    if (!this.pool.ended) await this.pool.end();
  }

  /**
   * Two round trips: read both accounts and run the ledger's checks, then one
   * statement that locks both rows in id order (no deadlock between A->B and
   * B->A), debits under a balance guard, credits, and inserts the transfer and its
   * outbox event, atomically. The guard settles the one race the read leaves open
   * (the balance moving in between); ids and currencies never change. With an
   * Idempotency-Key the whole runs in a transaction holding the key's advisory lock.
   */
  executeTransfer(request: TransferRequest, claim: IdempotencyClaim | null, lease: OutboxLease): Promise<TransferReceipt> {
    if (!claim) return this.withClient((c) => this.transfer(c, request, null, lease));
    return this.transaction(async (c) => {
      // Another replica holding this key right now is still processing it: answer 409 rather than wait.
      const { rows: lock } = await c.query({ name: 'idempotency-lock', text: 'SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS got', values: [idempotencyLockName(claim.key)] });
      if (!lock[0].got) throw new AppError('idempotency_in_flight', 'a request with this Idempotency-Key is still being processed; retry shortly');
      const { rows } = await c.query({ name: 'idempotency-find', text: 'SELECT id, request_hash FROM transfers WHERE idempotency_key = $1', values: [claim.key] });
      if (rows[0]) {
        const { rows: from } = await c.query({ name: 'account-currency', text: 'SELECT currency FROM accounts WHERE id = $1', values: [request.fromAccount] });
        return { replayed: true, transferId: resolveReplay({ transferId: rows[0].id, requestHash: rows[0].request_hash }, request, from[0]?.currency ?? null) };
      }
      return this.transfer(c, request, claim, lease);
    });
  }

  private async transfer(c: pg.PoolClient, request: TransferRequest, claim: IdempotencyClaim | null, lease: OutboxLease): Promise<TransferReceipt> {
    const { rows: found } = await c.query({ name: 'accounts-pair', text: 'SELECT * FROM accounts WHERE id IN ($1, $2)', values: [request.fromAccount, request.toAccount] });
    const from = found.find((r) => r.id === request.fromAccount);
    const to = found.find((r) => r.id === request.toAccount);
    const currency = checkTransfer(request, from && toAccount(from), to && toAccount(to));
    const transfer = newTransfer(request, currency, new Date());
    const event = outboxEventFor(transfer);
    const values = [
      transfer.id, transfer.fromAccount, transfer.toAccount, transfer.amountMinor, currency, transfer.reference,
      claim?.key ?? null, claim ? requestFingerprint(request, currency) : null, transfer.createdAt,
      event.id, event.type, event.payload, lease.owner, lease.leaseMs,
    ];
    for (let attempt = 1; ; attempt++) {
      try {
        const written = await c.query({ name: 'transfer-write', text: TRANSFER_WRITE, values });
        // The guard refused: the balance dropped between the read and the write.
        if (written.rowCount !== 1) throw new AppError('insufficient_funds', `account ${request.fromAccount} has insufficient funds`);
        return { replayed: false, transfer, event };
      } catch (error) {
        // A deadlock the ordered lock should prevent is still retried: the statement is atomic.
        // Inside a transaction (with a key) the whole transaction retries instead.
        if (!isRetryable(error) || attempt >= 3 || claim) throw error;
      }
    }
  }

  async findTransfer(id: string): Promise<TransferRecord | null> {
    if (!isUuid(id)) return null;
    const [row] = await this.query<TransferRow & { notifications: NotificationRow[] | null }>(
      `SELECT t.*, ${NOTIFICATIONS_JSON} AS notifications FROM transfers t WHERE t.id = $1`,
      [id],
      'find-transfer',
    );
    return row ? { ...toTransfer(row), notifications: toNotifications(row.notifications) } : null;
  }

  async findAccount(id: string): Promise<Account | null> {
    const [row] = await this.query<AccountRow>('SELECT * FROM accounts WHERE id = $1', [id], 'find-account');
    return row ? toAccount(row) : null;
  }

  async claimOutbox(lease: OutboxLease, limit: number, afterSeq: number): Promise<ClaimedEvent[]> {
    // SKIP LOCKED: rows another relay is claiming this instant are left to it, not waited for.
    const rows = await this.query<OutboxRow>(
      `UPDATE outbox SET lease_owner = $1, lease_until = now() + make_interval(secs => $2::double precision / 1000)
       WHERE seq IN (
         SELECT seq FROM outbox
         WHERE published_at IS NULL AND seq > $4 AND lease_until < now()
         ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED)
       RETURNING seq, id, transfer_id, type, payload, created_at`,
      [lease.owner, lease.leaseMs, limit, afterSeq],
      'claim-outbox',
    );
    return toClaimedEvents(rows);
  }

  async renewLeases(lease: OutboxLease, ids: readonly string[]): Promise<string[]> {
    const rows = await this.query<{ id: string }>(
      `UPDATE outbox SET lease_until = now() + make_interval(secs => $3::double precision / 1000)
       WHERE id = ANY($1::uuid[]) AND lease_owner = $2 AND published_at IS NULL RETURNING id`,
      [ids, lease.owner, lease.leaseMs],
      'renew-leases',
    );
    return rows.map((r) => r.id);
  }

  async markPublished(ids: readonly string[]): Promise<void> {
    await this.query('UPDATE outbox SET published_at = now(), lease_owner = NULL WHERE id = ANY($1::uuid[]) AND published_at IS NULL', [ids], 'mark-published');
  }

  async releaseOutbox(owner: string): Promise<void> {
    await this.query(`UPDATE outbox SET lease_until = '-infinity', lease_owner = NULL WHERE lease_owner = $1 AND published_at IS NULL`, [owner]);
  }

  async outboxStats(): Promise<{ unpublished: number; oldestCreatedAt: string | null }> {
    const [row] = await this.query<{ unpublished: number; oldest: Date | null }>(
      'SELECT COUNT(*)::int AS unpublished, MIN(created_at) AS oldest FROM outbox WHERE published_at IS NULL',
    );
    return { unpublished: row!.unpublished, oldestCreatedAt: row!.oldest === null ? null : iso(row!.oldest) };
  }

  async registerClaimant(workerId: string, leaseMs: number): Promise<Claimant> {
    const lock = await LivenessLock.acquire(this.url);
    this.liveness.push(lock);
    return { workerId, token: String(lock.id), leaseMs };
  }

  async claimSends(transferId: string, channels: readonly Channel[], claimant: Claimant, options: { replay: boolean }): Promise<SendClaim | null> {
    if (!isUuid(transferId)) return null;
    // One round trip for what a first delivery finds: channels with no row yet are pending and
    // nobody's (the claim rule grants such a channel), so they are inserted already claimed.
    const [sender] = await this.query<{ owner_name: string; email: string; phone: string; fresh: Channel[] }>(
      `WITH sender AS (
         SELECT a.owner_name, a.email, a.phone FROM transfers t JOIN accounts a ON a.id = t.from_account WHERE t.id = $1
       ), fresh AS (
         INSERT INTO notifications (transfer_id, channel, status, attempts, updated_at, claimed_by, claim_token, claim_until)
         SELECT $1, c, 'pending', 0, now(), $3, $4, now() + make_interval(secs => $5::double precision / 1000)
         FROM unnest($2::text[]) AS c WHERE EXISTS (SELECT 1 FROM sender)
         ON CONFLICT DO NOTHING
         RETURNING channel
       )
       SELECT sender.*, ARRAY(SELECT channel FROM fresh) AS fresh FROM sender`,
      [transferId, channels, claimant.workerId, claimant.token, claimant.leaseMs],
      'claim-fresh',
    );
    if (!sender) return null;
    const contact = { name: sender.owner_name, email: sender.email, phone: sender.phone };
    const rest = channels.filter((c) => !sender.fresh.includes(c));
    if (rest.length === 0) return { contact, granted: [...channels], held: [], unparked: [] };
    // Channels with a row: lock them, let the rule decide, take what it grants.
    const decision = await this.transaction(async (c) => {
      // pg_locks is read only for a claim another worker holds within its lease.
      const { rows } = await c.query<ClaimRow>({
        name: 'claim-rows',
        text: `SELECT n.*, CASE WHEN n.claimed_by IS NOT NULL AND n.claimed_by <> $3 AND n.claim_until > now()
                                THEN ${LIVE_HOLDER('n.claim_token')} ELSE false END AS holder_alive
               FROM notifications n WHERE n.transfer_id = $1 AND n.channel = ANY($2::text[]) ORDER BY n.channel FOR UPDATE`,
        values: [transferId, rest, claimant.workerId],
      });
      const decided = decideClaims(
        rows.map((r) => toClaimCandidate(r, r.holder_alive === true)),
        options,
      );
      if (decided.granted.length > 0) {
        await c.query({
          name: 'claim-take',
          text: `UPDATE notifications SET claimed_by = $3, claim_token = $4, claim_until = now() + make_interval(secs => $5::double precision / 1000),
                   status = 'pending', parked_at = NULL
                 WHERE transfer_id = $1 AND channel = ANY($2::text[])`,
          values: [transferId, decided.granted, claimant.workerId, claimant.token, claimant.leaseMs],
        });
      }
      return decided;
    });
    const granted = [...sender.fresh, ...decision.granted];
    return { contact, ...decision, granted: channels.filter((c) => granted.includes(c)) };
  }

  async releaseClaims(transferId: string, channels: readonly Channel[], claimant: Claimant): Promise<void> {
    await this.query(
      `UPDATE notifications SET claimed_by = NULL, claim_token = NULL, claim_until = '-infinity'
       WHERE transfer_id = $1 AND channel = ANY($2::text[]) AND claimed_by = $3`,
      [transferId, channels, claimant.workerId],
    );
  }

  async recordAttempts(transferId: string, attempts: readonly AttemptRecord[], claimant: Claimant): Promise<void> {
    if (attempts.length === 0) return;
    // Only the claimant's own claim is dropped: another worker's (taken after ours lapsed) stays.
    await this.query(
      `INSERT INTO notifications (transfer_id, channel, status, attempts, last_error, updated_at)
       SELECT $1, a.channel, a.status, 1, a.error, now() FROM unnest($2::text[], $3::text[], $4::text[]) AS a(channel, status, error)
       ON CONFLICT (transfer_id, channel) DO UPDATE SET
         status = EXCLUDED.status, attempts = notifications.attempts + 1,
         last_error = EXCLUDED.last_error, updated_at = EXCLUDED.updated_at, parked_at = NULL,
         claim_token = CASE WHEN notifications.claimed_by = $5 THEN NULL ELSE notifications.claim_token END,
         claim_until = CASE WHEN notifications.claimed_by = $5 THEN '-infinity' ELSE notifications.claim_until END,
         claimed_by = CASE WHEN notifications.claimed_by = $5 THEN NULL ELSE notifications.claimed_by END
       WHERE notifications.status <> 'sent'`,
      [transferId, attempts.map((a) => a.channel), attempts.map((a) => a.status), attempts.map((a) => a.error), claimant.workerId], 'record-attempts');
  }

  async markParked(transferId: string, channels: readonly Channel[]): Promise<void> {
    await this.query(
      `UPDATE notifications SET parked_at = now() WHERE transfer_id = $1 AND channel = ANY($2::text[]) AND status = 'failed' AND parked_at IS NULL`,
      [transferId, channels],
      'mark-parked',
    );
  }

  async insertApiKey(key: StoredApiKey): Promise<boolean> {
    const rows = await this.query(
      `INSERT INTO api_keys (id, secret_hash, accounts, label, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING id`,
      [key.id, key.secretHash, key.accounts, key.label, key.createdAt],
    );
    return rows.length === 1;
  }

  async findApiKey(id: string): Promise<StoredApiKey | null> {
    const [row] = await this.query<ApiKeyRow>('SELECT * FROM api_keys WHERE id = $1', [id], 'find-api-key');
    return row ? toApiKey(row) : null;
  }

  async listApiKeys(): Promise<StoredApiKey[]> {
    return (await this.query<ApiKeyRow>('SELECT * FROM api_keys ORDER BY created_at, id')).map(toApiKey);
  }

  async revokeApiKey(id: string): Promise<boolean> {
    return (await this.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id', [id])).length === 1;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A malformed id cannot name a transfer; asking PostgreSQL would only raise a cast error. */
function isUuid(value: string): boolean {
  return UUID.test(value);
}
