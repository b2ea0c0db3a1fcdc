import type { StoredApiKey } from '../domain/api-keys.js';
import type { Account, Transfer } from '../domain/ledger.js';
import type { NotificationState } from '../domain/notifications.js';
import type { ClaimCandidate } from '../domain/send-claims.js';
import type { ClaimedEvent } from './store.js';

/**
 * The tables' rows as both drivers return them (snake_case; PostgreSQL gives
 * timestamps as Date, SQLite as ISO text), and their one mapping to the domain.
 */
type Time = string | Date;

export interface AccountRow {
  id: string;
  owner_name: string;
  email: string;
  phone: string;
  currency: string;
  balance_minor: number;
}

export interface TransferRow {
  id: string;
  from_account: string;
  to_account: string;
  amount_minor: number;
  currency: string;
  reference: string | null;
  created_at: Time;
}

export interface NotificationRow {
  channel: NotificationState['channel'];
  status: NotificationState['status'];
  attempts: number;
  last_error: string | null;
  updated_at: Time;
  parked_at: Time | null;
}

/** A notification row as a claim reads it (locked, in the claiming transaction). */
export interface ClaimRow extends NotificationRow {
  claimed_by: string | null;
  claim_token: string | null;
  /** True when another worker's claim is within its lease and its worker is alive. */
  holder_alive?: boolean | null;
}

export interface ApiKeyRow {
  id: string;
  secret_hash: string;
  /** A text[] in PostgreSQL, JSON text in SQLite. */
  accounts: string[] | string;
  label: string | null;
  created_at: Time;
  revoked_at: Time | null;
}

export interface OutboxRow {
  seq: number;
  id: string;
  transfer_id: string;
  type: string;
  payload: string;
  created_at: Time;
}

export const iso = (value: Time): string => (value instanceof Date ? value.toISOString() : new Date(value).toISOString());

export const toAccount = (r: AccountRow): Account => ({
  id: r.id,
  ownerName: r.owner_name,
  email: r.email,
  phone: r.phone,
  currency: r.currency,
  balanceMinor: r.balance_minor,
});

export const toTransfer = (r: TransferRow): Transfer => ({
  id: r.id,
  fromAccount: r.from_account,
  toAccount: r.to_account,
  amountMinor: r.amount_minor,
  currency: r.currency,
  reference: r.reference,
  createdAt: iso(r.created_at),
});

/** Ordered by channel, whichever order the rows came in. */
export const toNotifications = (rows: readonly NotificationRow[] | null): NotificationState[] =>
  (rows ?? [])
    .map((r) => ({ channel: r.channel, status: r.status, attempts: r.attempts, lastError: r.last_error, updatedAt: iso(r.updated_at), parked: r.parked_at !== null }))
    .sort((a, b) => a.channel.localeCompare(b.channel));

export const toClaimCandidate = (r: ClaimRow, heldByLiveWorker: boolean): ClaimCandidate => ({
  channel: r.channel,
  status: r.status,
  parked: r.parked_at !== null,
  lastError: r.last_error,
  claimedBy: r.claimed_by,
  heldByLiveWorker,
});

export const toApiKey = (r: ApiKeyRow): StoredApiKey => ({
  id: r.id,
  secretHash: r.secret_hash,
  accounts: typeof r.accounts === 'string' ? (JSON.parse(r.accounts) as string[]) : r.accounts,
  label: r.label,
  createdAt: iso(r.created_at),
  revokedAt: r.revoked_at === null ? null : iso(r.revoked_at),
});

/** Claimed rows in outbox order (RETURNING gives no order). */
export const toClaimedEvents = (rows: readonly OutboxRow[]): ClaimedEvent[] =>
  [...rows]
    .sort((a, b) => a.seq - b.seq)
    .map((r) => ({ seq: r.seq, id: r.id, transferId: r.transfer_id, type: r.type, payload: r.payload, createdAt: iso(r.created_at) }));
