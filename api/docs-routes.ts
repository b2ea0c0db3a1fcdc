import { Router } from 'express';
import swaggerUi from 'swagger-ui-express';

/** /openapi.json and an interactive page for it at /docs; both open, like /health. */
export function docsRoutes(document: Record<string, unknown>): Router {
  const router = Router();
  router.get('/openapi.json', (_req, res) => {
    res.json(document);
  });
  router.use('/docs', swaggerUi.serve, swaggerUi.setup(document, { customSiteTitle: 'async-transfers API' }));
  return router;
}
