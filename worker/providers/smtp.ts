import { createRequire } from 'node:module';
import type nodemailer from 'nodemailer';
import type { OutgoingNotification } from '../../shared/domain/notifications.js';
import { ProviderError, type NotificationProvider } from './provider.js';

type SmtpError = Error & { code?: string; responseCode?: number; permanent?: boolean };

/**
 * SMTP reply codes are the reverse of HTTP's: 4xx means "try again later"
 * (greylisting, mailbox busy), 5xx means "this will never work" (no such user).
 */
export function classifySmtpError(error: SmtpError): ProviderError {
  let kind: 'transient' | 'permanent';
  if (typeof error.responseCode === 'number') kind = error.responseCode >= 500 ? 'permanent' : 'transient';
  else if (typeof error.permanent === 'boolean') kind = error.permanent ? 'permanent' : 'transient';
  // Credentials or settings that are wrong stay wrong until an operator fixes them and replays.
  else if (error.code === 'EAUTH' || error.code === 'ENOAUTH' || error.code === 'ECONFIG') kind = 'permanent';
  // Connection trouble (ETIMEDOUT, ECONNECTION, ...) and anything unknown: try again later.
  else kind = 'transient';
  return new ProviderError(`SMTP: ${error.message}`, kind, { cause: error });
}

/**
 * Email over SMTP through nodemailer's pooled transport. The pool holds up to
 * SMTP_MAX_CONNECTIONS connections (by default as many as the worker holds
 * messages, WORKER_PREFETCH): SMTP sends one message per connection at a time,
 * so a smaller pool would cap the worker at pool size / send time. The Message-ID
 * is derived from the idempotency key, so a resend after a crash carries the same
 * id and a mail system (or a reader) can recognise the duplicate.
 */
export class SmtpProvider implements NotificationProvider {
  readonly name = 'smtp';
  private readonly transport;

  constructor(
    readonly endpoint: string,
    private readonly from: string,
    private readonly timeoutMs: number,
    maxConnections: number,
  ) {
    // Loaded here, not at the top: a worker that does not send email over SMTP starts without it (about 75 ms).
    const mailer = createRequire(import.meta.url)('nodemailer') as typeof nodemailer;
    this.transport = mailer.createTransport({
      url: endpoint,
      pool: true,
      maxConnections,
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
    });
  }

  async send(n: OutgoingNotification): Promise<void> {
    try {
      await this.transport.sendMail({
        from: this.from,
        to: n.to,
        subject: n.subject,
        text: n.text,
        messageId: `<${n.idempotencyKey.replace(':', '.')}@async-transfers>`,
        headers: { 'X-Idempotency-Key': n.idempotencyKey, 'X-Transfer-Id': n.transferId },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw classifySmtpError(error as SmtpError);
    }
  }

  async close(): Promise<void> {
    this.transport.close();
  }
}
