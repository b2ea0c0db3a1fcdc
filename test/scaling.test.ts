import { expect } from 'chai';
import { exchangeInfo, management, queueInfo } from './support/management.js';
import { ServiceProcess } from './support/processes.js';
import { TestSystem } from './support/system.js';
import { waitFor } from './support/wait.js';

const WORKERS = 4;
const TRANSFERS = 300;

describe('[postgres] scaling out: 4 worker processes, one broker, one PostgreSQL database', function () {
  this.timeout(120_000);
  let system: TestSystem;
  const workers: ServiceProcess[] = [];

  before(async () => {
    system = await TestSystem.start({ db: 'postgres' });
    const env = system.ns.env({ NOTIFY_LATENCY_MS: '20', WORKER_PREFETCH: '8', LOG_LEVEL: 'info' });
    for (let i = 0; i < WORKERS; i++) workers.push(new ServiceProcess('worker', env));
    await Promise.all(workers.map((w) => w.waitForLog('consuming', (l) => l.message === 'consuming')));
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.dispose()));
    await system?.stop();
  });

  it('When 4 workers run, then the management API shows the topology under the run’s prefix and 4 consumers on the work queue', async () => {
    const t = system.ns.topology;
    expect(await exchangeInfo(t.exchange)).to.include({ type: 'topic', durable: true });
    expect(await exchangeInfo(t.deadExchange)).to.include({ type: 'topic', durable: true });
    expect(await exchangeInfo(t.retryExchange)).to.include({ type: 'direct', durable: true });

    const work = await queueInfo(t.workQueue);
    expect(work).to.include({ type: 'quorum', durable: true });
    expect(work.arguments).to.include({
      'x-queue-type': 'quorum',
      'x-dead-letter-exchange': t.deadExchange,
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
      'x-delivery-limit': 10,
    });
    for (const delay of t.delayQueues) {
      const q = await queueInfo(delay.name);
      expect(q.type).to.equal('quorum');
      expect(q.arguments).to.include({ 'x-message-ttl': delay.delayMs, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': t.workQueue });
    }
    const dead = await queueInfo(t.deadQueue);
    expect(dead).to.include({ type: 'quorum', durable: true });
    // Explicit, so RabbitMQ 4's default of 20 never drops parked messages that were listed many times.
    expect(dead.arguments).to.include({ 'x-delivery-limit': 1_000_000 });
    const ours = (await management<{ name: string }[]>('/queues/%2F?columns=name')).map((q) => q.name).filter((n) => n.startsWith(`${system.ns.prefix}.`));
    expect(ours.sort()).to.deep.equal([t.workQueue, t.deadQueue, ...t.delayQueues.map((q) => q.name)].sort());

    // The management API refreshes its statistics every few seconds.
    await waitFor('4 consumers on the work queue', async () => (await queueInfo(t.workQueue)).consumers === WORKERS, { timeoutMs: 30_000, intervalMs: 500 });
  });

  it(`When ${TRANSFERS} transfers are posted, then every notification is sent exactly once and every worker takes a share`, async () => {
    const ids: string[] = [];
    for (let i = 0; i < TRANSFERS; i += 10) {
      const batch = await Promise.all(Array.from({ length: 10 }, () => system.post({ fromAccount: 'user-A', toAccount: 'user-C', amount: '0.01' }).expect(202)));
      ids.push(...batch.map((r) => r.body.transferId as string));
    }
    const sent = () => workers.flatMap((w, worker) => w.logs.filter((l) => l.message === 'notification sent').map((l) => ({ worker, key: `${l.transferId}:${l.channel}` })));
    await waitFor('every notification to be sent', () => sent().length >= TRANSFERS * 2, { timeoutMs: 60_000 });

    const keys = sent().map((s) => s.key);
    expect(new Set(keys).size, 'no notification sent twice').to.equal(keys.length);
    expect(new Set(keys)).to.deep.equal(new Set(ids.flatMap((id) => [`${id}:email`, `${id}:sms`])));
    const shares = workers.map((_, i) => sent().filter((s) => s.worker === i).length);
    for (const share of shares) expect(share, `shares ${shares.join('/')}`).to.be.greaterThan(0);

    for (const id of ids) {
      const view = await system.transfer(id);
      expect(view.notifications.map((n) => [n.status, n.attempts])).to.deep.equal([
        ['sent', 1],
        ['sent', 1],
      ]);
    }
  });

  it('When the 4 workers get SIGTERM, then each exits 0', async () => {
    for (const w of workers) w.kill('SIGTERM');
    const codes = await Promise.all(workers.map(async (w) => (await w.exited).code));
    expect(codes).to.deep.equal([0, 0, 0, 0]);
  });
});
