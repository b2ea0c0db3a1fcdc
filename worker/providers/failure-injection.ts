import type { OutgoingNotification } from '../../shared/domain/notifications.js';
import { ProviderError, type NotificationProvider } from './provider.js';

/**
 * A demo setting, not a feature: with NOTIFY_FAILURE_RATE > 0 this share of sends
 * fails transiently before it reaches the real provider (SMTP, the SMS gateway, or
 * the simulated one), so retries and dead-lettering can be watched with any
 * provider, Compose's Mailpit included. It fails *before* sending, so an email
 * that finally goes out reaches the inbox once. createProviders does not wrap at
 * all when the rate is 0, so the normal path never passes through here.
 */
export class FailureInjectingProvider implements NotificationProvider {
  readonly name: string;
  readonly endpoint?: string;

  constructor(
    private readonly inner: NotificationProvider,
    private readonly rate: number,
    private readonly random: () => number = Math.random,
  ) {
    this.name = inner.name;
    if (inner.endpoint !== undefined) this.endpoint = inner.endpoint;
  }

  async send(notification: OutgoingNotification): Promise<void> {
    if (this.random() < this.rate) {
      throw new ProviderError(`${this.inner.name}: injected ${notification.channel} failure (NOTIFY_FAILURE_RATE=${this.rate})`, 'transient');
    }
    await this.inner.send(notification);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
