import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
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
import {
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
import { openSqliteDatabase } from './sqlite-driver.js';
import { SQLITE_MIGRATIONS } from './sqlite-schema.js';
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

const isBusy = (error: unknown) => /^SQLITE_BUSY/.test(String((error as { code?: unknown }).code ?? ''));

/** The first retries yield one turn of the event loop; later ones back off to at most 10 ms. */
const pause = (attempt: number) =>
  attempt < 3 ? new Promise<void>((resolve) => setImmediate(resolve)) : new Promise<void>((resolve) => setTimeout(resolve, Math.min(10, 2 ** (attempt - 3))));

/** Errors that mean "the database cannot be used right now", as opposed to a bug or a rule. */
const UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|CANTOPEN|IOERR|FULL|READONLY|PROTOCOL|NOTADB|CORRUPT)/;

function translate(error: unknown): unknown {
  if (error instanceof AppError) return error;
  const code = (error as { code?: unknown }).code;
  const closed = error instanceof TypeError && /database connection is not open/.test(error.message);
  if ((typeof code === 'string' && UNAVAILABLE.test(code)) || closed) {
    return new AppError('database_unavailable', 'the database is unavailable, try again later', undefined, { cause: error });
  }
  return error;
}

/**
 * A SQLite file is shared by processes of one machine only, so a claimant is its
 * process: host and pid. Another process on this host tells whether it is alive by
 * signalling it; a claim from another host (a file shared against the advice) is
 * trusted until its lease ends.
 */
const claimantToken = () => `${hostname()}:${process.pid}`;

function processAlive(token: string | null): boolean {
  const at = token?.lastIndexOf(':') ?? -1;
  if (!token || at < 0) return true;
  if (token.slice(0, at) !== hostname()) return true;
  try {
    process.kill(Number(token.slice(at + 1)), 0);
    return true;
  } catch (error) {
    // EPERM: it exists but is not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A write waiting for the next group commit. */
interface WriteJob {
  run: () => unknown;
  /** Must survive a power cut once acknowledged (see write). */
  durable: boolean;
  /** When waiting for another process's write lock turns into an outage (503). */
  deadline: number;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

const NOT_DURABLE = { durable: false };

/** Writes committed together at most; the rest wait for the next commit. */
const MAX_GROUP = 256;

/** Thrown out of a group when SQLite itself rolled the whole transaction back (disk full, I/O error). */
class GroupAborted extends Error {
  constructor(override readonly cause: unknown) {
    super('the group transaction was rolled back by SQLite');
  }
}

/**
 * The embedded store: one file shared by the API and worker processes (WAL lets
 * them read while one writes).
 *
 * Every write goes through one queue and is group-committed: the writes that
 * arrive in the same turn of the event loop run in a single IMMEDIATE transaction
 * (which takes the write lock up front, so a transfer's check and debit never
 * interleave with another writer), each in its own savepoint so one that fails
 * rolls back alone, and all of them share one commit and its fsync. Each caller
 * hears back once its write is committed: durable for money, outcomes and keys;
 * without the fsync for the few writes that may be lost in a power cut (see write()).
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly sql;
  private readonly groupTx;
  private readonly savepoint;
  private pending: WriteJob[] = [];
  private groupScheduled = false;
  private syncFull = true;
  private readonly busyTimeoutMs: number;

  constructor(file: string, options: { busyTimeoutMs: number }) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.busyTimeoutMs = options.busyTimeoutMs;
    this.db = openSqliteDatabase(file, { timeout: options.busyTimeoutMs });
    this.db.pragma('journal_mode = WAL');
    // FULL syncs the WAL on every commit: a 202 means the transfer survives a power cut, not only a crash.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.migrateNow();
    // From here on, waiting for another process's write lock happens between event-loop
    // turns (see retrying), not in SQLite's busy handler, which sleeps the whole process.
    this.db.pragma('busy_timeout = 0');

    const db = this.db;
    this.sql = {
      account: db.prepare<[string], AccountRow>('SELECT * FROM accounts WHERE id = ?'),
      insertAccount: db.prepare(
        `INSERT INTO accounts (id, owner_name, email, phone, currency, balance_minor, created_at)
         VALUES (@id, @ownerName, @email, @phone, @currency, @balanceMinor, @createdAt) ON CONFLICT (id) DO NOTHING`,
      ),
      byIdempotencyKey: db.prepare<[string], { id: string; request_hash: string }>(
        'SELECT id, request_hash FROM transfers WHERE idempotency_key = ?',
      ),
      debit: db.prepare('UPDATE accounts SET balance_minor = balance_minor - ? WHERE id = ? AND balance_minor >= ?'),
      credit: db.prepare('UPDATE accounts SET balance_minor = balance_minor + ? WHERE id = ?'),
      insertTransfer: db.prepare(
        `INSERT INTO transfers (id, from_account, to_account, amount_minor, currency, reference, idempotency_key, request_hash, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertOutbox: db.prepare(
        `INSERT INTO outbox (id, transfer_id, type, payload, created_at, lease_owner, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      transfer: db.prepare<[string], TransferRow>('SELECT * FROM transfers WHERE id = ?'),
      notifications: db.prepare<[string], NotificationRow>('SELECT * FROM notifications WHERE transfer_id = ? ORDER BY channel'),
      claimOutbox: db.prepare<[string, number, number, number, number], OutboxRow>(
        `UPDATE outbox SET lease_owner = ?, lease_until = ?
         WHERE seq IN (SELECT seq FROM outbox WHERE published_at IS NULL AND seq > ? AND lease_until < ? ORDER BY seq LIMIT ?)
         RETURNING seq, id, transfer_id, type, payload, created_at`,
      ),
      renewLeases: db.prepare<[number, string, string], { id: string }>(
        `UPDATE outbox SET lease_until = ? WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ? AND published_at IS NULL RETURNING id`,
      ),
      markPublished: db.prepare<[string, string]>(
        `UPDATE outbox SET published_at = ?, lease_owner = NULL WHERE id IN (SELECT value FROM json_each(?)) AND published_at IS NULL`,
      ),
      releaseOutbox: db.prepare('UPDATE outbox SET lease_until = 0, lease_owner = NULL WHERE lease_owner = ? AND published_at IS NULL'),
      outboxStats: db.prepare<[], { unpublished: number; oldest: string | null }>(
        'SELECT COUNT(*) AS unpublished, MIN(created_at) AS oldest FROM outbox WHERE published_at IS NULL',
      ),
      sender: db.prepare<[string], { owner_name: string; email: string; phone: string }>(
        `SELECT a.owner_name, a.email, a.phone FROM transfers t JOIN accounts a ON a.id = t.from_account WHERE t.id = ?`,
      ),
      ensureNotification: db.prepare<[string, string, string]>(
        `INSERT INTO notifications (transfer_id, channel, status, attempts, updated_at) VALUES (?, ?, 'pending', 0, ?) ON CONFLICT DO NOTHING`,
      ),
      claimRow: db.prepare<[string, string], ClaimRow & { claim_until: number }>('SELECT * FROM notifications WHERE transfer_id = ? AND channel = ?'),
      claim: db.prepare<[string, string, number, string, string]>(
        `UPDATE notifications SET claimed_by = ?, claim_token = ?, claim_until = ?, status = 'pending', parked_at = NULL
         WHERE transfer_id = ? AND channel = ?`,
      ),
      releaseClaim: db.prepare<[string, string, string]>(
        `UPDATE notifications SET claimed_by = NULL, claim_token = NULL, claim_until = 0 WHERE transfer_id = ? AND channel = ? AND claimed_by = ?`,
      ),
      // Only the claimant's own claim is dropped: another worker's (taken after ours lapsed) stays.
      recordAttempt: db.prepare<[{ transferId: string; channel: string; status: string; error: string | null; now: string; claimant: string }]>(
        `INSERT INTO notifications (transfer_id, channel, status, attempts, last_error, updated_at) VALUES (@transferId, @channel, @status, 1, @error, @now)
         ON CONFLICT (transfer_id, channel) DO UPDATE SET
           status = excluded.status, attempts = notifications.attempts + 1,
           last_error = excluded.last_error, updated_at = excluded.updated_at, parked_at = NULL,
           claim_token = iif(notifications.claimed_by = @claimant, NULL, notifications.claim_token),
           claim_until = iif(notifications.claimed_by = @claimant, 0, notifications.claim_until),
           claimed_by = iif(notifications.claimed_by = @claimant, NULL, notifications.claimed_by)
         WHERE notifications.status <> 'sent'`,
      ),
      markParked: db.prepare<[string, string, string]>(
        `UPDATE notifications SET parked_at = ? WHERE transfer_id = ? AND channel = ? AND status = 'failed' AND parked_at IS NULL`,
      ),
      ping: db.prepare('SELECT 1'),
      insertApiKey: db.prepare(
        `INSERT INTO api_keys (id, secret_hash, accounts, label, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      ),
      apiKey: db.prepare<[string], ApiKeyRow>('SELECT * FROM api_keys WHERE id = ?'),
      apiKeys: db.prepare<[], ApiKeyRow>('SELECT * FROM api_keys ORDER BY created_at, id'),
      revokeApiKey: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
    };

    // A transaction inside the group's transaction is a savepoint.
    this.savepoint = db.transaction((fn: () => unknown) => fn());
    this.groupTx = db.transaction((jobs: WriteJob[]) =>
      jobs.map((job) => {
        try {
          return { ok: true as const, value: this.savepoint(job.run) };
        } catch (error) {
          // On SQLITE_FULL, IOERR or NOMEM SQLite may roll back the whole transaction by
          // itself: the writes before this one are gone, and the ones after would each
          // commit on their own. Abort the group so every caller hears it failed.
          if (!this.db.inTransaction) throw new GroupAborted(error);
          return { ok: false as const, error };
        }
      }),
    );
  }

  /** One transfer, inside the group's transaction: idempotency, the ledger's checks, debit, credit, transfer row, outbox event. */
  private transferNow(request: TransferRequest, claim: IdempotencyClaim | null, lease: OutboxLease): TransferReceipt {
    const fromRow = this.sql.account.get(request.fromAccount);
    if (claim) {
      const stored = this.sql.byIdempotencyKey.get(claim.key);
      if (stored) return { replayed: true, transferId: resolveReplay({ transferId: stored.id, requestHash: stored.request_hash }, request, fromRow?.currency ?? null) };
    }
    const toRow = this.sql.account.get(request.toAccount);
    const now = new Date();
    const currency = checkTransfer(request, fromRow && toAccount(fromRow), toRow && toAccount(toRow));
    const amount = request.amountMinor;
    // The guard in the WHERE clause is the last line of defence against an overdraft.
    if (this.sql.debit.run(amount, request.fromAccount, amount).changes !== 1) {
      throw new AppError('insufficient_funds', `account ${request.fromAccount} has insufficient funds`);
    }
    this.sql.credit.run(amount, request.toAccount);
    const transfer = newTransfer(request, currency, now);
    this.sql.insertTransfer.run(
      transfer.id,
      transfer.fromAccount,
      transfer.toAccount,
      transfer.amountMinor,
      transfer.currency,
      transfer.reference,
      claim?.key ?? null,
      claim ? requestFingerprint(request, currency) : null,
      transfer.createdAt,
    );
    const event = outboxEventFor(transfer);
    this.sql.insertOutbox.run(event.id, event.transferId, event.type, event.payload, event.createdAt, lease.owner, now.getTime() + lease.leaseMs);
    return { replayed: false, transfer, event };
  }

  /** Runs before any statement is prepared: statements need their tables. */
  private migrateNow(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL) STRICT');
    // IMMEDIATE: two processes starting together must not both apply a step.
    this.db
      .transaction(() => {
        const row = this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number };
        SQLITE_MIGRATIONS.forEach((sql, index) => {
          const version = index + 1;
          if (version <= row.v) return;
          this.db.exec(sql);
          this.db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, new Date().toISOString());
        });
      })
      .immediate();
  }

  /**
   * Runs a read. Should the database be busy (a WAL reset by another process), it
   * tries again on later turns of the event loop rather than in SQLite's busy
   * handler, which would sleep the whole process. Past SQLITE_BUSY_TIMEOUT_MS it is an outage (503).
   */
  private async run<T>(fn: () => T): Promise<T> {
    const deadline = Date.now() + this.busyTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return fn();
      } catch (error) {
        if (!isBusy(error) || Date.now() >= deadline) throw translate(error);
        await pause(attempt);
      }
    }
  }

  /**
   * Queues a write for the next group commit; resolves with its result once that commit
   * is done (durable unless `durable: false`). `durable: false` is for writes whose loss in a power cut (not a process
   * crash: the WAL is written either way) costs at most a repeat that a crash could cause
   * anyway: send claims, lease renewals, publish marks. A group of only those commits
   * without the fsync.
   */
  private write<T>(run: () => T, options: { durable: boolean } = { durable: true }): Promise<T> {
    return new Promise((resolve, reject) => {
      this.pending.push({ run, durable: options.durable, deadline: Date.now() + this.busyTimeoutMs, resolve: resolve as (value: unknown) => void, reject });
      this.scheduleGroup(0);
    });
  }

  /** FULL (fsync every commit) unless the group holds only writes that need not survive a power cut. */
  private syncFor(group: readonly WriteJob[]): void {
    const full = group.some((job) => job.durable);
    if (full === this.syncFull) return;
    this.db.pragma(`synchronous = ${full ? 'FULL' : 'NORMAL'}`);
    this.syncFull = full;
  }

  private scheduleGroup(attempt: number): void {
    if (this.groupScheduled) return;
    this.groupScheduled = true;
    const run = () => {
      this.groupScheduled = false;
      this.commitGroup(attempt);
    };
    if (attempt === 0) setImmediate(run);
    else void pause(attempt).then(run);
  }

  private commitGroup(attempt: number): void {
    const group = this.pending.splice(0, MAX_GROUP);
    if (group.length === 0) return;
    let outcomes;
    try {
      this.syncFor(group);
      outcomes = this.groupTx.immediate(group);
    } catch (error) {
      // BEGIN or COMMIT failed: none of the group happened. Another process holding
      // the write lock: wait for it (the group grows meanwhile) unless that took too long.
      if (isBusy(error) && group[0]!.deadline > Date.now()) {
        this.pending.unshift(...group);
        this.scheduleGroup(attempt + 1);
        return;
      }
      const failure = translate(error instanceof GroupAborted ? error.cause : error);
      for (const job of group) job.reject(failure);
      if (this.pending.length > 0) this.scheduleGroup(0);
      return;
    }
    if (this.pending.length > 0) this.scheduleGroup(0);
    outcomes.forEach((outcome, i) => {
      if (outcome.ok) group[i]!.resolve(outcome.value);
      else group[i]!.reject(translate(outcome.error));
    });
  }

  seedAccounts(accounts: readonly Account[]): Promise<void> {
    const createdAt = new Date().toISOString();
    return this.write(() => accounts.forEach((a) => this.sql.insertAccount.run({ ...a, createdAt })));
  }

  ping(): Promise<void> {
    return this.run(() => void this.sql.ping.get());
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  executeTransfer(request: TransferRequest, claim: IdempotencyClaim | null, lease: OutboxLease): Promise<TransferReceipt> {
    return this.write(() => this.transferNow(request, claim, lease));
  }

  findTransfer(id: string): Promise<TransferRecord | null> {
    return this.run(() => {
      const row = this.sql.transfer.get(id);
      return row ? { ...toTransfer(row), notifications: toNotifications(this.sql.notifications.all(id)) } : null;
    });
  }

  findAccount(id: string): Promise<Account | null> {
    return this.run(() => {
      const row = this.sql.account.get(id);
      return row ? toAccount(row) : null;
    });
  }

  claimOutbox(lease: OutboxLease, limit: number, afterSeq: number): Promise<ClaimedEvent[]> {
    return this.write(() => {
      const now = Date.now();
      const rows = this.sql.claimOutbox.all(lease.owner, now + lease.leaseMs, afterSeq, now, limit);
      return toClaimedEvents(rows);
    });
  }

  renewLeases(lease: OutboxLease, ids: readonly string[]): Promise<string[]> {
    return this.write(() => this.sql.renewLeases.all(Date.now() + lease.leaseMs, JSON.stringify(ids), lease.owner).map((r) => r.id), NOT_DURABLE);
  }

  markPublished(ids: readonly string[]): Promise<void> {
    return this.write(() => void this.sql.markPublished.run(new Date().toISOString(), JSON.stringify(ids)), NOT_DURABLE);
  }

  releaseOutbox(owner: string): Promise<void> {
    return this.write(() => void this.sql.releaseOutbox.run(owner));
  }

  outboxStats(): Promise<{ unpublished: number; oldestCreatedAt: string | null }> {
    return this.run(() => {
      const row = this.sql.outboxStats.get()!;
      return { unpublished: row.unpublished, oldestCreatedAt: row.oldest };
    });
  }

  async registerClaimant(workerId: string, leaseMs: number): Promise<Claimant> {
    return { workerId, token: claimantToken(), leaseMs };
  }

  claimSends(transferId: string, channels: readonly Channel[], claimant: Claimant, options: { replay: boolean }): Promise<SendClaim | null> {
    return this.write(() => {
      const sender = this.sql.sender.get(transferId);
      if (!sender) return null;
      const now = Date.now();
      const nowIso = new Date(now).toISOString();
      const candidates = channels.map((channel) => {
        this.sql.ensureNotification.run(transferId, channel, nowIso);
        const row = this.sql.claimRow.get(transferId, channel)!;
        const heldByOther = row.claimed_by !== null && row.claimed_by !== claimant.workerId && row.claim_until > now;
        return toClaimCandidate(row, heldByOther && processAlive(row.claim_token));
      });
      const decision = decideClaims(candidates, options);
      for (const channel of decision.granted) {
        this.sql.claim.run(claimant.workerId, claimant.token, now + claimant.leaseMs, transferId, channel);
      }
      return { contact: { name: sender.owner_name, email: sender.email, phone: sender.phone }, ...decision };
      // A claim lost in a power cut only lets a send repeat, as the crash itself would; the
      // outcome recorded after the send is durable, and its fsync takes the claim along.
    }, NOT_DURABLE);
  }

  releaseClaims(transferId: string, channels: readonly Channel[], claimant: Claimant): Promise<void> {
    return this.write(() => {
      for (const channel of channels) this.sql.releaseClaim.run(transferId, channel, claimant.workerId);
    }, NOT_DURABLE);
  }

  recordAttempts(transferId: string, attempts: readonly AttemptRecord[], claimant: Claimant): Promise<void> {
    return this.write(() => {
      const now = new Date().toISOString();
      for (const a of attempts) this.sql.recordAttempt.run({ transferId, channel: a.channel, status: a.status, error: a.error, now, claimant: claimant.workerId });
    });
  }

  markParked(transferId: string, channels: readonly Channel[]): Promise<void> {
    return this.write(() => {
      const now = new Date().toISOString();
      for (const channel of channels) this.sql.markParked.run(now, transferId, channel);
    });
  }

  insertApiKey(key: StoredApiKey): Promise<boolean> {
    return this.write(() => this.sql.insertApiKey.run(key.id, key.secretHash, JSON.stringify(key.accounts), key.label, key.createdAt).changes === 1);
  }

  findApiKey(id: string): Promise<StoredApiKey | null> {
    return this.run(() => {
      const row = this.sql.apiKey.get(id);
      return row ? toApiKey(row) : null;
    });
  }

  listApiKeys(): Promise<StoredApiKey[]> {
    return this.run(() => this.sql.apiKeys.all().map(toApiKey));
  }

  revokeApiKey(id: string): Promise<boolean> {
    return this.write(() => this.sql.revokeApiKey.run(new Date().toISOString(), id).changes === 1);
  }
}
