import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/**
 * Real providers at a real provider's speed, for the benchmark: an SMTP server
 * (the smtp-server package) and an HTTP SMS gateway on loopback, each taking
 * PROVIDER_DELAY_MS to accept a send, as a mail relay or an SMS API does. Each
 * records when every send arrived, by its idempotency key (transfer id and
 * channel), so the benchmark can count repeats: GET /sends on the gateway's port
 * returns them, POST /reset forgets them.
 */
const delayMs = Number(process.argv[2] ?? 200);
let sends: { key: string; at: number }[] = [];

const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  // As many sessions as the workers open: a real relay's limit is far above the benchmark's.
  maxClients: 10_000,
  onData(stream, _session, callback) {
    let head = '';
    stream.on('data', (chunk: Buffer) => {
      if (head.length < 4096) head += chunk.toString('utf8');
    });
    stream.on('end', () => {
      const key = /^X-Idempotency-Key:\s*(\S+)/im.exec(head)?.[1] ?? 'unknown';
      sends.push({ key, at: Date.now() });
      setTimeout(() => callback(), delayMs);
    });
  },
});

const read = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });

const gateway = createServer((req, res) => {
  void (async () => {
    if (req.method === 'GET' && req.url === '/sends') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(sends));
      return;
    }
    if (req.method === 'POST' && req.url === '/reset') {
      sends = [];
      res.end();
      return;
    }
    await read(req);
    sends.push({ key: String(req.headers['idempotency-key'] ?? 'unknown'), at: Date.now() });
    setTimeout(() => {
      res.statusCode = 202;
      res.setHeader('content-type', 'application/json');
      res.end('{"status":"queued"}');
    }, delayMs);
  })().catch(() => res.destroy());
});
gateway.keepAliveTimeout = 60_000;
// A worker killed with -9 resets its connections: that is the benchmark's crash case, not the server's.
smtp.on('error', () => undefined);

await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
process.stdout.write(
  `${JSON.stringify({ message: 'listening', smtpPort: (smtp.server.address() as AddressInfo).port, httpPort: (gateway.address() as AddressInfo).port })}\n`,
);
process.on('SIGTERM', () => {
  gateway.closeAllConnections();
  smtp.close(() => gateway.close(() => process.exit(0)));
});
