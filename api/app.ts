import express from 'express';
import type { Store } from '../shared/store/index.js';
import { healthRoutes } from './health-routes.js';
import { errorHandler, notFoundHandler } from './http-errors.js';
import type { OutboxRelay } from './outbox-relay.js';
import { requestContext } from './request-context.js';
import { requireJson, transferRoutes } from './transfer-routes.js';

export const BODY_LIMIT = '16kb';

export interface AppDeps {
  store: Store;
  relay: OutboxRelay;
  brokerConnected: () => boolean;
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestContext);
  app.use(healthRoutes(deps));
  app.use(requireJson);
  app.use(express.json({ limit: BODY_LIMIT, strict: true }));
  app.use(transferRoutes(deps));
  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
