/**
 * Ordered migrations; each runs once, in its own transaction, recorded in schema_migrations.
 * Never edit a released step: add a new one.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    owner_name    TEXT NOT NULL,
    email         TEXT NOT NULL,
    phone         TEXT NOT NULL,
    currency      TEXT NOT NULL,
    balance_minor INTEGER NOT NULL CHECK (balance_minor >= 0),
    created_at    TEXT NOT NULL
  ) STRICT;

  CREATE TABLE transfers (
    id              TEXT PRIMARY KEY,
    from_account    TEXT NOT NULL REFERENCES accounts (id),
    to_account      TEXT NOT NULL REFERENCES accounts (id),
    amount_minor    INTEGER NOT NULL CHECK (amount_minor > 0),
    currency        TEXT NOT NULL,
    reference       TEXT,
    idempotency_key TEXT UNIQUE,
    request_hash    TEXT,
    created_at      TEXT NOT NULL
  ) STRICT;

  CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    transfer_id  TEXT NOT NULL REFERENCES transfers (id),
    type         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER NOT NULL DEFAULT 0,
    published_at TEXT
  ) STRICT;
  CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

  CREATE TABLE notifications (
    transfer_id TEXT NOT NULL REFERENCES transfers (id),
    channel     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts    INTEGER NOT NULL,
    last_error  TEXT,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (transfer_id, channel)
  ) STRICT, WITHOUT ROWID;
  `,
  `
  CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    accounts    TEXT NOT NULL CHECK (json_valid(accounts)),
    label       TEXT,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
  ) STRICT;
  `,
  // Send claims (a worker holds a channel while its send is at the provider) and parking
  // (a failed channel counts as failed once its dead-letter copy is confirmed). Failed rows
  // of earlier versions were parked right after they were recorded: take them as parked.
  `
  ALTER TABLE notifications ADD COLUMN claimed_by TEXT;
  ALTER TABLE notifications ADD COLUMN claim_token TEXT;
  ALTER TABLE notifications ADD COLUMN claim_until INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE notifications ADD COLUMN parked_at TEXT;
  UPDATE notifications SET parked_at = updated_at WHERE status = 'failed';
  `,
];
