import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SmsRequest {
  to: string;
  text: string;
  transferId: string;
  idempotencyKey: string;
  headerKey: string | undefined;
  authorization: string | undefined;
  at: number;
}

/** What the gateway answers: a status, optionally after a delay (longer than the client's timeout, say). */
export type GatewayVerdict = { status: number; delayMs?: number };

/** An HTTP server on loopback standing in for the SMS gateway. */
export class FakeSmsGateway {
  readonly requests: SmsRequest[] = [];
  verdict: (req: SmsRequest, attemptIndex: number) => GatewayVerdict = () => ({ status: 202 });
  /** Requests received and not yet answered (a slow gateway). */
  stalled = 0;
  private readonly server: Server;
  port = 0;

  constructor() {
    // A request the handler fails on (a body that is not JSON) ends its connection, not the test run.
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => res.destroy(error as Error));
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = JSON.parse(await read(req)) as Omit<SmsRequest, 'headerKey' | 'authorization' | 'at'>;
    const sms: SmsRequest = {
      ...body,
      headerKey: req.headers['idempotency-key'] as string | undefined,
      authorization: req.headers.authorization,
      at: Date.now(),
    };
    const index = this.requests.filter((r) => r.transferId === sms.transferId).length;
    this.requests.push(sms);
    const verdict = this.verdict(sms, index);
    const answer = () => {
      if (res.destroyed) return;
      res.statusCode = verdict.status;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(verdict.status < 300 ? { id: `sms-${this.requests.length}` } : { error: `status ${verdict.status}` }));
    };
    if (verdict.delayMs) {
      this.stalled++;
      setTimeout(() => {
        this.stalled--;
        answer();
      }, verdict.delayMs);
    } else {
      answer();
    }
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/messages`;
  }

  requestsFor(transferId: string): SmsRequest[] {
    return this.requests.filter((r) => r.transferId === transferId);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function read(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
