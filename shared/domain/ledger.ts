import { createHash } from 'node:crypto';
import { v7 as timeOrderedId } from 'uuid';
import { TRANSFER_COMPLETED, type TransferEvent } from './contract.js';
import { AppError } from './errors.js';
import { formatMinor } from './money.js';

/**
 * The ledger's rules, free of storage: each store runs them inside its own
 * transaction against the rows it has locked, so the rules live here once.
 */

export interface Account {
  id: string;
  ownerName: string;
  email: string;
  phone: string;
  currency: string;
  balanceMinor: number;
}

export interface TransferRequest {
  fromAccount: string;
  toAccount: string;
  amountMinor: number;
  /** null: take the accounts' currency. */
  currency: string | null;
  reference: string | null;
}

export interface Transfer {
  id: string;
  fromAccount: string;
  toAccount: string;
  amountMinor: number;
  currency: string;
  reference: string | null;
  createdAt: string;
}

/** An Idempotency-Key, scoped to the API key that sent it. */
export interface IdempotencyClaim {
  key: string;
}

/** Checked before touching the store: it needs no rows. */
export function assertDistinctAccounts(request: TransferRequest): void {
  if (request.fromAccount === request.toAccount) {
    throw new AppError('same_account', 'fromAccount and toAccount must be different accounts');
  }
}

/** Decides whether the transfer may happen; returns the currency it moves in. */
export function checkTransfer(request: TransferRequest, from: Account | undefined, to: Account | undefined): string {
  if (!from) throw new AppError('account_not_found', `account ${request.fromAccount} does not exist`);
  if (!to) throw new AppError('account_not_found', `account ${request.toAccount} does not exist`);
  const currency = request.currency ?? from.currency;
  if (from.currency !== currency || to.currency !== currency) {
    // No details: the payee's currency is not the caller's to learn.
    throw new AppError('currency_mismatch', `both accounts must hold ${currency}`);
  }
  if (from.balanceMinor < request.amountMinor) {
    throw new AppError('insufficient_funds', `account ${from.id} has insufficient funds for ${formatMinor(request.amountMinor)} ${currency}`);
  }
  return currency;
}

/**
 * Two requests are "the same" when they mean the same transfer: 150.75 and "150.75"
 * are one request, and so are an omitted currency and the account's own currency
 * named explicitly (pass the resolved currency); a different amount or reference
 * is another.
 */
export function requestFingerprint(request: TransferRequest, currency: string | null): string {
  const canonical = JSON.stringify([request.fromAccount, request.toAccount, request.amountMinor, currency, request.reference]);
  return createHash('sha256').update(canonical).digest('hex');
}

/**
 * A replayed key must carry the same request; returns the transfer the key already
 * made. `accountCurrency` is the sending account's currency: releases before the
 * currency was resolved stored an omitted currency as null, and such a key still
 * matches the same request, with or without the currency named.
 */
export function resolveReplay(stored: { transferId: string; requestHash: string }, request: TransferRequest, accountCurrency: string | null): string {
  const currency = request.currency ?? accountCurrency;
  const same =
    stored.requestHash === requestFingerprint(request, currency) ||
    (currency === accountCurrency && stored.requestHash === requestFingerprint(request, null));
  if (!same) {
    throw new AppError('idempotency_key_reused', 'this Idempotency-Key was already used with a different request body');
  }
  return stored.transferId;
}

/**
 * Ids are UUIDv7: time-ordered, so new rows append to the right edge of every
 * index they are keyed by instead of landing on a random page. That keeps a group
 * commit's dirty pages (and its WAL write and fsync) small; random v4 ids made
 * each commit write several pages per transfer.
 */
export function newTransfer(request: TransferRequest, currency: string, now: Date): Transfer {
  return {
    id: timeOrderedId({ msecs: now.getTime() }),
    fromAccount: request.fromAccount,
    toAccount: request.toAccount,
    amountMinor: request.amountMinor,
    currency,
    reference: request.reference,
    createdAt: now.toISOString(),
  };
}

export function transferCompletedEvent(transfer: Transfer): TransferEvent {
  return {
    eventId: timeOrderedId(),
    type: TRANSFER_COMPLETED,
    occurredAt: transfer.createdAt,
    transfer: {
      id: transfer.id,
      fromAccount: transfer.fromAccount,
      toAccount: transfer.toAccount,
      amountMinor: transfer.amountMinor,
      currency: transfer.currency,
      reference: transfer.reference,
    },
  };
}
