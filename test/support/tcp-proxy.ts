import net from 'node:net';

/**
 * A TCP proxy in front of the broker that a test controls: cut() drops every
 * connection and refuses new ones, as a broker outage or a network cut would;
 * restore() accepts again on the same port.
 */
export class TcpProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  /** Client sockets, whose bytes toward the broker stall() holds back. */
  private readonly clients = new Set<net.Socket>();
  port = 0;

  constructor(
    private readonly targetPort: number,
    private readonly targetHost = '127.0.0.1',
  ) {}

  async start(): Promise<this> {
    await this.listen(0);
    return this;
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}`;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async restore(): Promise<void> {
    if (!this.server) await this.listen(this.port);
  }

  /** Drops live connections but keeps accepting new ones: a blip, not an outage. */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /**
   * Drops everything the clients send from now on (publishes, acks) while the connections
   * stay up, as a network that loses packets would. A client that goes away still closes
   * its connection to the broker.
   */
  stall(): void {
    for (const client of this.clients) {
      client.unpipe();
      client.on('data', () => undefined);
      client.resume();
    }
  }

  get connectionCount(): number {
    return this.sockets.size / 2;
  }

  async stop(): Promise<void> {
    await this.cut();
  }

  private listen(port: number): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost);
      this.clients.add(client);
      client.on('close', () => this.clients.delete(client));
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        this.port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }
}
