import type { OutgoingNotification } from '../../shared/notifications.js';

/** Delivers one notification; resolves once the provider has accepted it, throws ProviderError otherwise. */
export interface NotificationProvider {
  readonly name: string;
  send(notification: OutgoingNotification): Promise<void>;
}

/**
 * transient: worth another attempt later (timeout, connection refused, 5xx).
 * permanent: another attempt would fail the same way (4xx, invalid recipient).
 */
export type FailureKind = 'transient' | 'permanent';

export class ProviderError extends Error {
  override name = 'ProviderError';

  constructor(
    message: string,
    readonly kind: FailureKind,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
