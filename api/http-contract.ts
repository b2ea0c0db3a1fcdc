import { z } from 'zod';
import { accountIdSchema, currencySchema, referenceSchema } from '../shared/domain/contract.js';
import { ERROR_CODES } from '../shared/domain/errors.js';
import { parseAmount } from '../shared/domain/money.js';
import { CHANNELS } from '../shared/domain/notifications.js';

/**
 * The HTTP contract, once: these schemas validate requests, type the handlers'
 * responses, and generate the OpenAPI document at /openapi.json.
 */

export const transferBodySchema = z
  .strictObject({
    fromAccount: accountIdSchema.meta({ description: 'Account to debit; the API key must be bound to it', example: 'user-A' }),
    toAccount: accountIdSchema.meta({ description: 'Account to credit', example: 'user-B' }),
    amount: z
      .union([z.number(), z.string()], { error: 'amount must be a number or a decimal string' })
      .transform((value, ctx) => {
        const parsed = parseAmount(value);
        if (!parsed.ok) {
          ctx.addIssue({ code: 'custom', message: parsed.message });
          return z.NEVER;
        }
        return parsed.minor;
      })
      .meta({
        description: 'Greater than 0, at most 2 decimals; a JSON number (150.75) or a decimal string ("150.75"). Converted to integer minor units exactly.',
        example: 150.75,
      }),
    currency: currencySchema.optional().meta({ description: 'Defaults to the accounts’ currency; must match both', example: 'USD' }),
    reference: referenceSchema.optional().meta({ description: 'Free text shown in the notifications', example: 'rent' }),
  })
  .meta({ id: 'TransferRequest', description: 'Unknown fields are refused.' });

export const idempotencyKeySchema = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 visible ASCII characters')
  .meta({ description: 'Makes the POST safe to retry: a replay with the same body returns the first answer', example: 'order-2026-0001' });

export const transferAcceptedSchema = z
  .object({
    transferId: z.uuid(),
    status: z.literal('accepted'),
    statusUrl: z.string().meta({ example: '/transfers/2f506e24-0608-484e-88ac-9afa1054f510' }),
  })
  .meta({ id: 'TransferAccepted', description: 'The money has moved; the notifications will follow.' });

export const notificationSchema = z
  .object({
    channel: z.enum(CHANNELS),
    status: z.enum(['pending', 'sent', 'failed']),
    attempts: z.number().int().min(0),
    lastError: z.string().optional(),
    updatedAt: z.iso.datetime(),
  })
  .meta({ id: 'Notification' });

const decimalAmount = z.string().regex(/^-?\d+\.\d{2}$/).meta({ example: '150.75' });

export const transferViewSchema = z
  .object({
    transferId: z.uuid(),
    status: z.enum(['accepted', 'notified', 'notification_failed']).meta({
      description: 'accepted: a notification is still pending; notified: all sent; notification_failed: one gave up (the money still moved)',
    }),
    fromAccount: accountIdSchema,
    toAccount: accountIdSchema,
    amount: decimalAmount,
    currency: currencySchema,
    reference: z.string().nullable(),
    createdAt: z.iso.datetime(),
    notifications: z.array(notificationSchema),
  })
  .meta({ id: 'Transfer' });

export const accountViewSchema = z
  .object({ accountId: accountIdSchema, ownerName: z.string(), balance: decimalAmount, currency: currencySchema })
  .meta({ id: 'Account' });

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string(),
      details: z.unknown().optional().meta({ description: 'For invalid_body: [{path, message}] per problem' }),
    }),
  })
  .meta({ id: 'Error' });

export const healthSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

const up = z.enum(['up', 'down']);
export const readySchema = z
  .object({ status: z.enum(['ready', 'unavailable']), checks: z.object({ database: up, broker: up }) })
  .meta({ id: 'Readiness' });

export type TransferAccepted = z.infer<typeof transferAcceptedSchema>;
export type TransferView = z.infer<typeof transferViewSchema>;
export type AccountView = z.infer<typeof accountViewSchema>;
export type ErrorBody = z.infer<typeof errorBodySchema>;
export type Readiness = z.infer<typeof readySchema>;

/** Requests the OpenAPI document offers as examples; a test posts each one. */
export const TRANSFER_EXAMPLES = {
  number: { summary: 'Amount as a JSON number', value: { fromAccount: 'user-A', toAccount: 'user-B', amount: 150.75 } },
  string: { summary: 'Amount as a decimal string, with a reference', value: { fromAccount: 'user-A', toAccount: 'user-C', amount: '12.50', currency: 'USD', reference: 'lunch' } },
} as const;
