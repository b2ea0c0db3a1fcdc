import { expect } from 'chai';
import { HEADERS } from '../shared/domain/contract.js';
import type { NotificationProvider } from '../worker/providers/provider.js';
import { ProviderError } from '../worker/providers/provider.js';
import { SimulatedProvider } from '../worker/providers/simulated.js';
import { testStores } from './support/namespace.js';
import { TestSystem } from './support/system.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { waitFor } from './support/wait.js';

const transfer = (amount: number | string = 1) => ({ fromAccount: 'user-A', toAccount: 'user-B', amount });

for (const store of testStores()) describe(`[${store}] the pipeline: API → RabbitMQ → worker → store`, () => {
  describe('with a healthy broker and worker', () => {
    let system: TestSystem;
    before(async () => {
      system = await TestSystem.start({ db: store, worker: true });
    });
    after(async () => system?.stop());

    it('When a transfer is accepted, then the worker sends its email and SMS and GET shows both sent', async () => {
      const res = await system.post(transfer('150.75')).expect(202);
      const view = await system.waitNotified(res.body.transferId);
      expect(view.notifications.map((n) => [n.channel, n.status, n.attempts])).to.deep.equal([
        ['email', 'sent', 1],
        ['sms', 'sent', 1],
      ]);
      expect(view.notifications.every((n) => n.lastError === undefined)).to.equal(true);
    });

    it('When 100 transfers are accepted in a burst, then every one ends notified', async () => {
      const responses = await Promise.all(Array.from({ length: 100 }, () => system.post(transfer('0.01'))));
      expect(responses.every((r) => r.status === 202)).to.equal(true);
      for (const r of responses) await system.waitNotified(r.body.transferId);
    });

    it('When the broker holds a message that is not JSON, then it lands in the dead-letter queue with its reason and the worker goes on', async () => {
      const channel = await system.channel();
      channel.publish(system.ns.topology.exchange, 'transfer.completed', Buffer.from('this is not json'), { messageId: 'garbage-1' });
      channel.publish(
        system.ns.topology.exchange,
        'transfer.completed',
        Buffer.from(JSON.stringify({ eventId: 'x', type: 'transfer.completed', transfer: { amountMinor: -1 } })),
        { messageId: 'garbage-2' },
      );
      const dead = await waitFor('two dead letters', async () => {
        const count = await system.messageCount(system.ns.topology.deadQueue);
        return count >= 2 ? system.drain(system.ns.topology.deadQueue) : undefined;
      });
      const byId = new Map(dead.map((m) => [m.properties.messageId, m]));
      expect(byId.get('garbage-1')!.content.toString()).to.equal('this is not json');
      expect(String(byId.get('garbage-1')!.properties.headers![HEADERS.failureReason])).to.match(/not valid JSON/);
      expect(String(byId.get('garbage-2')!.properties.headers![HEADERS.failureReason])).to.match(/does not fit the transfer event contract/);

      const res = await system.post(transfer()).expect(202);
      await system.waitNotified(res.body.transferId);
    });

    it('When an event names a transfer the store does not know, then it is dead-lettered, not retried forever', async () => {
      const channel = await system.channel();
      const unknownId = '11111111-1111-4111-8111-111111111111';
      const event = {
        eventId: '22222222-2222-4222-8222-222222222222',
        type: 'transfer.completed',
        occurredAt: new Date().toISOString(),
        transfer: { id: unknownId, fromAccount: 'user-A', toAccount: 'user-B', amountMinor: 100, currency: 'USD', reference: null },
      };
      channel.publish(system.ns.topology.exchange, 'transfer.completed', Buffer.from(JSON.stringify(event)), { correlationId: unknownId });
      const [dead] = await waitFor('the dead letter', async () => {
        const got = await system.drain(system.ns.topology.deadQueue);
        return got.length ? got : undefined;
      });
      expect(String(dead!.properties.headers![HEADERS.failureReason])).to.contain(unknownId);
    });
  });

  describe('when a provider refuses a send', () => {
    let system: TestSystem;
    const failingSms: NotificationProvider = {
      name: 'broken-sms',
      send: async () => {
        throw new ProviderError('recipient rejected', 'permanent');
      },
    };
    before(async () => {
      system = await TestSystem.start({ db: store, worker: true, providers: { email: new SimulatedProvider(0), sms: failingSms } });
    });
    after(async () => system?.stop());

    it('When the SMS fails, then the email is still sent, the SMS is recorded failed with its error, and the message is dead-lettered', async () => {
      const res = await system.post(transfer()).expect(202);
      const view = await waitFor('the failure to be recorded', async () => {
        const t = await system.transfer(res.body.transferId);
        return t.status === 'notification_failed' ? t : undefined;
      });
      const [email, sms] = view.notifications;
      expect([email!.status, email!.attempts]).to.deep.equal(['sent', 1]);
      expect([sms!.status, sms!.attempts, sms!.lastError]).to.deep.equal(['failed', 1, 'recipient rejected']);
      const [dead] = await waitFor('the dead letter', async () => {
        const got = await system.drain(system.ns.topology.deadQueue);
        return got.length ? got : undefined;
      });
      expect(dead!.properties.correlationId).to.equal(res.body.transferId);
      expect(String(dead!.properties.headers![HEADERS.failureReason])).to.equal('sms: permanent failure: recipient rejected');
      expect(dead!.properties.headers![HEADERS.channel]).to.equal('sms');

      // The payee sees the transfer, but not the errors of the sender's notifications.
      const asPayee = await system.http().get(`/transfers/${res.body.transferId}`).set(await system.auth('user-B')).expect(200);
      expect(asPayee.body.status).to.equal('notification_failed');
      expect(asPayee.body.notifications.map((n: { lastError?: string }) => n.lastError)).to.deep.equal([undefined, undefined]);
    });
  });

  describe('when the broker is unreachable', () => {
    let system: TestSystem;
    let proxy: TcpProxy;
    before(async () => {
      proxy = await new TcpProxy(5672).start();
      system = await TestSystem.start({ db: store, worker: true, env: { AMQP_URL: proxy.url } });
    });
    after(async () => {
      await system?.stop();
      await proxy?.stop();
    });

    it('When the broker is away, then POST still answers 202, /ready says 503, and every event is published once it is back', async () => {
      await proxy.cut();
      await waitFor('the API to notice', () => !system.api.broker.isConnected);
      const ready = await system.http().get('/ready').expect(503);
      expect(ready.body.checks).to.deep.equal({ database: 'up', broker: 'down' });

      const responses = [];
      for (let i = 0; i < 20; i++) responses.push(await system.post(transfer()).expect(202));
      const first = await system.transfer(responses[0]!.body.transferId);
      expect(first.status).to.equal('accepted');

      await proxy.restore();
      await waitFor('the API to reconnect', async () => (await system.http().get('/ready')).status === 200);
      for (const r of responses) await system.waitNotified(r.body.transferId, 20_000);
    });

    it('When more events pile up than the relay publishes in one batch, then its sweeps stay responsive and publish them all once the broker is back', async () => {
      await proxy.cut();
      await waitFor('the API to notice', () => !system.api.broker.isConnected);
      // Well past one relay batch (128), held in memory and leased to this relay.
      const ids: string[] = [];
      for (let i = 0; i < 60; i++) {
        const batch = await Promise.all(Array.from({ length: 5 }, () => system.post(transfer('0.01'))));
        for (const r of batch) ids.push(r.body.transferId);
      }
      // A sweep over our own held events must page through them, not spin on the first page.
      await system.api.relay.sweep();
      const started = Date.now();
      await system.http().get('/health').expect(200);
      expect(Date.now() - started).to.be.below(1000);
      await proxy.restore();
      for (const id of ids) await system.waitNotified(id, 30_000);
    });
  });
});
