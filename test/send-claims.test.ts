import { expect } from 'chai';
import { FakeSmsGateway } from './support/fake-sms-gateway.js';
import { FakeSmtpServer } from './support/fake-smtp.js';
import { testStores } from './support/namespace.js';
import { processesPerTest, runDlq } from './support/processes.js';
import { TestSystem } from './support/system.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { waitFor } from './support/wait.js';

const transfer = { fromAccount: 'user-A', toAccount: 'user-B', amount: '0.25' };

for (const store of testStores()) describe(`[${store}] send claims and parking: no repeat a live worker could prevent, no failure without its dead letter`, function () {
  this.timeout(90_000);
  const spawnService = processesPerTest();
  let system: TestSystem | undefined;
  let smtp: FakeSmtpServer | undefined;
  let gateway: FakeSmsGateway | undefined;
  let proxy: TcpProxy | undefined;
  afterEach(async () => {
    await system?.stop();
    await Promise.all([smtp?.stop(), gateway?.stop(), proxy?.stop()]);
    system = smtp = gateway = proxy = undefined;
  });

  it('When a worker loses its broker connection while its sends are at the providers, then the worker the broker hands them to sends none again', async () => {
    smtp = await new FakeSmtpServer().start();
    gateway = await new FakeSmsGateway().start();
    proxy = await new TcpProxy(5672).start();
    system = await TestSystem.start({ db: store });
    // Slow providers: every send is still at the provider when the connection drops.
    smtp.verdict = () => ({ accept: true, delayMs: 4000 });
    gateway.verdict = () => ({ status: 202, delayMs: 4000 });
    const env = system.ns.env({
      EMAIL_PROVIDER: 'smtp',
      SMTP_URL: smtp.url,
      SMS_PROVIDER: 'webhook',
      SMS_WEBHOOK_URL: gateway.url,
      RETRY_DELAYS_MS: '500,1000',
      LOG_LEVEL: 'debug',
    });
    // Two live workers share the queue; the first reaches the broker through a proxy the test controls.
    const first = spawnService('worker', { ...env, AMQP_URL: proxy.url });
    const second = spawnService('worker', env);
    await Promise.all([first, second].map((w) => w.waitForLog('that it consumes', (l) => l.message === 'consuming')));
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push((await system.post(transfer).expect(202)).body.transferId);
    await waitFor('all 24 sends to be at the providers', () => smtp!.stalled === 12 && gateway!.stalled === 12);
    expect(first.logs.filter((l) => l.message === 'delivery received').length, 'the first worker holds some').to.be.greaterThan(0);
    // The broker hands the first worker's deliveries to the second at once.
    proxy.dropConnections();

    for (const id of ids) await system.waitNotified(id, 30_000);
    for (const id of ids) {
      expect(smtp.received.filter((m) => m.transferId === id), `emails of ${id}`).to.have.length(1);
      expect(gateway.requestsFor(id), `SMS of ${id}`).to.have.length(1);
    }
    // The broker did hand the deliveries over; the claims, not luck, kept the second worker from sending.
    expect(second.logs.filter((l) => l.message === 'another worker is sending this channel; looking again later').length).to.be.greaterThan(0);
  });

  it('When a worker dies after recording a failure but before its dead-letter copy is confirmed, then the channel shows pending until a later delivery parks it, and dlq list shows it', async () => {
    gateway = await new FakeSmsGateway().start();
    proxy = await new TcpProxy(5672).start();
    system = await TestSystem.start({ db: store });
    const env = system.ns.env({ SMS_PROVIDER: 'webhook', SMS_WEBHOOK_URL: gateway.url, LOG_LEVEL: 'info' });
    // The gateway refuses for good (400), and at that moment the worker's broker connection stops
    // carrying anything: the failure gets recorded, its dead-letter copy never reaches the broker.
    const stalled = proxy;
    gateway.verdict = () => {
      stalled.stall();
      return { status: 400 };
    };
    const doomed = spawnService('worker', { ...env, AMQP_URL: proxy.url });
    await doomed.waitForLog('that it consumes', (l) => l.message === 'consuming');
    const id = (await system.post(transfer).expect(202)).body.transferId as string;
    await waitFor('the SMS recorded failed, not parked', async () => {
      const sms = (await system!.api.store.findTransfer(id))?.notifications.find((n) => n.channel === 'sms');
      return sms?.status === 'failed' && !sms.parked;
    });
    const before = await system.transfer(id);
    expect(before.status).to.equal('accepted');
    expect(before.notifications.find((n) => n.channel === 'sms')!.status).to.equal('pending');
    expect(await system.messageCount(system.ns.topology.deadQueue)).to.equal(0);

    doomed.kill('SIGKILL');
    await doomed.exited;
    spawnService('worker', env);
    const after = await waitFor('the failure to show', async () => {
      const t = await system!.transfer(id);
      return t.status === 'notification_failed' ? t : undefined;
    });
    expect(after.notifications.find((n) => n.channel === 'sms')).to.include({ status: 'failed', attempts: 1 });
    // Parked, not tried again: the gateway saw the SMS once.
    expect(gateway.requestsFor(id)).to.have.length(1);
    const listed = await runDlq(['list', '--json'], env);
    expect(listed.code, listed.stderr).to.equal(0);
    const rows = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as { transferId: string; channel: string; reason: string });
    const mine = rows.filter((r) => r.transferId === id);
    expect(mine.map((r) => r.channel)).to.deep.equal(['sms']);
    expect(mine[0]!.reason).to.match(/^sms: SMS gateway answered 400/);
  });
});
