import { setTimeout as sleep } from 'node:timers/promises';
import { logger } from '../../shared/runtime/logger.js';
import type { OutgoingNotification } from '../../shared/domain/notifications.js';
import { ProviderError, type NotificationProvider } from './provider.js';

/**
 * Stands in for a real provider: takes NOTIFY_LATENCY_MS and logs what it would
 * have sent. With NOTIFY_FAILURE_RATE it fails that share of sends transiently,
 * to watch retries and dead-lettering work in a demo.
 */
export class SimulatedProvider implements NotificationProvider {
  readonly name = 'simulated';

  constructor(
    private readonly latencyMs: number,
    private readonly failureRate = 0,
    private readonly random: () => number = Math.random,
  ) {}

  async send(notification: OutgoingNotification): Promise<void> {
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    if (this.failureRate > 0 && this.random() < this.failureRate) {
      throw new ProviderError(`simulated ${notification.channel} provider timed out (NOTIFY_FAILURE_RATE)`, 'transient');
    }
    logger.info('simulated provider delivered', {
      channel: notification.channel,
      to: notification.to,
      subject: notification.subject,
    });
  }
}
