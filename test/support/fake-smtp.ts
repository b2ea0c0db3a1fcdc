import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  to: string;
  subject: string;
  messageId: string;
  idempotencyKey: string;
  transferId: string;
  body: string;
  at: number;
}

/** What the server does with the next message: accept it, refuse it with an SMTP reply, or stall first. */
export type SmtpVerdict = { accept: true; delayMs?: number } | { accept: false; code: number; message: string };

function header(raw: string, name: string): string {
  const head = raw.split(/\r?\n\r?\n/)[0]!.replace(/\r?\n[ \t]+/g, ' ');
  const match = new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head);
  return match?.[1]?.trim() ?? '';
}

/** A real SMTP server on loopback (the smtp-server package) standing in for the mail provider. */
export class FakeSmtpServer {
  readonly received: ReceivedMail[] = [];
  /** Every attempt, accepted or not, with its time: the retry schedule is read from here. */
  readonly attempts: { transferId: string; at: number; verdict: 'accepted' | number }[] = [];
  verdict: (mail: ReceivedMail, attemptIndex: number) => SmtpVerdict = () => ({ accept: true });
  /** Messages whose DATA arrived and whose answer is being held back (a slow provider). */
  stalled = 0;
  /** Connection errors the server reported (a client that went away mid-conversation). */
  readonly errors: Error[] = [];
  private server: SMTPServer;
  port = 0;

  constructor() {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, _session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          const mail: ReceivedMail = {
            to: header(raw, 'To'),
            subject: header(raw, 'Subject'),
            messageId: header(raw, 'Message-ID'),
            idempotencyKey: header(raw, 'X-Idempotency-Key'),
            transferId: header(raw, 'X-Transfer-Id'),
            body: raw.split(/\r?\n\r?\n/).slice(1).join('\n\n'),
            at: Date.now(),
          };
          const index = this.attempts.filter((a) => a.transferId === mail.transferId).length;
          const verdict = this.verdict(mail, index);
          const finish = () => {
            if (verdict.accept) {
              this.attempts.push({ transferId: mail.transferId, at: mail.at, verdict: 'accepted' });
              this.received.push(mail);
              callback();
            } else {
              this.attempts.push({ transferId: mail.transferId, at: mail.at, verdict: verdict.code });
              callback(Object.assign(new Error(verdict.message), { responseCode: verdict.code }));
            }
          };
          if (verdict.accept && verdict.delayMs) {
            this.stalled++;
            setTimeout(() => {
              this.stalled--;
              finish();
            }, verdict.delayMs);
          } else {
            finish();
          }
        });
      },
    });
    // A client killed mid-send (the crash tests do that) resets its socket; smtp-server reports it
    // here, and an 'error' event with no listener would crash the test run.
    this.server.on('error', (err) => this.errors.push(err));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  attemptsFor(transferId: string) {
    return this.attempts.filter((a) => a.transferId === transferId);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
