import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { inheritedEnv } from '../shared/runtime/config.js';
import { DEMO_API_KEYS } from '../shared/domain/demo-accounts.js';
import request from 'supertest';
import { processesPerTest, type ServiceProcess, type LogLine } from './support/processes.js';
import { testStores } from './support/namespace.js';
import { TestSystem } from './support/system.js';
import { waitFor } from './support/wait.js';

const transfer = { fromAccount: 'user-A', toAccount: 'user-B', amount: '0.01' };
const DEMO_AUTH = { Authorization: `Bearer ${DEMO_API_KEYS['user-A']}` };
const sentLines = (p: ServiceProcess) => p.logs.filter((l) => l.message === 'notification sent');

for (const store of testStores()) describe(`[${store}] real processes: crashes, signals, configuration, logs`, function () {
  this.timeout(60_000);
  const spawnService = processesPerTest();
  describe('a worker process', () => {
    let system: TestSystem;
    beforeEach(async () => {
      system = await TestSystem.start({ db: store });
    });
    afterEach(async () => system?.stop());

    it('When a worker is killed with SIGKILL mid-stream and another starts, then every transfer still ends notified', async () => {
      const env = system.ns.env({ NOTIFY_LATENCY_MS: '100', WORKER_PREFETCH: '8', LOG_LEVEL: 'info' });
      const first = spawnService('worker', env);
      const ids: string[] = [];
      for (let i = 0; i < 80; i++) ids.push((await system.post(transfer).expect(202)).body.transferId);

      await waitFor('the first worker to have sent some', () => sentLines(first).length >= 10);
      first.kill('SIGKILL');
      const { signal } = await first.exited;
      expect(signal).to.equal('SIGKILL');
      const notifiedAtKill = (await Promise.all(ids.map((id) => system.transfer(id)))).filter((t) => t.status === 'notified').length;
      expect(notifiedAtKill, 'the kill must land mid-stream').to.be.below(ids.length);

      spawnService('worker', env);
      for (const id of ids) {
        const view = await system.waitNotified(id, 30_000);
        expect(view.notifications.map((n) => n.status)).to.deep.equal(['sent', 'sent']);
      }
    });

    it('When a worker gets SIGTERM with messages in hand, then it finishes them, exits 0, and nothing is lost', async () => {
      // Sends slow enough that 40 transfers take the worker 5 s at prefetch 8, however slowly they were posted.
      const env = system.ns.env({ NOTIFY_LATENCY_MS: '1000', WORKER_PREFETCH: '8', LOG_LEVEL: 'debug' });
      const worker = spawnService('worker', env);
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) ids.push((await system.post(transfer).expect(202)).body.transferId);
      // Mid-stream with work in hand: some sent, and a delivery received whose sends (1 s) have not
      // come back. Right after a batch is acked the worker may briefly hold nothing, so "some sent"
      // alone is not enough.
      const inHand = () => {
        const sent = new Set(sentLines(worker).map((l) => l.transferId));
        return sent.size > 0 && worker.logs.some((l) => l.message === 'delivery received' && !sent.has(l.transferId));
      };
      await waitFor('the worker to be mid-stream with deliveries in hand', inHand);
      expect(sentLines(worker).length, 'work is left when SIGTERM comes').to.be.lessThan(80);

      worker.kill('SIGTERM');
      const { code } = await worker.exited;
      expect(code).to.equal(0);
      const stopAt = worker.logs.findIndex((l) => l.message === 'stopping');
      expect(stopAt).to.be.greaterThan(-1);
      expect(worker.logs.slice(stopAt).some((l) => l.message === 'notification sent'), 'work in hand was finished after SIGTERM').to.equal(true);
      expect(worker.logs.at(-1)).to.include({ message: 'stopped', clean: true });

      spawnService('worker', env);
      for (const id of ids) await system.waitNotified(id, 30_000);
    });
    it('When a worker gets SIGTERM and its sends outlast SHUTDOWN_TIMEOUT_MS, then it exits 0 on time, hands them back, and nothing is lost', async () => {
      const slow = spawnService('worker', system.ns.env({ NOTIFY_LATENCY_MS: '20000', SHUTDOWN_TIMEOUT_MS: '1500', LOG_LEVEL: 'debug' }));
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await system.post(transfer).expect(202)).body.transferId);
      await waitFor('all five in hand', () => slow.logs.filter((l) => l.message === 'delivery received').length === 5);
      const signalled = Date.now();
      slow.kill('SIGTERM');
      const { code } = await slow.exited;
      expect(code).to.equal(0);
      expect(Date.now() - signalled).to.be.below(5000);
      expect(slow.logs.some((l) => l.message?.startsWith('deliveries still in hand at the drain deadline'))).to.equal(true);
      expect(sentLines(slow)).to.have.length(0);

      spawnService('worker', system.ns.env());
      for (const id of ids) await system.waitNotified(id, 30_000);
    });
  });

  describe('an API process', () => {
    let system: TestSystem;
    before(async () => {
      system = await TestSystem.start({ db: store });
    });
    after(async () => system?.stop());

    it('When the API gets SIGTERM, then it stops cleanly with exit code 0', async () => {
      const api = spawnService('api', system.ns.env({ LOG_LEVEL: 'info' }));
      const port = await api.port();
      await request(`http://127.0.0.1:${port}`).post('/transfer').set(DEMO_AUTH).send(transfer).expect(202);
      api.kill('SIGTERM');
      expect((await api.exited).code).to.equal(0);
      expect(api.logs.at(-1)).to.include({ message: 'stopped', clean: true });
    });

    it('When a variable is invalid, then the process refuses to start and names the variable', async () => {
      const api = spawnService('api', system.ns.env({ WORKER_PREFETCH: '0', PORT: 'eighty' }));
      expect((await api.exited).code).to.equal(1);
      const complaint = api.stderr.join('\n');
      expect(complaint).to.contain('WORKER_PREFETCH');
      expect(complaint).to.contain('PORT');
    });

    it('When the outbox is swept too seldom to renew its leases, then the process refuses to start and says why', async () => {
      const api = spawnService('api', system.ns.env({ OUTBOX_LEASE_MS: '10000', OUTBOX_SWEEP_INTERVAL_MS: '5000' }));
      expect((await api.exited).code).to.equal(1);
      expect(api.stderr.join('\n')).to.match(/OUTBOX_SWEEP_INTERVAL_MS: must be less than half of OUTBOX_LEASE_MS \(10000\)/);
    });

    it('When a transfer flows through both processes, then every log line about it carries its transferId, and API lines a request id', async () => {
      const env = system.ns.env({ LOG_LEVEL: 'http' });
      const api = spawnService('api', env);
      const worker = spawnService('worker', env);
      const port = await api.port();
      const res = await request(`http://127.0.0.1:${port}`)
        .post('/transfer')
        .set(DEMO_AUTH)
        .set('X-Request-Id', 'req-logs-1')
        .send(transfer)
        .expect(202);
      const id = res.body.transferId as string;
      await waitFor('both notifications sent', () => sentLines(worker).filter((l) => l.transferId === id).length === 2);
      await api.waitForLog('the request line', (l) => l.message === 'request' && l.requestId === 'req-logs-1');

      const mentions = (lines: LogLine[]) => lines.filter((l) => JSON.stringify(l).includes(id));
      for (const line of [...mentions(api.logs), ...mentions(worker.logs)]) expect(line.transferId, JSON.stringify(line)).to.equal(id);
      expect(mentions(worker.logs).length).to.be.at.least(2);
      const accepted = api.logs.find((l) => l.message === 'transfer accepted' && l.transferId === id);
      expect(accepted).to.include({ requestId: 'req-logs-1', service: 'api' });
      const access = api.logs.find((l) => l.message === 'request' && l.requestId === 'req-logs-1');
      expect(access).to.include({ status: 202, method: 'POST' });
      for (const l of [...api.logs, ...worker.logs]) expect(l.level, JSON.stringify(l)).to.not.equal('raw');
    });
  });
});

describe('an entry point (shared/runtime/boot.ts) meeting a bug nothing caught', function () {
  this.timeout(30_000);
  /** A process started the way api/main.ts and worker/main.ts are, whose running service then hits `fault`. */
  const bootWith = (fault: string) =>
    new Promise<{ code: number | null; lines: LogLine[] }>((resolve) => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          `import { boot } from './shared/runtime/boot.ts';
           await boot('worker', async () => { setTimeout(() => { ${fault} }, 10); return { stop: async () => true }; });`,
        ],
        { env: inheritedEnv({ LOG_LEVEL: 'info' }), stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.on('close', (code) => resolve({ code, lines: out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogLine) }));
    });

  it('When an exception escapes every handler, then it is logged as one JSON line with its stack and the process exits 1', async () => {
    const { code, lines } = await bootWith(`throw new TypeError('nobody caught me')`);
    expect(code).to.equal(1);
    expect(lines.at(-1)).to.include({ level: 'error', message: 'uncaught exception, exiting', service: 'worker' });
    expect((lines.at(-1)!.error as { message: string; stack: string }).stack).to.match(/^TypeError: nobody caught me/);
  });

  it('When a promise is rejected and nobody handles it, then it is logged as one JSON line and the process exits 1', async () => {
    const { code, lines } = await bootWith(`void Promise.reject(new Error('nobody awaited me'))`);
    expect(code).to.equal(1);
    expect(lines.at(-1)).to.include({ level: 'error', message: 'unhandled promise rejection, exiting' });
    expect((lines.at(-1)!.error as { message: string }).message).to.equal('nobody awaited me');
  });
});
