import type { RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit, type Options } from 'express-rate-limit';
import type { Config } from '../shared/runtime/config.js';
import { AppError } from '../shared/domain/errors.js';
import { principalOf } from './auth.js';

/**
 * Limits on POST /transfer (express-rate-limit, in-memory, so per API process):
 * one per client address before authentication, so guessing keys is slow too,
 * and one per API key after it, so one client cannot starve the others.
 * Exceeding either is 429 with Retry-After; every answer carries RateLimit-* headers.
 */
/** The client address as a limiter key: IPv4 as it is, IPv6 by its /56 (ipKeyGenerator), without parsing on the hot path. */
function addressKey(ip: string | undefined): string {
  const address = ip ?? '';
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  return address.includes(':') ? ipKeyGenerator(address) : address;
}

export function transferRateLimits(config: Config): { perAddress: RequestHandler; perKey: RequestHandler } {
  const common: Partial<Options> = {
    windowMs: config.rateLimit.windowMs,
    standardHeaders: 'draft-6',
    legacyHeaders: false,
    // Its check reads the key generators' source for `req.ip`; addressKey does apply ipKeyGenerator to IPv6.
    validate: { keyGeneratorIpFallback: false },
    handler: (_req, res, next) => {
      next(new AppError('rate_limited', `too many transfer requests; retry after ${res.getHeader('Retry-After')} s`));
    },
  };
  return {
    // Headers only from the per-key limit, the one a client can act on; this one sets Retry-After itself when it refuses.
    perAddress: rateLimit({
      ...common,
      standardHeaders: false,
      limit: config.rateLimit.perIp,
      identifier: 'per-address',
      keyGenerator: (req) => addressKey(req.ip),
      handler: (req, res, next) => {
        const resetTime = (req as { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
        const seconds = Math.max(1, Math.ceil(((resetTime?.getTime() ?? Date.now() + config.rateLimit.windowMs) - Date.now()) / 1000));
        res.setHeader('Retry-After', String(seconds));
        next(new AppError('rate_limited', `too many requests from this address; retry after ${seconds} s`));
      },
    }),
    perKey: rateLimit({
      ...common,
      limit: config.rateLimit.perKey,
      identifier: 'per-key',
      keyGenerator: (req, res) => principalOf(res).keyId ?? addressKey(req.ip),
    }),
  };
}
