import type { DeliveryScope, TransferEvent } from '../shared/domain/contract.js';
import { logger } from '../shared/runtime/logger.js';
import { CHANNELS, composeNotification, type Channel, type Contact } from '../shared/domain/notifications.js';
import { nextStep, type RetryPolicy } from '../shared/domain/retry-policy.js';
import type { AttemptRecord, Claimant, SendClaim, Store } from '../shared/store/store.js';
import type { WorkerMetrics } from './metrics.js';
import { failureKind, type NotificationProvider } from './providers/provider.js';
import { untilStored } from './store-retry.js';

export type Providers = Record<Channel, NotificationProvider>;
export type Scope = Extract<DeliveryScope, { ok: true }>;

/** A channel to try again after a delay, as its own message. */
export interface Retry {
  channel: Channel;
  attempt: number;
  delayMs: number;
  error: string;
}

/** Something to park in the dead-letter queue: one channel, or (channel null) the whole message. */
export interface Park {
  channel: Channel | null;
  attempt: number;
  reason: string;
}

/** A channel another live worker is sending: look again after a delay, without counting an attempt. */
export interface Deferral {
  channel: Channel;
  attempt: number;
  delayMs: number;
  by: string;
}

/** What the consumer publishes before it acks the delivery. Empty lists: just ack. */
export interface Decision {
  retries: Retry[];
  parked: Park[];
  deferred: Deferral[];
}

/** The delivery being handled, as the consumer holds it. */
export interface Delivery {
  /** True once the channel it came on has died: the broker has it back, so start no send for it. */
  lost(): boolean;
}

export const parkWhole = (attempt: number, reason: string): Decision => ({ retries: [], parked: [{ channel: null, attempt, reason }], deferred: [] });

/**
 * Sends a transfer's notifications and records each channel's outcome. Each
 * channel lives on its own: one that fails is retried or parked alone, and one
 * already recorded as sent is never sent again, so a redelivered or replayed
 * message only does what is left. Before a send goes to a provider the channel
 * is claimed in the database, so two workers holding copies of one message (a
 * redelivery after a dropped connection) never both send it.
 */
export class Notifier {
  constructor(
    private readonly store: Store,
    private readonly providers: Providers,
    private readonly policy: RetryPolicy,
    private readonly claimant: Claimant,
    private readonly signal: AbortSignal,
    private readonly metrics: WorkerMetrics,
  ) {}

  /**
   * Deliveries of one transfer take turns within a worker: two copies in hand at
   * once (a duplicate publish, an original and its retry) would otherwise race for
   * the claim and one would be sent back for nothing.
   */
  handle(event: TransferEvent, scope: Scope, delivery: Delivery): Promise<Decision> {
    return this.oneAtATime(event.transfer.id, () => this.handleNow(event, scope, delivery));
  }

  private async handleNow(event: TransferEvent, scope: Scope, delivery: Delivery): Promise<Decision> {
    const transferId = event.transfer.id;
    const claim = await this.claim(transferId, scope);
    if (!claim) return parkWhole(scope.attempt, `transfer ${transferId} is not in the store`);
    const decision = this.leftovers(claim, scope);
    if (claim.granted.length === 0) {
      logger.info('nothing to send for this delivery', { attempt: scope.attempt, channel: scope.channel ?? 'all', held: claim.held.length, unparked: claim.unparked.length });
      return decision;
    }
    if (delivery.lost()) {
      // The broker has handed this delivery to someone else: leave the sends to them.
      logger.info('delivery lost before its sends started; giving the claims back', { channels: claim.granted });
      await untilStored(() => this.store.releaseClaims(transferId, claim.granted, this.claimant), this.signal);
      return decision;
    }
    const results = await Promise.all(claim.granted.map((channel) => this.attempt(channel, event, claim.contact, scope.attempt)));

    const records: AttemptRecord[] = [];
    for (const r of results) {
      if (r.error === null) {
        records.push({ channel: r.channel, status: 'sent', error: null });
        continue;
      }
      const step = nextStep(this.policy, scope.attempt, failureKind(r.cause));
      if (step.kind === 'retry') {
        records.push({ channel: r.channel, status: 'pending', error: r.error });
        decision.retries.push({ channel: r.channel, attempt: step.attempt, delayMs: step.delayMs, error: r.error });
      } else {
        // Recorded failed, but shown failed only once the dead-letter copy is confirmed (confirmParked).
        records.push({ channel: r.channel, status: 'failed', error: r.error });
        const why = failureKind(r.cause) === 'permanent' ? 'permanent failure' : `gave up after attempt ${scope.attempt}`;
        decision.parked.push({ channel: r.channel, attempt: scope.attempt, reason: `${r.channel}: ${why}: ${r.error}` });
      }
    }
    await untilStored(() => this.store.recordAttempts(transferId, records, this.claimant), this.signal);
    return decision;
  }

  /**
   * The last delivery the queue allows of a message that failed every time
   * before (it crashed its worker, or the handler threw): do not try it again,
   * record its unsent channels as failed and park them, so the failure is
   * visible in GET /transfers/:id and replayable from the dead-letter queue.
   */
  quarantine(event: TransferEvent, scope: Scope, reason: string): Promise<Decision> {
    return this.oneAtATime(event.transfer.id, () => this.quarantineNow(event, scope, reason));
  }

  private async quarantineNow(event: TransferEvent, scope: Scope, reason: string): Promise<Decision> {
    const transferId = event.transfer.id;
    const claim = await this.claim(transferId, scope);
    if (!claim) return parkWhole(scope.attempt, reason);
    const decision = this.leftovers(claim, scope);
    const records = claim.granted.map((channel): AttemptRecord => ({ channel, status: 'failed', error: reason }));
    await untilStored(() => this.store.recordAttempts(transferId, records, this.claimant), this.signal);
    decision.parked.push(...claim.granted.map((channel) => ({ channel, attempt: scope.attempt, reason: `${channel}: ${reason}` })));
    return decision;
  }

  /** The parked channels' dead-letter copies are confirmed: from now on they show failed. */
  async confirmParked(transferId: string, decision: Decision): Promise<void> {
    const channels = decision.parked.flatMap((p) => (p.channel ? [p.channel] : []));
    if (channels.length > 0) await untilStored(() => this.store.markParked(transferId, channels), this.signal);
  }

  /** A first delivery concerns every channel; a retry, deferral or replay names its own. */
  private claim(transferId: string, scope: Scope) {
    const channels = scope.channel === null ? CHANNELS : [scope.channel];
    return untilStored(() => this.store.claimSends(transferId, channels, this.claimant, { replay: scope.replay }), this.signal);
  }

  /** What the claim leaves besides sending: channels another worker is sending, and failures never parked. */
  private leftovers(claim: SendClaim, scope: Scope): Decision {
    const delayMs = this.policy.delaysMs[0]!;
    return {
      retries: [],
      deferred: claim.held.map((h) => ({ channel: h.channel, attempt: scope.attempt, delayMs, by: h.by })),
      parked: claim.unparked.map((u) => ({
        channel: u.channel,
        attempt: scope.attempt,
        reason: `${u.channel}: ${u.lastError ?? 'failed'} (parked on a later delivery: the first dead-letter copy was never confirmed)`,
      })),
    };
  }

  private readonly turns = new Map<string, Promise<unknown>>();

  private oneAtATime<T>(transferId: string, work: () => Promise<T>): Promise<T> {
    const before = this.turns.get(transferId) ?? Promise.resolve();
    const mine = before.then(work, work);
    const settled = mine.catch(() => undefined);
    this.turns.set(transferId, settled);
    void settled.then(() => {
      if (this.turns.get(transferId) === settled) this.turns.delete(transferId);
    });
    return mine;
  }

  private async attempt(channel: Channel, event: TransferEvent, contact: Contact, attempt: number) {
    const provider = this.providers[channel];
    const started = performance.now();
    try {
      await provider.send(composeNotification(channel, event, contact));
      const ms = performance.now() - started;
      this.metrics.observeSend(channel, 'sent', ms / 1000);
      logger.info('notification sent', { channel, attempt, provider: provider.name, durationMs: Math.round(ms) });
      return { channel, error: null, cause: null };
    } catch (error) {
      this.metrics.observeSend(channel, 'failed', (performance.now() - started) / 1000);
      const message = error instanceof Error ? error.message : String(error);
      logger.warn('notification failed', { channel, attempt, provider: provider.name, kind: failureKind(error), error: message });
      return { channel, error: message, cause: error };
    }
  }
}
