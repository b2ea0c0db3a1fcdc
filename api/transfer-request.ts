import type { Request } from 'express';
import { z } from 'zod';
import { accountIdSchema, currencySchema, referenceSchema } from '../shared/contract.js';
import { AppError } from '../shared/errors.js';
import { requestFingerprint, type IdempotencyClaim, type TransferRequest } from '../shared/ledger.js';
import { parseAmount } from '../shared/money.js';

export const transferBodySchema = z.strictObject({
  fromAccount: accountIdSchema,
  toAccount: accountIdSchema,
  amount: z.union([z.number(), z.string()], { error: 'amount must be a number or a decimal string' }).transform((value, ctx) => {
    const parsed = parseAmount(value);
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: parsed.message });
      return z.NEVER;
    }
    return parsed.minor;
  }),
  currency: currencySchema.optional(),
  reference: referenceSchema.optional(),
});

const idempotencyKeySchema = z.string().regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 visible ASCII characters');

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

export function parseIdempotencyKey(req: Request, request: TransferRequest): IdempotencyClaim | null {
  const header = req.get('idempotency-key');
  if (header === undefined) return null;
  const parsed = idempotencyKeySchema.safeParse(header);
  if (!parsed.success) throw new AppError('invalid_header', 'Idempotency-Key is invalid', issuesOf(parsed.error));
  return { key: parsed.data, requestHash: requestFingerprint(request) };
}
