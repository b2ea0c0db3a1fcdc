import { expect } from 'chai';
import amqp from 'amqplib';
import request from 'supertest';
import type { Topology } from '../shared/broker/topology.js';
import { DEMO_API_KEYS } from '../shared/domain/demo-accounts.js';
import { queueInfo } from './support/management.js';
import { AMQP_URL, TestNamespace } from './support/namespace.js';
import { processesPerTest, type ServiceProcess } from './support/processes.js';
import { waitFor } from './support/wait.js';

const AUTH = { Authorization: `Bearer ${DEMO_API_KEYS['user-A']}` };
const transfer = { fromAccount: 'user-A', toAccount: 'user-B', amount: '1.00' };

/** Declares the topology as a given version did: `shape` picks the arguments each queue was created with. */
async function declareAs(t: Topology, shape: (q: Topology['queues'][number]) => Record<string, unknown>): Promise<void> {
  const connection = await amqp.connect(AMQP_URL);
  connection.on('error', () => undefined);
  try {
    const channel = await connection.createChannel();
    for (const x of t.exchanges) await channel.assertExchange(x.name, x.type, { durable: true });
    for (const q of t.queues) {
      await channel.assertQueue(q.name, { durable: true, arguments: shape(q) });
      for (const b of q.bindings) await channel.bindQueue(q.name, b.exchange, b.pattern);
    }
  } finally {
    await connection.close();
  }
}

const placementWarnings = (p: ServiceProcess) => p.logs.filter((l) => typeof l.message === 'string' && / keeps the placement it was created with/.test(l.message));

describe('upgrading a deployment: queues created without (or with other) placement arguments', function () {
  this.timeout(60_000);
  const spawnService = processesPerTest();
  let ns: TestNamespace;
  beforeEach(async () => {
    ns = new TestNamespace('sqlite');
    await ns.prepare();
  });
  afterEach(async () => ns.cleanup());

  it('When the queues exist as the previous version declared them, then the new API and worker start on them, warn once per queue saying what differs, and transfers flow', async () => {
    const t = ns.topology;
    // The previous version declared each queue with its arguments and no placement.
    await declareAs(t, (q) => q.arguments);
    const env = ns.env({ LOG_LEVEL: 'info' });
    const api = spawnService('api', env);
    const port = await api.port();
    await api.waitForLog('that it connected', (l) => l.message === 'connected to the broker');
    // Accepted while no worker runs: the event waits in the old work queue.
    const id = (await request(`http://127.0.0.1:${port}`).post('/transfer').set(AUTH).send(transfer).expect(202)).body.transferId as string;
    const worker = spawnService('worker', env);
    await worker.waitForLog('that it consumes', (l) => l.message === 'consuming');
    await waitFor('the transfer to be notified', async () => {
      const res = await request(`http://127.0.0.1:${port}`).get(`/transfers/${id}`).set(AUTH);
      return res.body.status === 'notified';
    });

    for (const p of [api, worker]) {
      const warned = placementWarnings(p);
      expect(warned.map((l) => l.queue).sort(), `${p.kind} warns once for each queue`).to.deep.equal(t.queues.map((q) => q.name).sort());
      for (const line of warned) {
        expect(line.level).to.equal('warn');
        expect(line.kept).to.deep.equal({ 'x-quorum-initial-group-size': 'none', 'x-queue-leader-locator': 'none' });
        expect(line.wanted).to.deep.equal({ 'x-quorum-initial-group-size': 3, 'x-queue-leader-locator': 'balanced' });
        expect(line.message).to.match(/rabbitmq-queues rebalance quorum/);
      }
    }
    // The queue is the old one, kept as it was: not deleted, not redeclared.
    const work = await queueInfo(t.workQueue);
    expect(work.arguments).to.not.have.property('x-quorum-initial-group-size');
    expect(work.arguments).to.include({ 'x-delivery-limit': 10 });
  });

  it('When QUORUM_REPLICAS changes after the queues were created, then the worker keeps them, says which count they have, and consumes', async () => {
    await declareAs(ns.topology, (q) => ({ ...q.arguments, ...q.placement }));
    const worker = spawnService('worker', ns.env({ QUORUM_REPLICAS: '5', LOG_LEVEL: 'info' }));
    await worker.waitForLog('that it consumes', (l) => l.message === 'consuming');
    const warned = placementWarnings(worker);
    expect(warned).to.have.length(ns.topology.queues.length);
    for (const line of warned) expect(line.kept).to.deep.equal({ 'x-quorum-initial-group-size': '3' });
  });

  it('When an argument that decides how messages are treated differs (DELIVERY_LIMIT), then the worker does not paper over it: setup fails naming it', async () => {
    await declareAs(ns.topology, (q) => ({ ...q.arguments, ...q.placement }));
    const worker = spawnService('worker', ns.env({ DELIVERY_LIMIT: '7', LOG_LEVEL: 'info' }));
    const failed = await worker.waitForLog('that setup failed', (l) => l.message === 'broker setup failed, trying the next node');
    expect(failed.error).to.match(/inequivalent arg 'x-delivery-limit'/);
    expect(worker.logs.some((l) => l.message === 'consuming')).to.equal(false);
  });
});
