import { expect } from 'chai';
import { HEADERS } from '../shared/domain/contract.js';
import type { OutgoingNotification } from '../shared/domain/notifications.js';
import { openStore, type Store } from '../shared/store/index.js';
import type { NotificationProvider } from '../worker/providers/provider.js';
import { startWorker } from '../worker/worker.js';
import { FakeSmtpServer } from './support/fake-smtp.js';
import { allLogLines } from './support/log-capture.js';
import { processesPerTest, runDlq } from './support/processes.js';
import { testStores } from './support/namespace.js';
import { TestSystem } from './support/system.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { waitFor } from './support/wait.js';

const transfer = { fromAccount: 'user-A', toAccount: 'user-B', amount: '0.50' };

for (const store of testStores()) describe(`[${store}] outages and crashes: nothing accepted is lost`, function () {
  this.timeout(90_000);
  const spawnService = processesPerTest();
  let system: TestSystem | undefined;
  afterEach(async () => {
    await system?.stop();
    system = undefined;
  });

  it('When a worker is killed with SIGKILL while an SMTP send is in flight, then the email is sent again with the same Message-ID and nothing is lost', async () => {
    const smtp = await new FakeSmtpServer().start();
    try {
      system = await TestSystem.start({ db: store });
      // The first message to reach the SMTP server is held 3 s: long enough to kill the worker mid-send.
      let held = false;
      smtp.verdict = () => {
        if (held) return { accept: true };
        held = true;
        return { accept: true, delayMs: 3000 };
      };
      const env = system.ns.env({ EMAIL_PROVIDER: 'smtp', SMTP_URL: smtp.url, LOG_LEVEL: 'info' });
      const first = spawnService('worker', env);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await system.post(transfer).expect(202)).body.transferId);
      await waitFor('a send to be in flight at the SMTP server', () => smtp.stalled >= 1);
      first.kill('SIGKILL');
      await first.exited;

      spawnService('worker', env);
      for (const id of ids) await system.waitNotified(id, 30_000);
      await waitFor('the held message to be answered', () => smtp.stalled === 0);
      for (const id of ids) {
        const copies = smtp.received.filter((m) => m.transferId === id);
        expect(copies.length).to.be.at.least(1);
        // A duplicate we could not prevent carries the same Message-ID, so the mail system can drop it.
        expect(new Set(copies.map((m) => m.messageId)).size).to.equal(1);
      }
    } finally {
      await smtp.stop();
    }
  });

  it('When an API process is killed with SIGKILL holding unpublished events, then another relay publishes them once their lease runs out', async () => {
    const proxy = await new TcpProxy(5672).start();
    const leases = { OUTBOX_LEASE_MS: '1000', OUTBOX_SWEEP_INTERVAL_MS: '200' };
    try {
      system = await TestSystem.start({ db: store, worker: true, env: leases });
      await proxy.cut();
      // A second API whose broker is unreachable: it commits transfers and holds their events.
      const doomed = spawnService('api', system.ns.env({ ...leases, AMQP_URL: proxy.url, LOG_LEVEL: 'info' }));
      const port = await doomed.port();
      const { default: request } = await import('supertest');
      const auth = await system.auth('user-A');
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push((await request(`http://127.0.0.1:${port}`).post('/transfer').set(auth).send(transfer).expect(202)).body.transferId);
      doomed.kill('SIGKILL');
      await doomed.exited;
      for (const id of ids) await system.waitNotified(id, 20_000);
    } finally {
      await proxy.stop();
    }
  });

  it('When a message kills its worker on every delivery, then at the delivery limit it is quarantined: recorded failed and parked', async () => {
    const limits = { DELIVERY_LIMIT: '2' };
    system = await TestSystem.start({ db: store, env: limits });
    // Each send takes 5 s, and each worker is killed as soon as it has the message: a crash loop.
    const env = system.ns.env({ ...limits, NOTIFY_LATENCY_MS: '5000', LOG_LEVEL: 'debug' });
    const id = (await system.post(transfer).expect(202)).body.transferId as string;
    for (let delivery = 0; delivery < 2; delivery++) {
      const worker = spawnService('worker', env);
      await worker.waitForLog(`delivery ${delivery}`, (l) => l.message === 'delivery received' && l.transferId === id && l.deliveryCount === delivery);
      worker.kill('SIGKILL');
      await worker.exited;
    }
    const last = spawnService('worker', env);
    await last.waitForLog('the quarantine', (l) => l.message === 'poison message quarantined' && l.transferId === id);

    const view = await waitFor('the failure to be recorded', async () => {
      const t = await system!.transfer(id);
      return t.status === 'notification_failed' ? t : undefined;
    });
    for (const n of view.notifications) {
      expect(n.status).to.equal('failed');
      expect(n.lastError).to.match(/quarantined: 2 earlier deliveries/);
    }
    const parked = await waitFor('two parked channels', async () => {
      const count = await system!.messageCount(system!.ns.topology.deadQueue);
      return count >= 2 ? system!.drain(system!.ns.topology.deadQueue) : undefined;
    });
    expect(parked.map((m) => m.properties.headers![HEADERS.channel]).sort()).to.deep.equal(['email', 'sms']);
    expect(last.logs.some((l) => l.message === 'notification sent' && l.transferId === id)).to.equal(false);
  });

  it('When handling a message throws every time, then the queue’s delivery limit parks it, other transfers keep flowing, and once fixed a replay sends each channel', async () => {
    const env = { DELIVERY_LIMIT: '3' };
    system = await TestSystem.start({ db: store, env });
    const config = system.ns.config(env);
    const real = await openStore(config);
    let poisonId = '';
    let poisonDeliveries = 0;
    let fixed = false;
    // A store that breaks on one transfer, as a bug would: not "unavailable", just wrong, every time.
    const broken: Store = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === 'claimSends') {
          return async (transferId: string, ...rest: Parameters<Store['claimSends']> extends [string, ...infer R] ? R : never) => {
            if (transferId === poisonId && !fixed) {
              poisonDeliveries++;
              throw new TypeError('cannot read properties of undefined');
            }
            return target.claimSends(transferId, ...rest);
          };
        }
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    try {
      system.worker = await startWorker(config, { store: broken });
      poisonId = (await system.post(transfer).expect(202)).body.transferId;
      const healthy = (await system.post(transfer).expect(202)).body.transferId as string;
      await system.waitNotified(healthy);

      await waitFor('the poison message in the dead-letter queue', async () => (await system!.messageCount(system!.ns.topology.deadQueue)) === 1);
      const listed = await runDlq(['list', '--json'], system.ns.env(env));
      const [dead] = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { transferId: string; channel: string; reason: string });
      // The broker parked it whole: it names no channel, and says why in x-death.
      expect(dead).to.include({ transferId: poisonId, channel: 'all' });
      expect(dead!.reason).to.match(/^broker: delivery_limit/);
      // Deliveries 0..3: three returns allowed, the fourth (quarantine, which breaks too) is the last.
      expect(poisonDeliveries).to.equal(4);
      expect((await system.transfer(poisonId)).status).to.equal('accepted');

      // The bug is fixed; the operator replays what was parked, and each channel gets its round.
      fixed = true;
      const replay = await runDlq(['replay'], system.ns.env(env));
      expect(replay.code, replay.stderr).to.equal(0);
      expect(replay.stdout).to.match(/^replayed 1 message/);
      const view = await system.waitNotified(poisonId);
      expect(view.notifications.map((n) => [n.channel, n.status, n.attempts])).to.deep.equal([
        ['email', 'sent', 1],
        ['sms', 'sent', 1],
      ]);
    } finally {
      await system.worker?.stop();
      system.worker = null;
      await real.close();
    }
  });

  it('When the connections of both processes to RabbitMQ are cut during a stream of POSTs, then every POST answers 202 and every transfer ends notified', async () => {
    const proxy = await new TcpProxy(5672).start();
    try {
      system = await TestSystem.start({ db: store, worker: true, env: { AMQP_URL: proxy.url } });
      const ids: string[] = [];
      const statuses: number[] = [];
      const cutsAt = new Set([30, 70, 110]);
      for (let i = 0; i < 150; i += 5) {
        if ([...cutsAt].some((c) => c >= i && c < i + 5)) proxy.dropConnections();
        const batch = await Promise.all(Array.from({ length: 5 }, () => system!.post(transfer)));
        for (const r of batch) {
          statuses.push(r.status);
          ids.push(r.body.transferId);
        }
      }
      expect(new Set(statuses)).to.deep.equal(new Set([202]));
      for (const id of ids) await system.waitNotified(id, 30_000);
    } finally {
      await system?.stop();
      system = undefined;
      await proxy.stop();
    }
  });

  it('When the broker cancels the worker’s consumer (its queue was deleted), then the worker notices, re-subscribes, and transfers flow again', async () => {
    system = await TestSystem.start({ db: store, worker: true });
    await (await system.channel()).deleteQueue(system.ns.topology.workQueue);
    await waitFor('the worker to re-assert the queue and consume it again', async () => {
      // A check of a missing queue closes its channel, so ask for a channel each time.
      const q = await (await system!.channel()).checkQueue(system!.ns.topology.workQueue);
      return q.consumerCount === 1;
    });
    const id = (await system.post(transfer).expect(202)).body.transferId as string;
    await system.waitNotified(id);
  });

  it('When the worker cannot record outcomes because the database is away, then it holds the message, records once the database is back, and never resends', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sends: OutgoingNotification[] = [];
    const gated: NotificationProvider = {
      name: 'gated',
      send: async (n) => {
        await gate;
        sends.push(n);
      },
    };
    system = await TestSystem.start({ db: store, worker: true, env: { SQLITE_BUSY_TIMEOUT_MS: '50' }, providers: { email: gated, sms: gated } });
    const id = (await system.post(transfer).expect(202)).body.transferId as string;
    await waitFor('the worker to be sending', () => system!.worker!.consumer.inFlightCount === 1);

    const linesBefore = allLogLines.length;
    await system.ns.blockDatabase();
    try {
      release();
      await waitFor('both sends to finish', () => sends.length === 2);
      // The outcome cannot be written; the message stays in hand, unacked, however long this lasts.
      await waitFor('a failed write', () => allLogLines.slice(linesBefore).some((l) => l.includes('holding the message until it is back')));
      expect(system.worker!.consumer.inFlightCount).to.equal(1);
      expect((await system.channel().then((c) => c.checkQueue(system!.ns.topology.workQueue))).messageCount).to.equal(0);
    } finally {
      await system.ns.unblockDatabase();
    }

    const view = await system.waitNotified(id, 20_000);
    expect(view.notifications.map((n) => n.attempts)).to.deep.equal([1, 1]);
    expect(sends.map((s) => s.channel).sort()).to.deep.equal(['email', 'sms']);
  });
});
