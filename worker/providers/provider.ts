import type { FailureKind, OutgoingNotification } from '../../shared/domain/notifications.js';

/** Delivers one notification; resolves once the provider has accepted it, throws ProviderError otherwise. */
export interface NotificationProvider {
  readonly name: string;
  /** Where sends go, for the start-up log line (credentials in it are masked there). */
  readonly endpoint?: string;
  send(notification: OutgoingNotification): Promise<void>;
  /** Releases connections; called once when the worker stops. */
  close?(): Promise<void>;
}

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

/** Anything a provider throws that it did not classify is presumed transient: retrying is the safe default. */
export function failureKind(error: unknown): FailureKind {
  return error instanceof ProviderError ? error.kind : 'transient';
}
