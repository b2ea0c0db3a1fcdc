import type { RequestHandler, Response } from 'express';
import { authenticate, type Principal } from '../shared/domain/api-keys.js';
import { AppError } from '../shared/domain/errors.js';
import { addLogContext } from '../shared/runtime/logger.js';
import type { Store } from '../shared/store/index.js';

const EVERYONE: Principal = { keyId: null, accounts: 'all' };
const BEARER = /^Bearer\s+(\S+)$/i;

/**
 * Authorization: Bearer <api key>. A missing or bad key is 401 with a
 * WWW-Authenticate challenge; the key id joins every log line of the request.
 */
export function requireApiKey(deps: { store: Store; authDisabled: boolean }): RequestHandler {
  return async (req, res, next) => {
    if (deps.authDisabled) {
      res.locals.principal = EVERYONE;
      return next();
    }
    const match = BEARER.exec(req.get('authorization') ?? '');
    if (!match) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="async-transfers"');
      return next(new AppError('unauthorized', 'send an API key as Authorization: Bearer <key>'));
    }
    const principal = await authenticate(deps.store, match[1]!);
    if (!principal) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="async-transfers", error="invalid_token"');
      return next(new AppError('unauthorized', 'the API key is unknown or revoked'));
    }
    addLogContext({ keyId: principal.keyId });
    res.locals.principal = principal;
    next();
  };
}

export function principalOf(res: Response): Principal {
  const principal = res.locals.principal as Principal | undefined;
  if (!principal) throw new Error('route served without requireApiKey in front of it');
  return principal;
}
