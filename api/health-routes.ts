import { Router } from 'express';
import type { Store } from '../shared/store/index.js';
import type { Readiness } from './http-contract.js';

/** /health: the process answers. /ready: it can do its job, i.e. reach the database and the broker. */
export function healthRoutes(deps: { store: Store; brokerConnected: () => boolean }): Router {
  const router = Router();
  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/ready', async (_req, res) => {
    const database = await deps.store.ping().then(
      () => 'up' as const,
      () => 'down' as const,
    );
    const broker = deps.brokerConnected() ? ('up' as const) : ('down' as const);
    const ready = database === 'up' && broker === 'up';
    const body: Readiness = { status: ready ? 'ready' : 'unavailable', checks: { database, broker } };
    res.status(ready ? 200 : 503).json(body);
  });
  return router;
}
