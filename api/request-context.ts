import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import { logger, withLogContext } from '../shared/runtime/logger.js';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Gives every request an id (the caller's X-Request-Id when it is sane), echoes
 * it, and runs the rest of the request inside a log context carrying it; one
 * line per request records its outcome.
 */
export const requestContext: RequestHandler = (req, res, next) => {
  const incoming = req.get('x-request-id');
  const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader('X-Request-Id', requestId);
  const started = process.hrtime.bigint();
  withLogContext({ requestId }, () => {
    res.on('finish', () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      logger.http('request', { method: req.method, path: req.originalUrl, status: res.statusCode, durationMs: Math.round(durationMs * 100) / 100 });
    });
    next();
  });
};
