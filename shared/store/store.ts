import type { StoredApiKey } from '../domain/api-keys.js';
import { transferCompletedEvent, type Account, type IdempotencyClaim, type Transfer, type TransferRequest } from '../domain/ledger.js';
import type { Channel, Contact, NotificationState, NotificationStatus } from '../domain/notifications.js';
import type { ClaimDecision } from '../domain/send-claims.js';

/**
 * What the API and the worker need from a database, and nothing more. A Store
 * is migrated before it is handed out. Each method is atomic (one transaction,
 * or one statement). Failures to reach the database surface as
 * AppError('database_unavailable'); rule violations as the ledger's AppErrors.
 */
export interface Store {
  /** Inserts accounts that do not exist yet; never touches existing balances. */
  seedAccounts(accounts: readonly Account[]): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;

  /**
   * Debit, credit, transfer row and outbox event in one transaction, or nothing.
   * The event is leased to `outbox.owner` from the start, so the relay that
   * committed it publishes it without a second query and no other relay races it.
   */
  executeTransfer(request: TransferRequest, idempotency: IdempotencyClaim | null, outbox: OutboxLease): Promise<TransferReceipt>;
  findTransfer(id: string): Promise<TransferRecord | null>;
  findAccount(id: string): Promise<Account | null>;

  /**
   * Leases unpublished events that nobody holds (their lease ran out or was
   * released), oldest first, starting after `afterSeq`, so a sweep pages through.
   */
  claimOutbox(lease: OutboxLease, limit: number, afterSeq: number): Promise<ClaimedEvent[]>;
  /** Extends the owner's lease on these events; returns the ids it still held (unpublished). */
  renewLeases(lease: OutboxLease, ids: readonly string[]): Promise<string[]>;
  markPublished(ids: readonly string[]): Promise<void>;
  /** Gives the owner's unpublished events back, so the next relay can take them at once. */
  releaseOutbox(owner: string): Promise<void>;
  /** How many events wait to be published, and since when the oldest has. */
  outboxStats(): Promise<{ unpublished: number; oldestCreatedAt: string | null }>;

  /**
   * Makes this process a claimant of sends, with a token by which other workers can
   * tell whether it is still alive (its database session, or its process on this host).
   */
  registerClaimant(workerId: string, leaseMs: number): Promise<Claimant>;
  /**
   * Claims the sends of these channels before they go to a provider, in one atomic step,
   * deciding each channel by the rule in domain/send-claims.ts: granted when it is pending
   * (or failed, on a replay) and no other worker holds a live claim on it. A claim is
   * live until its lease ends, unless the store can tell its worker has died. Also
   * returns whom to notify. Null if the transfer is unknown.
   */
  claimSends(transferId: string, channels: readonly Channel[], claimant: Claimant, options: { replay: boolean }): Promise<SendClaim | null>;
  /** Gives back claims the claimant will not use (the delivery was lost before the send started). */
  releaseClaims(transferId: string, channels: readonly Channel[], claimant: Claimant): Promise<void>;
  /**
   * Records the outcome of attempts (never downgrading a channel already sent) and drops
   * the claimant's claims on them. A channel recorded failed is not parked yet.
   */
  recordAttempts(transferId: string, attempts: readonly AttemptRecord[], claimant: Claimant): Promise<void>;
  /** Failed channels whose dead-letter copies the broker has confirmed: from now on they show failed. */
  markParked(transferId: string, channels: readonly Channel[]): Promise<void>;

  /** Stores a key unless one with its id exists; true if it was inserted. */
  insertApiKey(key: StoredApiKey): Promise<boolean>;
  findApiKey(id: string): Promise<StoredApiKey | null>;
  listApiKeys(): Promise<StoredApiKey[]>;
  /** True if the key existed and was not revoked before. */
  revokeApiKey(id: string): Promise<boolean>;
}

export interface OutboxLease {
  owner: string;
  leaseMs: number;
}

export interface OutboxEvent {
  id: string;
  transferId: string;
  type: string;
  payload: string;
  createdAt: string;
}

export interface ClaimedEvent extends OutboxEvent {
  /** Position in the outbox, for paging. */
  seq: number;
}

export type TransferReceipt =
  | { replayed: false; transfer: Transfer; event: OutboxEvent }
  | { replayed: true; transferId: string };

export interface TransferRecord extends Transfer {
  notifications: NotificationState[];
}

export interface Claimant {
  workerId: string;
  /** How other workers tell this one is alive; its form is the store's own. */
  token: string;
  /** A claim lasts this long unless its worker records an outcome first; longer than a provider may take. */
  leaseMs: number;
}

export interface SendClaim extends ClaimDecision {
  contact: Contact;
}

export interface AttemptRecord {
  channel: Channel;
  status: NotificationStatus;
  error: string | null;
}

/** The outbox row for a new transfer: its transfer.completed event, serialized once, as the relay will publish it. */
export function outboxEventFor(transfer: Transfer): OutboxEvent {
  const domainEvent = transferCompletedEvent(transfer);
  return { id: domainEvent.eventId, transferId: transfer.id, type: domainEvent.type, payload: JSON.stringify(domainEvent), createdAt: transfer.createdAt };
}
