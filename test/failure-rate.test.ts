import { expect } from 'chai';
import { HEADERS } from '../shared/domain/contract.js';
import type { OutgoingNotification } from '../shared/domain/notifications.js';
import { loadConfig } from '../shared/runtime/config.js';
import { FailureInjectingProvider } from '../worker/providers/failure-injection.js';
import { createProviders } from '../worker/providers/index.js';
import { ProviderError, type NotificationProvider } from '../worker/providers/provider.js';
import { SimulatedProvider } from '../worker/providers/simulated.js';
import { SmtpProvider } from '../worker/providers/smtp.js';
import { FakeSmtpServer } from './support/fake-smtp.js';
import { testStores } from './support/namespace.js';
import { runDlq } from './support/processes.js';
import { TestSystem, type TransferView } from './support/system.js';
import { waitFor } from './support/wait.js';

const note: OutgoingNotification = { channel: 'email', transferId: 't-1', to: 'ada@example.com', subject: 's', text: 't', idempotencyKey: 't-1:email' };

describe('NOTIFY_FAILURE_RATE (a demo setting) applies to every provider', () => {
  class Recorder implements NotificationProvider {
    readonly name = 'recorder';
    readonly endpoint = 'smtp://mail.example.com:25';
    sent: OutgoingNotification[] = [];
    closed = 0;
    async send(n: OutgoingNotification) {
      this.sent.push(n);
    }
    async close() {
      this.closed++;
    }
  }

  it('When the draw falls under the rate, then the send fails transiently before reaching the provider; otherwise it goes through', async () => {
    const inner = new Recorder();
    const draws = [0.49, 0.5, 0.99];
    const flaky = new FailureInjectingProvider(inner, 0.5, () => draws.shift()!);
    const error = await flaky.send(note).then(() => null, (e: unknown) => e);
    expect(error).to.be.instanceOf(ProviderError);
    expect((error as ProviderError).kind).to.equal('transient');
    expect((error as ProviderError).message).to.equal('recorder: injected email failure (NOTIFY_FAILURE_RATE=0.5)');
    expect(inner.sent).to.have.length(0);
    await flaky.send(note);
    await flaky.send(note);
    expect(inner.sent).to.have.length(2);
    // The worker's start-up line names the real provider; closing reaches it.
    expect([flaky.name, flaky.endpoint]).to.deep.equal(['recorder', 'smtp://mail.example.com:25']);
    await flaky.close();
    expect(inner.closed).to.equal(1);
  });

  it('When the rate is 0 (the default), then the providers are the real ones, unwrapped; when it is set, SMTP and simulated are both wrapped', async () => {
    const env = { EMAIL_PROVIDER: 'smtp', SMTP_URL: 'smtp://127.0.0.1:2525' };
    const plain = createProviders(loadConfig(env));
    expect(plain.email).to.be.instanceOf(SmtpProvider);
    expect(plain.sms).to.be.instanceOf(SimulatedProvider);
    const demo = createProviders(loadConfig({ ...env, NOTIFY_FAILURE_RATE: '0.3' }));
    expect(demo.email).to.be.instanceOf(FailureInjectingProvider);
    expect(demo.sms).to.be.instanceOf(FailureInjectingProvider);
    expect(demo.email.name).to.equal('smtp');
    for (const p of [plain.email, demo.email]) await p.close?.();
  });
});

for (const store of testStores()) describe(`[${store}] NOTIFY_FAILURE_RATE with email over real SMTP, as under Compose`, function () {
  this.timeout(60_000);
  let smtp: FakeSmtpServer;
  let system: TestSystem | undefined;

  before(async () => {
    smtp = await new FakeSmtpServer().start();
  });
  afterEach(async () => {
    await system?.stop();
    system = undefined;
  });
  after(async () => smtp?.stop());

  const env = (rate: string) => ({ EMAIL_PROVIDER: 'smtp', SMTP_URL: smtp.url, NOTIFY_FAILURE_RATE: rate, MAX_ATTEMPTS: '2', RETRY_DELAYS_MS: '200' });
  const post = async (s: TestSystem) => (await s.post({ fromAccount: 'user-A', toAccount: 'user-B', amount: '1.00' }).expect(202)).body.transferId as string;
  const channel = (t: TransferView, name: string) => t.notifications.find((n) => n.channel === name)!;

  it('When the rate is 1, then every SMTP send fails transiently, is retried MAX_ATTEMPTS times, parked, and listed by the dlq tool', async () => {
    system = await TestSystem.start({ db: store, worker: true, env: env('1') });
    const s = system;
    const id = await post(s);
    const view = await waitFor(`transfer ${id} to settle`, async () => {
      const t = await s.transfer(id);
      return t.notifications.every((n) => n.status !== 'pending') ? t : undefined;
    }, { timeoutMs: 20_000 });
    expect(view.status).to.equal('notification_failed');
    expect(channel(view, 'email')).to.include({ status: 'failed', attempts: 2 });
    expect(channel(view, 'email').lastError).to.match(/smtp: injected email failure/);
    expect(channel(view, 'sms')).to.include({ status: 'failed', attempts: 2 });
    // Injected before the send: the SMTP server never saw the failed attempts.
    expect(smtp.attemptsFor(id)).to.have.length(0);

    const listed = await waitFor('both channels parked and listed', async () => {
      const out = await runDlq(['list', '--json'], s.ns.env(env('1')));
      const rows = out.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      const mine = rows.filter((r) => r.transferId === id);
      return mine.length === 2 ? mine : undefined;
    });
    expect(listed.map((r) => [r.channel, r.attempt]).sort()).to.deep.equal([['email', 2], ['sms', 2]]);
    expect(String(listed.find((r) => r.channel === 'email')!.reason)).to.match(/^email: gave up after attempt 2: smtp: injected email failure/);
    const parked = await s.drain(s.ns.topology.deadQueue);
    expect(parked.map((m) => m.properties.headers![HEADERS.channel]).sort()).to.deep.equal(['email', 'sms']);
  });

  it('When the rate is 0, then the email goes out over SMTP on the first attempt, once', async () => {
    system = await TestSystem.start({ db: store, worker: true, env: env('0') });
    const id = await post(system);
    const view = await system.waitNotified(id);
    expect(channel(view, 'email')).to.include({ status: 'sent', attempts: 1 });
    expect(smtp.attemptsFor(id).map((a) => a.verdict)).to.deep.equal(['accepted']);
  });
});
