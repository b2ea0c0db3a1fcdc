import type { GetMessage } from 'amqplib';
import { expect } from 'chai';
import { HEADERS } from '../shared/domain/contract.js';
import { FakeSmsGateway } from './support/fake-sms-gateway.js';
import { FakeSmtpServer } from './support/fake-smtp.js';
import { runDlq } from './support/processes.js';
import { testStores } from './support/namespace.js';
import { TestSystem, type TransferView } from './support/system.js';
import { waitFor } from './support/wait.js';

const DELAYS = [300, 600, 900];

for (const store of testStores()) describe(`[${store}] failure handling with real protocol peers (SMTP server, HTTP SMS gateway)`, function () {
  this.timeout(60_000);
  let smtp: FakeSmtpServer;
  let gateway: FakeSmsGateway;
  let system: TestSystem;

  const providerEnv = () => ({
    EMAIL_PROVIDER: 'smtp',
    SMTP_URL: smtp.url,
    SMS_PROVIDER: 'webhook',
    SMS_WEBHOOK_URL: gateway.url,
    SMS_WEBHOOK_TOKEN: 'gateway-token',
    RETRY_DELAYS_MS: DELAYS.join(','),
    MAX_ATTEMPTS: '4',
    PROVIDER_TIMEOUT_MS: '1000',
  });

  before(async () => {
    smtp = await new FakeSmtpServer().start();
    gateway = await new FakeSmsGateway().start();
    system = await TestSystem.start({ db: store, worker: true, env: providerEnv() });
  });
  beforeEach(() => {
    smtp.verdict = () => ({ accept: true });
    gateway.verdict = () => ({ status: 202 });
  });
  after(async () => {
    await system?.stop();
    await smtp?.stop();
    await gateway?.stop();
  });

  const post = async (amount = '2.50') => (await system.post({ fromAccount: 'user-A', toAccount: 'user-B', amount }).expect(202)).body.transferId as string;
  const settled = (id: string) =>
    waitFor(`transfer ${id} to settle`, async () => {
      const t = await system.transfer(id);
      return t.notifications.every((n) => n.status !== 'pending') ? t : undefined;
    }, { timeoutMs: 20_000 });
  const channel = (t: TransferView, name: string) => t.notifications.find((n) => n.channel === name)!;
  const parkedFor = async (id: string, expected: number) => {
    const found: GetMessage[] = [];
    return waitFor(`${expected} parked message(s) for ${id}`, async () => {
      found.push(...(await system.drain(system.ns.topology.deadQueue)));
      const mine = found.filter((m) => m.properties.correlationId === id);
      return mine.length >= expected ? mine : undefined;
    });
  };

  it('When both providers accept, then the email and the SMS name the transfer and carry their idempotency keys', async () => {
    const id = await post();
    await system.waitNotified(id);
    const [mail] = smtp.received.filter((m) => m.transferId === id);
    expect(mail!.to).to.equal('ada@example.com');
    expect(mail!.subject).to.contain(id);
    expect(mail!.body).to.contain(id);
    expect(mail!.idempotencyKey).to.equal(`${id}:email`);
    expect(mail!.messageId).to.equal(`<${id}.email@async-transfers>`);
    const [sms] = gateway.requestsFor(id);
    expect(sms).to.include({ to: '+15550100001', idempotencyKey: `${id}:sms`, headerKey: `${id}:sms`, authorization: 'Bearer gateway-token' });
    expect(sms!.text).to.contain(id);
  });

  it('When the SMTP server says 451 twice and the gateway 503 once, then each channel retries on its own schedule and ends sent', async () => {
    smtp.verdict = (_m, i) => (i < 2 ? { accept: false, code: 451, message: 'mailbox busy, try later' } : { accept: true });
    gateway.verdict = (_r, i) => ({ status: i < 1 ? 503 : 202 });
    const id = await post();
    const view = await system.waitNotified(id, 20_000);
    expect([channel(view, 'email').attempts, channel(view, 'sms').attempts]).to.deep.equal([3, 2]);

    const mailTimes = smtp.attemptsFor(id).map((a) => a.at);
    expect(smtp.attemptsFor(id).map((a) => a.verdict)).to.deep.equal([451, 451, 'accepted']);
    // Each retry waited at least its tier's delay (the TTL of its delay queue).
    expect(mailTimes[1]! - mailTimes[0]!).to.be.at.least(DELAYS[0]! - 20);
    expect(mailTimes[2]! - mailTimes[1]!).to.be.at.least(DELAYS[1]! - 20);
    const smsTimes = gateway.requestsFor(id).map((r) => r.at);
    expect(smsTimes).to.have.length(2);
    expect(smsTimes[1]! - smsTimes[0]!).to.be.at.least(DELAYS[0]! - 20);
    expect(smtp.received.filter((m) => m.transferId === id)).to.have.length(1);
  });

  it('When the SMS keeps failing, then the email already sent is never sent again', async () => {
    gateway.verdict = (_r, i) => ({ status: i < 2 ? 502 : 202 });
    const id = await post();
    await system.waitNotified(id, 20_000);
    expect(gateway.requestsFor(id)).to.have.length(3);
    expect(smtp.attemptsFor(id)).to.have.length(1);
  });

  it('When the gateway refuses with 400 (invalid recipient), then the SMS fails at once and is parked with the reason, and the email is sent', async () => {
    gateway.verdict = () => ({ status: 400 });
    const id = await post();
    const view = await settled(id);
    expect(view.status).to.equal('notification_failed');
    expect(channel(view, 'email')).to.include({ status: 'sent', attempts: 1 });
    expect(channel(view, 'sms')).to.include({ status: 'failed', attempts: 1 });
    expect(channel(view, 'sms').lastError).to.match(/SMS gateway answered 400/);
    const [parked] = await parkedFor(id, 1);
    expect(parked!.properties.headers![HEADERS.channel]).to.equal('sms');
    expect(String(parked!.properties.headers![HEADERS.failureReason])).to.match(/^sms: permanent failure: SMS gateway answered 400/);
  });

  it('When the SMTP server keeps saying 451, then the email is tried MAX_ATTEMPTS times, recorded failed, and parked', async () => {
    smtp.verdict = () => ({ accept: false, code: 451, message: 'greylisted' });
    const id = await post();
    const view = await settled(id);
    expect(channel(view, 'email')).to.include({ status: 'failed', attempts: 4 });
    expect(channel(view, 'email').lastError).to.match(/451 greylisted/);
    expect(channel(view, 'sms')).to.include({ status: 'sent', attempts: 1 });
    expect(smtp.attemptsFor(id)).to.have.length(4);
    const [parked] = await parkedFor(id, 1);
    expect(parked!.properties.headers![HEADERS.attempt]).to.equal(4);
    expect(String(parked!.properties.headers![HEADERS.failureReason])).to.match(/^email: gave up after attempt 4/);
  });

  it('When the gateway does not answer within PROVIDER_TIMEOUT_MS, then that counts as transient and the retry succeeds', async () => {
    gateway.verdict = (_r, i) => (i === 0 ? { status: 202, delayMs: 2000 } : { status: 202 });
    const id = await post();
    const view = await system.waitNotified(id, 20_000);
    expect(channel(view, 'sms').attempts).to.equal(2);
  });

  it('When parked notifications are replayed after the provider recovers, then they end sent and nothing sent is resent', async () => {
    gateway.verdict = () => ({ status: 422 });
    const ids = [await post(), await post()];
    for (const id of ids) await settled(id);
    const env = system.ns.env(providerEnv());

    const listed = await runDlq(['list'], env);
    expect(listed.code, listed.stderr).to.equal(0);
    for (const id of ids) expect(listed.stdout).to.contain(id);
    expect(listed.stdout).to.match(/sms: permanent failure: SMS gateway answered 422/);
    const json = await runDlq(['list', '--json'], env);
    const rows = json.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.filter((r) => ids.includes(r.transferId)).map((r) => r.channel)).to.deep.equal(['sms', 'sms']);

    gateway.verdict = () => ({ status: 202 });
    const replay = await runDlq(['replay'], env);
    expect(replay.code, replay.stderr).to.equal(0);
    expect(replay.stdout).to.match(/replayed [1-9]\d* message/);
    for (const id of ids) {
      const view = await system.waitNotified(id, 20_000);
      expect(channel(view, 'sms').attempts).to.equal(2);
      expect(smtp.received.filter((m) => m.transferId === id)).to.have.length(1);
    }
    expect(await system.messageCount(system.ns.topology.deadQueue)).to.equal(0);
  });
});
