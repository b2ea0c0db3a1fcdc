import { createRequire } from 'node:module';
import type { Agent as AgentType, request as requestType } from 'undici';

// Loaded when this provider is configured: a worker that sends no SMS over HTTP starts without it (about 140 ms).
const undici = () => createRequire(import.meta.url)('undici') as { Agent: typeof AgentType; request: typeof requestType };
import type { FailureKind, OutgoingNotification } from '../../shared/domain/notifications.js';
import { ProviderError, type NotificationProvider } from './provider.js';

/** 408 and 429 are "not now", like a 5xx; any other 4xx is a refusal that will not change. */
export function classifyHttpStatus(status: number): FailureKind {
  return status >= 500 || status === 408 || status === 429 ? 'transient' : 'permanent';
}

/**
 * SMS as a JSON POST to a gateway. The Idempotency-Key header (transfer id and
 * channel) lets the gateway drop a duplicate we could not prevent. Requests go
 * through one keep-alive connection pool (undici, which Node's fetch is built on)
 * sized to what the worker holds at once, so a slow gateway never queues sends
 * behind a connection limit and never pays a TCP (or TLS) handshake per SMS.
 */
export class SmsWebhookProvider implements NotificationProvider {
  readonly name = 'sms-webhook';
  private readonly agent: AgentType;
  private readonly request: typeof requestType;

  constructor(
    readonly endpoint: string,
    private readonly token: string | null,
    private readonly timeoutMs: number,
    maxConnections: number,
  ) {
    const { Agent, request } = undici();
    this.request = request;
    this.agent = new Agent({ connections: maxConnections, keepAliveTimeout: 30_000, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  }

  async send(n: OutgoingNotification): Promise<void> {
    let response: Awaited<ReturnType<typeof requestType>>;
    try {
      response = await this.request(this.endpoint, {
        method: 'POST',
        dispatcher: this.agent,
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
      const name = (error as Error).name;
      const reason = name === 'TimeoutError' || name === 'HeadersTimeoutError' ? `no answer within ${this.timeoutMs} ms` : (error as Error).message;
      throw new ProviderError(`SMS gateway: ${reason}`, 'transient', { cause: error });
    }
    const { statusCode, body } = response;
    if (statusCode >= 200 && statusCode < 300) {
      await body.dump();
      return;
    }
    const detail = (await body.text().catch(() => '')).slice(0, 200);
    throw new ProviderError(`SMS gateway answered ${statusCode}${detail ? `: ${detail}` : ''}`, classifyHttpStatus(statusCode));
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
