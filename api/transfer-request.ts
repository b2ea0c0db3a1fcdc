import type { Request } from 'express';
import type { z } from 'zod';
import type { Principal } from '../shared/domain/api-keys.js';
import { AppError } from '../shared/domain/errors.js';
import type { IdempotencyClaim, TransferRequest } from '../shared/domain/ledger.js';
import { idempotencyKeySchema, transferBodySchema } from './http-contract.js';

function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
}

export function parseTransferRequest(body: unknown): TransferRequest {
  if (body === undefined) throw new AppError('invalid_body', 'a JSON object body is required');
  const parsed = transferBodySchema.safeParse(body);
  if (!parsed.success) throw new AppError('invalid_body', 'the request body is invalid', issuesOf(parsed.error));
  const b = parsed.data;
  return { fromAccount: b.fromAccount, toAccount: b.toAccount, amountMinor: b.amount, currency: b.currency ?? null, reference: b.reference ?? null };
}

/** Keys are scoped to the caller's API key, so two clients choosing the same key never collide. */
export function parseIdempotencyKey(req: Request, principal: Principal): IdempotencyClaim | null {
  const header = req.get('idempotency-key');
  if (header === undefined) return null;
  const parsed = idempotencyKeySchema.safeParse(header);
  if (!parsed.success) throw new AppError('invalid_header', 'Idempotency-Key is invalid', issuesOf(parsed.error));
  return { key: `${principal.keyId ?? 'anonymous'}:${parsed.data}` };
}
