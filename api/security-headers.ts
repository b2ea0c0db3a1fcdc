import type { RequestHandler } from 'express';
import helmet from 'helmet';

/**
 * Security headers (helmet), in two cuts. JSON answers get what OWASP's REST
 * guidance asks of an API: HSTS, nosniff, no framing, no referrer, a CSP that
 * allows nothing, and no caching of balances. The HTML page at /docs gets
 * helmet's full browser set, with the inline styles and data: images Swagger UI
 * needs. Sending the browser-only headers on every JSON answer would cost every
 * request and protect nothing.
 */
const apiHeaders: RequestHandler = (() => {
  const headers = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { 'default-src': ["'none'"], 'frame-ancestors': ["'none'"] } },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
    xContentTypeOptions: true,
    crossOriginOpenerPolicy: false,
    crossOriginResourcePolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });
  return (req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    headers(req, res, next);
  };
})();

const docsHeaders: RequestHandler = helmet({
  contentSecurityPolicy: { directives: { 'style-src': ["'self'", "'unsafe-inline'"], 'img-src': ["'self'", 'data:'] } },
});

export const securityHeaders: RequestHandler = (req, res, next) =>
  (req.path === '/docs' || req.path.startsWith('/docs/') ? docsHeaders : apiHeaders)(req, res, next);
