import type { TransferEvent } from '../shared/contract.js';
import { logger } from '../shared/logger.js';
import { composeNotification, notificationStates, type Channel, type Contact } from '../shared/notifications.js';
import type { AttemptRecord, Store } from '../shared/store/store.js';
import type { NotificationProvider } from './providers/provider.js';
import { untilStored } from './store-retry.js';

/** What the consumer does with the delivery once the notifier is done. */
export type Decision = { kind: 'ack' } | { kind: 'dead-letter'; reason: string };

export type Providers = Record<Channel, NotificationProvider>;

/**
 * Sends a transfer's notifications and records each channel's outcome. A channel
 * already recorded as sent is never sent again, so a redelivered message only
 * does what is left.
 */
export class Notifier {
  constructor(
    private readonly store: Store,
    private readonly providers: Providers,
    private readonly signal: AbortSignal,
  ) {}

  async handle(event: TransferEvent): Promise<Decision> {
    const transferId = event.transfer.id;
    const delivery = await untilStored(() => this.store.loadDelivery(transferId), this.signal);
    if (!delivery) return { kind: 'dead-letter', reason: `transfer ${transferId} is not in the store` };

    const due = notificationStates(delivery.notifications, event.occurredAt).filter((s) => s.status !== 'sent');
    if (due.length === 0) {
      logger.info('notifications already sent, nothing left to do');
      return { kind: 'ack' };
    }
    const attempts = await Promise.all(due.map((s) => this.attempt(s.channel, event, delivery.contact)));
    await untilStored(() => this.store.recordAttempts(transferId, attempts), this.signal);

    const failed = attempts.filter((a) => a.status === 'failed');
    if (failed.length > 0) return { kind: 'dead-letter', reason: failed.map((f) => `${f.channel}: ${f.error}`).join('; ') };
    return { kind: 'ack' };
  }

  private async attempt(channel: Channel, event: TransferEvent, contact: Contact): Promise<AttemptRecord> {
    const provider = this.providers[channel];
    const started = performance.now();
    try {
      await provider.send(composeNotification(channel, event, contact));
      logger.info('notification sent', { channel, provider: provider.name, durationMs: Math.round(performance.now() - started) });
      return { channel, status: 'sent', error: null };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      logger.warn('notification failed', { channel, provider: provider.name, error: message });
      return { channel, status: 'failed', error: message };
    }
  }
}
