import { Router, type RequestHandler } from 'express';
import { mayActFor } from '../shared/domain/api-keys.js';
import { AppError } from '../shared/domain/errors.js';
import { assertDistinctAccounts } from '../shared/domain/ledger.js';
import { addLogContext, logger } from '../shared/runtime/logger.js';
import { formatMinor } from '../shared/domain/money.js';
import { notificationStates, transferStatus, visibleState } from '../shared/domain/notifications.js';
import type { Store } from '../shared/store/index.js';
import { principalOf } from './auth.js';
import type { TransferAccepted, TransferView } from './http-contract.js';
import type { OutboxRelay } from './outbox-relay.js';
import { parseIdempotencyKey, parseTransferRequest } from './transfer-request.js';

const hasBody = (headers: Record<string, unknown>) =>
  headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');

/** 415 for a body that is not JSON, before the JSON parser decides it has nothing to parse. */
export const requireJson: RequestHandler = (req, _res, next) => {
  if (hasBody(req.headers) && !req.is('application/json')) {
    next(new AppError('unsupported_media_type', 'send the body as application/json'));
    return;
  }
  next();
};

export function transferRoutes(deps: { store: Store; relay: OutboxRelay }): Router {
  const { store, relay } = deps;
  const router = Router();

  router.post('/transfer', async (req, res) => {
    const principal = principalOf(res);
    const request = parseTransferRequest(req.body);
    if (!mayActFor(principal, request.fromAccount)) {
      throw new AppError('forbidden', `this API key may not move money out of account ${request.fromAccount}`);
    }
    assertDistinctAccounts(request);
    const claim = parseIdempotencyKey(req, principal);
    const receipt = await store.executeTransfer(request, claim, relay.lease);
    const transferId = receipt.replayed ? receipt.transferId : receipt.transfer.id;
    addLogContext({ transferId });
    res.locals.outcome = receipt.replayed ? 'replayed' : 'accepted';
    if (receipt.replayed) {
      res.setHeader('Idempotent-Replayed', 'true');
      logger.info('idempotent replay answered with the first transfer');
    } else {
      relay.enqueue(receipt.event);
      logger.info('transfer accepted', {
        fromAccount: request.fromAccount,
        toAccount: request.toAccount,
        amount: formatMinor(request.amountMinor),
        currency: receipt.transfer.currency,
      });
    }
    const statusUrl = `/transfers/${transferId}`;
    const body: TransferAccepted = { transferId, status: 'accepted', statusUrl };
    res.status(202).location(statusUrl).json(body);
  });

  router.get('/transfers/:id', async (req, res) => {
    const principal = principalOf(res);
    const transfer = await store.findTransfer(req.params.id);
    // Someone else's transfer answers exactly like a missing one: its existence is not ours to reveal.
    if (!transfer || !(mayActFor(principal, transfer.fromAccount) || mayActFor(principal, transfer.toAccount))) {
      throw new AppError('transfer_not_found', `transfer ${req.params.id} does not exist`);
    }
    const notifications = notificationStates(transfer.notifications, transfer.createdAt);
    // The notifications are the sender's; their errors can quote the sender's address, so only the sender sees them.
    const sender = mayActFor(principal, transfer.fromAccount);
    const body: TransferView = {
      transferId: transfer.id,
      status: transferStatus(notifications),
      fromAccount: transfer.fromAccount,
      toAccount: transfer.toAccount,
      amount: formatMinor(transfer.amountMinor),
      currency: transfer.currency,
      reference: transfer.reference,
      createdAt: transfer.createdAt,
      notifications: notifications
        .map(visibleState)
        .map(({ lastError, parked: _parked, ...n }) => (lastError === null || !sender ? n : { ...n, lastError })),
    };
    res.json(body);
  });

  return router;
}
