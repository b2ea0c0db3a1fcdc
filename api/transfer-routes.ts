import { Router, type RequestHandler } from 'express';
import { AppError } from '../shared/errors.js';
import { assertDistinctAccounts } from '../shared/ledger.js';
import { addLogContext, logger } from '../shared/logger.js';
import { formatMinor } from '../shared/money.js';
import { notificationStates, transferStatus } from '../shared/notifications.js';
import type { Store } from '../shared/store/index.js';
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
    const request = parseTransferRequest(req.body);
    assertDistinctAccounts(request);
    const claim = parseIdempotencyKey(req, request);
    const receipt = await store.executeTransfer(request, claim, relay.lease);
    const transferId = receipt.replayed ? receipt.transferId : receipt.transfer.id;
    addLogContext({ transferId });
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
    res.status(202).location(statusUrl).json({ transferId, status: 'accepted', statusUrl });
  });

  router.get('/transfers/:id', async (req, res) => {
    const transfer = await store.findTransfer(req.params.id);
    if (!transfer) throw new AppError('transfer_not_found', `transfer ${req.params.id} does not exist`);
    const notifications = notificationStates(transfer.notifications, transfer.createdAt);
    res.json({
      transferId: transfer.id,
      status: transferStatus(notifications),
      fromAccount: transfer.fromAccount,
      toAccount: transfer.toAccount,
      amount: formatMinor(transfer.amountMinor),
      currency: transfer.currency,
      reference: transfer.reference,
      createdAt: transfer.createdAt,
      notifications: notifications.map(({ lastError, ...n }) => (lastError === null ? n : { ...n, lastError })),
    });
  });

  router.get('/accounts/:id', async (req, res) => {
    const account = await store.findAccount(req.params.id);
    if (!account) throw new AppError('account_not_found', `account ${req.params.id} does not exist`);
    res.json({ accountId: account.id, ownerName: account.ownerName, balance: formatMinor(account.balanceMinor), currency: account.currency });
  });

  return router;
}
