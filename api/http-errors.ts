import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, type ErrorCode } from '../shared/domain/errors.js';
import { logger } from '../shared/runtime/logger.js';
import type { ErrorBody } from './http-contract.js';

/** The one table from error code to HTTP status. */
export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  invalid_body: 400,
  malformed_json: 400,
  invalid_header: 400,
  invalid_path: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  account_not_found: 404,
  transfer_not_found: 404,
  idempotency_in_flight: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  insufficient_funds: 422,
  same_account: 422,
  currency_mismatch: 422,
  idempotency_key_reused: 422,
  rate_limited: 429,
  internal_error: 500,
  database_unavailable: 503,
};

/** body-parser signals its failures with a `type`; these are the caller's mistakes, not ours. */
const BODY_PARSER_ERRORS: Record<string, () => AppError> = {
  'entity.parse.failed': () => new AppError('malformed_json', 'the request body is not valid JSON'),
  'entity.too.large': () => new AppError('payload_too_large', 'the request body is too large'),
  'encoding.unsupported': () => new AppError('unsupported_media_type', 'unsupported content encoding'),
  'charset.unsupported': () => new AppError('unsupported_media_type', 'unsupported charset; send UTF-8 JSON'),
};

function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  // The router could not percent-decode a path parameter (/transfers/%E0): the caller's mistake.
  if (error instanceof URIError) return new AppError('invalid_path', 'the path is not valid percent-encoded UTF-8');
  const type = (error as { type?: unknown } | null)?.type;
  const converter = typeof type === 'string' ? BODY_PARSER_ERRORS[type] : undefined;
  if (converter) return converter();
  return new AppError('internal_error', 'internal error', undefined, { cause: error });
}

export const errorHandler: ErrorRequestHandler = (error, _req, res, _next) => {
  const appError = toAppError(error);
  const status = STATUS_BY_CODE[appError.code];
  res.locals.outcome = appError.code;
  if (appError.code === 'database_unavailable') {
    // An outage, not a bug: one line without a stack per refused request.
    logger.warn('request refused, database unavailable', { error: (appError.cause as Error | undefined)?.message });
  } else if (status >= 500) {
    logger.error('request failed', { code: appError.code, error: appError.cause ?? appError });
  }
  if (res.headersSent) return;
  if (appError.code === 'database_unavailable') res.setHeader('Retry-After', '5');
  const body: ErrorBody = {
    error: { code: appError.code, message: appError.message, ...(appError.details === undefined ? {} : { details: appError.details }) },
  };
  res.status(status).json(body);
};

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new AppError('not_found', `no route for ${req.method} ${req.path}`));
};
