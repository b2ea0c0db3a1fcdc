/**
 * Ordered migrations for PostgreSQL, the same story as SQLite's: each runs once,
 * in its own transaction, recorded in schema_migrations. Never edit a released step.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    owner_name    TEXT NOT NULL,
    email         TEXT NOT NULL,
    phone         TEXT NOT NULL,
    currency      CHAR(3) NOT NULL,
    balance_minor BIGINT NOT NULL CHECK (balance_minor >= 0),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
  );

  CREATE TABLE transfers (
    id              UUID PRIMARY KEY,
    from_account    TEXT NOT NULL REFERENCES accounts (id),
    to_account      TEXT NOT NULL REFERENCES accounts (id),
    amount_minor    BIGINT NOT NULL CHECK (amount_minor > 0),
    currency        CHAR(3) NOT NULL,
    reference       TEXT,
    idempotency_key TEXT UNIQUE,
    request_hash    TEXT,
    created_at      TIMESTAMPTZ NOT NULL
  );

  CREATE TABLE outbox (
    seq          BIGSERIAL PRIMARY KEY,
    id           UUID NOT NULL UNIQUE,
    transfer_id  UUID NOT NULL REFERENCES transfers (id),
    type         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    lease_owner  TEXT,
    lease_until  TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    published_at TIMESTAMPTZ
  );
  CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

  CREATE TABLE notifications (
    transfer_id UUID NOT NULL REFERENCES transfers (id),
    channel     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts    INTEGER NOT NULL,
    last_error  TEXT,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (transfer_id, channel)
  );
  `,
  `
  CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    accounts    TEXT[] NOT NULL,
    label       TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
  );
  `,
  // Send claims (a worker holds a channel while its send is at the provider) and parking
  // (a failed channel counts as failed once its dead-letter copy is confirmed). Failed rows
  // of earlier versions were parked right after they were recorded: take them as parked.
  `
  ALTER TABLE notifications
    ADD COLUMN claimed_by  TEXT,
    ADD COLUMN claim_token TEXT,
    ADD COLUMN claim_until TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    ADD COLUMN parked_at   TIMESTAMPTZ;
  UPDATE notifications SET parked_at = updated_at WHERE status = 'failed';
  `,
];
