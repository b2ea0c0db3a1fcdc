import { expect } from 'chai';
import { createServer, type AddressInfo } from 'node:net';
import { Broker } from '../shared/broker/connection.js';
import { ConfigError, loadConfig } from '../shared/runtime/config.js';
import { logger } from '../shared/runtime/logger.js';
import { processesPerTest } from './support/processes.js';
import { TestSystem } from './support/system.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { waitFor } from './support/wait.js';

const transfer = { fromAccount: 'user-A', toAccount: 'user-B', amount: '0.25' };

/** A local port nothing listens on: connections to it are refused at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('AMQP_URL with several broker nodes: validation, failover, spread', function () {
  this.timeout(60_000);
  const spawnService = processesPerTest();

  describe('a URL amqplib cannot read', () => {
    const bad: [string, string, RegExp][] = [
      ['a port out of range', 'amqp://guest:s3cret@127.0.0.1:99999', /AMQP_URL: .* is not a valid URL/],
      ['another scheme', 'http://guest:s3cret@127.0.0.1:5672', /AMQP_URL: .* must start with amqp:\/\/ or amqps:\/\//],
      ['no host', 'amqp://', /AMQP_URL: .* names no host/],
      ['one bad node of three', 'amqp://127.0.0.1:5672,amqp://guest:s3cret@127.0.0.1:5672:1,amqp://127.0.0.1:5673', /AMQP_URL: URL 2 of 3 .* is not a valid URL/],
      ['an empty entry', 'amqp://127.0.0.1:5672,,amqp://127.0.0.1:5673', /AMQP_URL: URL 2 of 3 \(empty\)/],
    ];
    for (const [what, value, complaint] of bad) {
      it(`When AMQP_URL has ${what}, then the configuration is refused naming AMQP_URL and not showing the password`, () => {
        expect(() => loadConfig({ AMQP_URL: value }))
          .to.throw(ConfigError, complaint)
          .with.property('message')
          .that.does.not.contain('s3cret');
      });
    }

    it('When AMQP_URL lists nodes, then each is kept in order with its host:port (default ports by scheme)', () => {
      const { amqpNodes } = loadConfig({ AMQP_URL: 'amqp://u:p@rabbit-1:5681, amqp://rabbit-2 ,amqps://[::1]/vhost' });
      expect(amqpNodes).to.deep.equal([
        { url: 'amqp://u:p@rabbit-1:5681', label: 'rabbit-1:5681' },
        { url: 'amqp://rabbit-2', label: 'rabbit-2:5672' },
        { url: 'amqps://[::1]/vhost', label: '[::1]:5671' },
      ]);
    });

    let system: TestSystem;
    before(async () => {
      system = await TestSystem.start();
    });
    after(async () => system?.stop());

    for (const kind of ['api', 'worker'] as const) {
      it(`When AMQP_URL holds a URL amqplib cannot read, then the ${kind} process exits 1 at boot naming AMQP_URL instead of retrying forever`, async () => {
        const service = spawnService(kind, system.ns.env({ AMQP_URL: 'amqp://127.0.0.1:5672,amqp://guest:s3cret@127.0.0.1:port' }));
        expect((await service.exited).code).to.equal(1);
        const stderr = service.stderr.join('\n');
        expect(stderr).to.match(/AMQP_URL: URL 2 of 2 .* is not a valid URL/);
        expect(stderr).to.not.contain('s3cret');
        expect(service.logs, 'it never started').to.have.length(0);
      });
    }
  });

  describe('failing over', () => {
    let system: TestSystem | undefined;
    const proxies: TcpProxy[] = [];
    afterEach(async () => {
      await system?.stop();
      system = undefined;
      await Promise.all(proxies.splice(0).map((p) => p.stop()));
    });

    it('When the first listed node refuses connections, then the process connects to the next and logs both by host:port, never with credentials', async () => {
      system = await TestSystem.start();
      const dead = await closedPort();
      const api = spawnService(
        'api',
        system.ns.env({ AMQP_URL: `amqp://guest:not-the-password@127.0.0.1:${dead},amqp://guest:guest@127.0.0.1:5672`, AMQP_FAILOVER: 'in-order', LOG_LEVEL: 'info' }),
      );
      const connected = await api.waitForLog('that it connected', (l) => l.message === 'connected to the broker');
      expect(connected).to.include({ node: '127.0.0.1:5672' });
      expect(connected.version, 'the broker version, from the server properties').to.match(/^\d+\.\d+/);
      const refused = api.logs.find((l) => l.message === 'could not connect to the broker');
      expect(refused).to.include({ node: `127.0.0.1:${dead}` });
      const listening = await api.waitForLog('that it listens', (l) => l.message === 'API listening');
      expect(listening.broker).to.equal(`127.0.0.1:${dead},127.0.0.1:5672`);
      for (const line of api.logs) expect(JSON.stringify(line)).to.not.match(/not-the-password|guest:guest/);
    });

    it('When the node a process is on goes away, then it moves to the next node while that one stays away, and transfers flow through it', async () => {
      const [a, b] = [await new TcpProxy(5672).start(), await new TcpProxy(5672).start()];
      proxies.push(a, b);
      system = await TestSystem.start({ worker: true, env: { AMQP_URL: `${a.url},${b.url}`, AMQP_FAILOVER: 'in-order' } });
      const api = system.api.broker;
      const worker = system.worker!.broker;
      await waitFor('the worker to connect', () => worker.isConnected);
      expect([api.node, worker.node]).to.deep.equal([`127.0.0.1:${a.port}`, `127.0.0.1:${a.port}`]);
      const before = (await system.post(transfer).expect(202)).body.transferId as string;
      await system.waitNotified(before);

      await a.cut();
      // Node a stays cut: only moving to b gets them back.
      await waitFor('both to be on node b', () => api.node === `127.0.0.1:${b.port}` && worker.node === `127.0.0.1:${b.port}`, { timeoutMs: 5000 });
      const after = (await system.post(transfer).expect(202)).body.transferId as string;
      await system.waitNotified(after);
      expect(a.connectionCount).to.equal(0);
    });

    it('When many processes share a list of nodes, then each takes them in its own order and the connections spread over every node; in-order puts all on the first', async () => {
      const nodes = [await new TcpProxy(5672).start(), await new TcpProxy(5672).start(), await new TcpProxy(5672).start()];
      proxies.push(...nodes);
      const { amqpNodes } = loadConfig({ AMQP_URL: nodes.map((p) => p.url).join(',') });
      const open = (order: 'shuffle' | 'in-order') =>
        Promise.all(Array.from({ length: 30 }, () => Broker.open({ nodes: amqpNodes, order, name: 'spread-test', logger, setup: async () => true })));
      const shuffled = await open('shuffle');
      const inOrder = await open('in-order');
      try {
        await waitFor('every connection to be up', () => [...shuffled, ...inOrder].every((b) => b.isConnected));
        const count = (brokers: Broker<boolean>[]) => amqpNodes.map((n) => brokers.filter((b) => b.node === n.label).length);
        // 30 connections over 3 nodes: the chance that one node gets none by luck is 3 × (2/3)^30 ≈ 0.002%.
        for (const share of count(shuffled)) expect(share, `shares ${count(shuffled).join('/')}`).to.be.greaterThan(0);
        expect(count(inOrder)).to.deep.equal([30, 0, 0]);
      } finally {
        await Promise.all([...shuffled, ...inOrder].map((b) => b.close()));
      }
    });
  });
});
