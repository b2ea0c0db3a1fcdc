import type { FailureKind, OutgoingNotification } from '../../shared/domain/notifications.js';
import { ProviderError, type NotificationProvider } from './provider.js';

/** 408 and 429 are "not now", like a 5xx; any other 4xx is a refusal that will not change. */
export function classifyHttpStatus(status: number): FailureKind {
  return status >= 500 || status === 408 || status === 429 ? 'transient' : 'permanent';
}

/**
 * SMS as a JSON POST to a gateway. The Idempotency-Key header (transfer id and
 * channel) lets the gateway drop a duplicate we could not prevent.
 */
export class SmsWebhookProvider implements NotificationProvider {
  readonly name = 'sms-webhook';

  constructor(
    readonly endpoint: string,
    private readonly token: string | null,
    private readonly timeoutMs: number,
  ) {}

  async send(n: OutgoingNotification): Promise<void> {
    let response: Response;
    try {
      response = await fetch(this.endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': n.idempotencyKey,
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        body: JSON.stringify({ to: n.to, text: n.text, transferId: n.transferId, idempotencyKey: n.idempotencyKey }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      // Timeouts, refused and reset connections: the gateway may answer next time.
      const reason = (error as Error).name === 'TimeoutError' ? `no answer within ${this.timeoutMs} ms` : (error as Error).message;
      throw new ProviderError(`SMS gateway: ${reason}`, 'transient', { cause: error });
    }
    if (response.ok) {
      await response.body?.cancel();
      return;
    }
    const detail = (await response.text().catch(() => '')).slice(0, 200);
    throw new ProviderError(`SMS gateway answered ${response.status}${detail ? `: ${detail}` : ''}`, classifyHttpStatus(response.status));
  }
}
