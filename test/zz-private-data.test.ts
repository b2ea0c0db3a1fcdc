import { expect } from 'chai';
import { DEMO_ACCOUNTS, DEMO_API_KEYS } from '../shared/domain/demo-accounts.js';
import { FakeSmtpServer } from './support/fake-smtp.js';
import { logger } from '../shared/runtime/logger.js';
import { allLogLines } from './support/log-capture.js';
import { ServiceProcess } from './support/processes.js';
import { issuedTokens } from './support/secrets.js';
import { TestSystem } from './support/system.js';

/**
 * Runs last (files load in name order): after a flow of its own that logs
 * everything private it can, it scans the log lines of the whole run so far,
 * in-process and from every spawned API and worker.
 */
describe('private data stays out of the logs', function () {
  this.timeout(60_000);

  before(async () => {
    const smtp = await new FakeSmtpServer().start();
    // A refusal that quotes the recipient, as real mail servers do.
    smtp.verdict = () => ({ accept: false, code: 550, message: '5.1.1 <ada@example.com>: Recipient address rejected' });
    const system = await TestSystem.start();
    const processes: ServiceProcess[] = [];
    try {
      const env = system.ns.env({ LOG_LEVEL: 'silly', EMAIL_PROVIDER: 'smtp', SMTP_URL: `smtp://user:hunter2@127.0.0.1:${smtp.port}` });
      const api = new ServiceProcess('api', env);
      const worker = new ServiceProcess('worker', env);
      processes.push(api, worker);
      const port = await api.port();
      const { default: request } = await import('supertest');
      const key = await system.keyFor('user-A', 'user-B');
      const res = await request(`http://127.0.0.1:${port}`)
        .post('/transfer')
        .set({ Authorization: `Bearer ${key}` })
        .send({ fromAccount: 'user-A', toAccount: 'user-B', amount: 1, reference: 'for bob@example.com' })
        .expect(202);
      await request(`http://127.0.0.1:${port}`).post('/transfer').set({ Authorization: 'Bearer atk_0123456789_a-guessed-secret-value' }).send({}).expect(401);
      const id = res.body.transferId as string;
      // A careless log call, as a future change might add one: the logger's format must still mask it.
      logger.warn('debugging a client', { header: `Bearer ${key}`, note: `key ${key} of ada@example.com`, authorization: `Bearer ${key}` });
      await worker.waitForLog('a simulated SMS', (l) => l.message === 'simulated provider delivered' && l.transferId === id);
      await worker.waitForLog('the SMTP refusal', (l) => l.message === 'notification failed' && l.transferId === id);
    } finally {
      await Promise.all(processes.map((p) => p.dispose()));
      await system.stop();
      await smtp.stop();
    }
  });

  it('When every log line of the run is scanned, then no email, phone number, API key or credential appears in clear text', () => {
    expect(allLogLines.length).to.be.greaterThan(10);
    const findings: string[] = [];
    const look = (what: string, pattern: RegExp) => {
      for (const line of allLogLines) if (pattern.test(line)) findings.push(`${what}: ${line.slice(0, 300)}`);
    };
    look('email', /[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9-]+\.[A-Za-z]{2,}/);
    look('phone', /\+\d{6,}/);
    look('API key', /atk_[a-z0-9]{10}_(?!\*\*\*)[A-Za-z0-9-]/);
    look('bearer credential', /Bearer\s+(?!\*\*\*)[A-Za-z0-9]/i);
    look('URL password', /:\/\/[^:/\s@"]+:(?!\*\*\*@)[^@\s/"]+@/);
    for (const secret of [...issuedTokens, ...Object.values(DEMO_API_KEYS), ...DEMO_ACCOUNTS.flatMap((a) => [a.email, a.phone]), 'hunter2']) {
      look(`known secret ${secret.slice(0, 6)}…`, new RegExp(secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    }
    expect(findings, findings.slice(0, 10).join('\n')).to.deep.equal([]);
  });

  it('When private data was logged, then it shows masked, so the scan above looked at real material', () => {
    const all = allLogLines.join('\n');
    expect(all).to.contain('a***@example.com');
    expect(all).to.contain('+*********01');
    expect(all).to.match(/key atk_[a-z0-9]{10}_\*\*\* of a\*\*\*@example\.com/);
    expect(all).to.contain('"header":"Bearer ***"');
    expect(all).to.contain('"authorization":"***"');
    expect(all).to.contain('user:***@127.0.0.1');
  });
});
