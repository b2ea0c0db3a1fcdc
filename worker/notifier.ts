import type { DeliveryScope, TransferEvent } from '../shared/domain/contract.js';
import { logger } from '../shared/runtime/logger.js';
import { composeNotification, notificationStates, type Channel, type Contact, type NotificationState } from '../shared/domain/notifications.js';
import { nextStep, type RetryPolicy } from '../shared/domain/retry-policy.js';
import type { AttemptRecord, Store } from '../shared/store/store.js';
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

/** What the consumer publishes before it acks the delivery. Empty lists: just ack. */
export interface Decision {
  retries: Retry[];
  parked: Park[];
}

const DONE: Decision = { retries: [], parked: [] };

/**
 * Sends a transfer's notifications and records each channel's outcome. Each
 * channel lives on its own: one that fails is retried or parked alone, and one
 * already recorded as sent is never sent again, so a redelivered or replayed
 * message only does what is left.
 */
export class Notifier {
  constructor(
    private readonly store: Store,
    private readonly providers: Providers,
    private readonly policy: RetryPolicy,
    private readonly signal: AbortSignal,
    private readonly metrics: WorkerMetrics,
  ) {}

  /**
   * Deliveries of one transfer take turns within a worker: two copies in hand at
   * once (a duplicate publish, an original and its retry) would otherwise both
   * read "pending" and both send.
   */
  handle(event: TransferEvent, scope: Scope): Promise<Decision> {
    return this.oneAtATime(event.transfer.id, () => this.handleNow(event, scope));
  }

  private async handleNow(event: TransferEvent, scope: Scope): Promise<Decision> {
    const transferId = event.transfer.id;
    const delivery = await untilStored(() => this.store.loadDelivery(transferId), this.signal);
    if (!delivery) return { retries: [], parked: [{ channel: null, attempt: scope.attempt, reason: `transfer ${transferId} is not in the store` }] };

    const due = this.dueChannels(delivery.notifications, event, scope);
    if (due.length === 0) {
      logger.info('nothing left to send for this delivery', { attempt: scope.attempt, channel: scope.channel ?? 'all' });
      return DONE;
    }
    const results = await Promise.all(due.map((channel) => this.attempt(channel, event, delivery.contact, scope.attempt)));

    const records: AttemptRecord[] = [];
    const decision: Decision = { retries: [], parked: [] };
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
        records.push({ channel: r.channel, status: 'failed', error: r.error });
        const why = failureKind(r.cause) === 'permanent' ? 'permanent failure' : `gave up after attempt ${scope.attempt}`;
        decision.parked.push({ channel: r.channel, attempt: scope.attempt, reason: `${r.channel}: ${why}: ${r.error}` });
      }
    }
    await untilStored(() => this.store.recordAttempts(transferId, records), this.signal);
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
    const delivery = await untilStored(() => this.store.loadDelivery(transferId), this.signal);
    if (!delivery) return { retries: [], parked: [{ channel: null, attempt: scope.attempt, reason }] };
    const channels = notificationStates(delivery.notifications, event.occurredAt)
      .filter((s) => (scope.channel === null || s.channel === scope.channel) && s.status !== 'sent')
      .map((s) => s.channel);
    await untilStored(() => this.store.recordAttempts(transferId, channels.map((channel) => ({ channel, status: 'failed', error: reason }))), this.signal);
    return { retries: [], parked: channels.map((channel) => ({ channel, attempt: scope.attempt, reason: `${channel}: ${reason}` })) };
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

  /**
   * A first delivery (no channel named) sends what is still pending. A retry or
   * replay names its channel and sends it unless it was already sent.
   */
  private dueChannels(states: NotificationState[], event: TransferEvent, scope: Scope): Channel[] {
    return notificationStates(states, event.occurredAt)
      .filter((s) => (scope.channel === null ? s.status === 'pending' : s.channel === scope.channel && s.status !== 'sent'))
      .map((s) => s.channel);
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
