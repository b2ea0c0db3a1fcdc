import { setTimeout as sleep } from 'node:timers/promises';
import { logger } from '../../shared/runtime/logger.js';
import type { OutgoingNotification } from '../../shared/domain/notifications.js';
import type { NotificationProvider } from './provider.js';

/**
 * Stands in for a real provider: takes NOTIFY_LATENCY_MS and logs what it would
 * have sent. NOTIFY_FAILURE_RATE fails sends of every provider, this one included
 * (failure-injection.ts).
 */
export class SimulatedProvider implements NotificationProvider {
  readonly name = 'simulated';

  constructor(private readonly latencyMs: number) {}

  async send(notification: OutgoingNotification): Promise<void> {
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    logger.info('simulated provider delivered', {
      channel: notification.channel,
      to: notification.to,
      subject: notification.subject,
    });
  }
}
