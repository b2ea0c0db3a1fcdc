import { expect } from 'chai';
import { startApi } from '../api/server.js';
import type { OutgoingNotification } from '../shared/domain/notifications.js';
import type { NotificationProvider } from '../worker/providers/provider.js';
import { testStores } from './support/namespace.js';
import { TestSystem } from './support/system.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { waitFor } from './support/wait.js';

const transfer = { fromAccount: 'user-A', toAccount: 'user-B', amount: '1.00' };

for (const store of testStores()) describe(`[${store}] duplicates prevented`, function () {
  this.timeout(60_000);

  it('When the same event reaches one worker twice at once, then each channel is sent once', async () => {
    const sends: OutgoingNotification[] = [];
    const slow: NotificationProvider = {
      name: 'slow',
      send: async (n) => {
        await new Promise((resolve) => setTimeout(resolve, 200));
        sends.push(n);
      },
    };
    const system = await TestSystem.start({ db: store });
    try {
      const id = (await system.post(transfer).expect(202)).body.transferId as string;
      const [event] = await waitFor('the event in the queue', async () => {
        const got = await system.drain(system.ns.topology.workQueue);
        return got.length ? got : undefined;
      });
      // The copy a relay could publish twice (a confirm lost in a crash): both in the queue before the worker starts.
      const channel = await system.channel();
      for (let i = 0; i < 2; i++) channel.publish(system.ns.topology.exchange, 'transfer.completed', event!.content, event!.properties);
      const { startWorker } = await import('../worker/worker.js');
      system.worker = await startWorker(system.ns.config(), { providers: { email: slow, sms: slow } });
      await system.waitNotified(id);
      await waitFor('both copies handled', () => system.worker!.consumer.inFlightCount === 0);
      expect(sends.map((s) => s.channel).sort()).to.deep.equal(['email', 'sms']);
    } finally {
      await system.stop();
    }
  });

  it('When two API replicas share the database and the broker is away longer than a lease, then each event is published once', async () => {
    const proxy = await new TcpProxy(5672).start();
    const env = { AMQP_URL: proxy.url, OUTBOX_LEASE_MS: '1000', OUTBOX_SWEEP_INTERVAL_MS: '200' };
    const system = await TestSystem.start({ db: store, env });
    const replica = await startApi(system.ns.config({ ...env, SEED_DEMO_ACCOUNTS: 'false' }), { print: () => undefined });
    try {
      await proxy.cut();
      await waitFor('both replicas to notice', () => !system.api.broker.isConnected && !replica.broker.isConnected);
      const ids: string[] = [];
      for (let i = 0; i < 20; i++) ids.push((await system.post(transfer).expect(202)).body.transferId);
      // Three lease lifetimes: the replica's sweeps must find every event still held.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await proxy.restore();
      const published = await waitFor('every event in the queue', async () => {
        const count = await system.messageCount(system.ns.topology.workQueue);
        return count >= ids.length ? count : undefined;
      });
      // Both relays have had time for a few more sweeps; nothing more may arrive.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const messages = await system.drain(system.ns.topology.workQueue);
      expect(published).to.equal(ids.length);
      expect(messages.map((m) => m.properties.correlationId).sort()).to.deep.equal([...ids].sort());
    } finally {
      await replica.stop();
      await system.stop();
      await proxy.stop();
    }
  });
});
