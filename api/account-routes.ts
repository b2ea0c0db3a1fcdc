import { Router } from 'express';
import { mayActFor } from '../shared/domain/api-keys.js';
import { AppError } from '../shared/domain/errors.js';
import { formatMinor } from '../shared/domain/money.js';
import type { Store } from '../shared/store/index.js';
import { principalOf } from './auth.js';
import type { AccountView } from './http-contract.js';

export function accountRoutes(deps: { store: Store }): Router {
  const router = Router();
  router.get('/accounts/:id', async (req, res) => {
    // An account the key is not bound to answers like a missing one, so keys cannot probe for accounts.
    const account = mayActFor(principalOf(res), req.params.id) ? await deps.store.findAccount(req.params.id) : null;
    if (!account) throw new AppError('account_not_found', `account ${req.params.id} does not exist`);
    const body: AccountView = { accountId: account.id, ownerName: account.ownerName, balance: formatMinor(account.balanceMinor), currency: account.currency };
    res.json(body);
  });
  return router;
}
