/**
 * The one error type the domain throws. `code` is stable and machine-readable
 * (and listed in the OpenAPI document); the API maps each code to an HTTP status
 * in one table (api/http-errors.ts).
 */
export const ERROR_CODES = [
  'invalid_body',
  'malformed_json',
  'invalid_header',
  'invalid_path',
  'unauthorized',
  'forbidden',
  'not_found',
  'account_not_found',
  'transfer_not_found',
  'payload_too_large',
  'unsupported_media_type',
  'insufficient_funds',
  'same_account',
  'currency_mismatch',
  'idempotency_key_reused',
  'idempotency_in_flight',
  'rate_limited',
  'database_unavailable',
  'internal_error',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class AppError extends Error {
  override name = 'AppError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isAppError(error: unknown, code?: ErrorCode): error is AppError {
  return error instanceof AppError && (code === undefined || error.code === code);
}
