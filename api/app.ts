import express from 'express';
import type { Config } from '../shared/runtime/config.js';
import type { Store } from '../shared/store/index.js';
import { accountRoutes } from './account-routes.js';
import { requireApiKey } from './auth.js';
import { docsRoutes } from './docs-routes.js';
import { healthRoutes } from './health-routes.js';
import { ApiMetrics } from './metrics.js';
import { errorHandler, notFoundHandler } from './http-errors.js';
import { openApiDocument } from './openapi.js';
import type { OutboxRelay } from './outbox-relay.js';
import { transferRateLimits } from './rate-limits.js';
import { requestContext } from './request-context.js';
import { securityHeaders } from './security-headers.js';
import { requireJson, transferRoutes } from './transfer-routes.js';

export const BODY_LIMIT = '16kb';

export interface AppDeps {
  config: Config;
  store: Store;
  relay: OutboxRelay;
  brokerConnected: () => boolean;
}

export function createApp(deps: AppDeps): express.Express {
  const { config } = deps;
  const document = openApiDocument();
  const metrics = new ApiMetrics(deps);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);
  app.use(requestContext);
  app.use(metrics.requests(Object.keys(document.paths as object)));
  app.use(securityHeaders);

  // Money first, it is the hot path: per-address limit before authentication, per-key limit after it, JSON only.
  const limits = transferRateLimits(config);
  app.post('/transfer', limits.perAddress);
  app.use(['/transfer', '/transfers', '/accounts'], requireApiKey({ store: deps.store, authDisabled: config.authDisabled }));
  app.post('/transfer', limits.perKey);
  app.use(requireJson);
  app.use(express.json({ limit: BODY_LIMIT, strict: true }));
  app.use(transferRoutes(deps));
  app.use(accountRoutes(deps));

  // Open: probes, metrics and documentation.
  app.use(healthRoutes(deps));
  app.get('/metrics', metrics.handler());
  app.use(docsRoutes(document));

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
