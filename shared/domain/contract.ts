import { z } from 'zod';
import { MAX_AMOUNT_MINOR } from './money.js';
import { isChannel, type Channel } from './notifications.js';

/**
 * The message contract between the API (publisher) and the worker (consumer).
 * Both sides use these schemas, so a message one side writes is exactly what
 * the other side accepts. Unknown fields are ignored (tolerant reader), so a
 * newer publisher can add fields without breaking an older worker.
 */

export const accountIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_" or "-"');

export const currencySchema = z.string().regex(/^[A-Z]{3}$/, 'must be a 3-letter ISO 4217 code such as USD');

export const referenceSchema = z.string().max(140, 'must be at most 140 characters');

export const TRANSFER_COMPLETED = 'transfer.completed';

export const transferEventSchema = z.object({
  eventId: z.uuid(),
  type: z.literal(TRANSFER_COMPLETED),
  occurredAt: z.iso.datetime(),
  transfer: z.object({
    id: z.uuid(),
    fromAccount: accountIdSchema,
    toAccount: accountIdSchema,
    amountMinor: z.number().int().positive().max(MAX_AMOUNT_MINOR),
    currency: currencySchema,
    reference: referenceSchema.nullable(),
  }),
});

export type TransferEvent = z.infer<typeof transferEventSchema>;

export type ParsedEvent = { ok: true; event: TransferEvent } | { ok: false; reason: string };

export function parseTransferEvent(content: Buffer): ParsedEvent {
  let json: unknown;
  try {
    json = JSON.parse(content.toString('utf8'));
  } catch {
    return { ok: false, reason: 'message body is not valid JSON' };
  }
  const parsed = transferEventSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
    return { ok: false, reason: `message does not fit the transfer event contract: ${problems.join('; ')}` };
  }
  return { ok: true, event: parsed.data };
}

/**
 * Headers that travel with a message once it is retried or parked. A message
 * without them is a first delivery that concerns every channel.
 */
export const HEADERS = {
  /** The attempt this delivery makes, 1-based; it counts per round (a replay starts a new round). */
  attempt: 'x-attempt',
  /** Restricts the delivery to one channel, so a failing SMS never resends an email. */
  channel: 'x-notify-channel',
  /** Why the message was parked, for whoever reads the dead-letter queue. */
  failureReason: 'x-failure-reason',
  failedAt: 'x-failed-at',
  failedBy: 'x-failed-by',
  lastError: 'x-last-error',
  /** Set by the replay tool: this delivery starts a new round for a channel that was given up on. */
  replayedAt: 'x-replayed-at',
  /** Set on a delivery that came back because another worker was sending its channel. */
  deferredBy: 'x-deferred-by',
} as const;

/** Headers the broker adds and a copy of ours must not carry into its next life. */
export const BROKER_HEADERS = /^x-(death|first-death-.*|last-death-.*|delivery-count|publish-id)$/;

export type DeliveryScope = { ok: true; attempt: number; channel: Channel | null; replay: boolean } | { ok: false; reason: string };

export function readDeliveryScope(headers: Record<string, unknown> | undefined): DeliveryScope {
  const rawAttempt = headers?.[HEADERS.attempt];
  const rawChannel = headers?.[HEADERS.channel];
  const attempt = rawAttempt === undefined ? 1 : Number(rawAttempt);
  if (!Number.isInteger(attempt) || attempt < 1) return { ok: false, reason: `header ${HEADERS.attempt} is not a positive integer` };
  const replay = headers?.[HEADERS.replayedAt] !== undefined;
  if (rawChannel === undefined) return { ok: true, attempt, channel: null, replay };
  const channel = String(rawChannel);
  if (!isChannel(channel)) return { ok: false, reason: `header ${HEADERS.channel} names no known channel: ${channel}` };
  return { ok: true, attempt, channel, replay };
}
