import amqp, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import request from 'supertest';
import { startApi, type ApiHandle } from '../../api/server.js';
import { startWorker, type WorkerDeps, type WorkerHandle } from '../../worker/worker.js';
import { AMQP_URL, TestNamespace, type EnvOverrides, type StoreKind } from './namespace.js';
import { waitFor } from './wait.js';

/** The API (and optionally a worker) running in this process against the real broker and database. */
export class TestSystem {
  readonly ns: TestNamespace;
  api!: ApiHandle;
  worker: WorkerHandle | null = null;
  private inspector: { connection: ChannelModel; channel: Channel | null } | null = null;

  private constructor(store: StoreKind) {
    this.ns = new TestNamespace(store);
  }

  static async start(options: { db?: StoreKind; worker?: boolean; env?: EnvOverrides } & WorkerDeps = {}): Promise<TestSystem> {
    const system = new TestSystem(options.db ?? 'sqlite');
    try {
      await system.ns.prepare();
      system.api = await startApi(system.ns.config(options.env));
      if (options.worker) system.worker = await startWorker(system.ns.config(options.env), options);
      await waitFor('the API to reach the broker', () => system.api.broker.isConnected);
      return system;
    } catch (error) {
      await system.stop();
      throw error;
    }
  }

  http() {
    return request(this.api.url);
  }

  post(body: unknown, headers: Record<string, string> = {}) {
    return this.http().post('/transfer').set(headers).send(body as object);
  }

  async balance(accountId: string): Promise<string> {
    const res = await this.http().get(`/accounts/${accountId}`).expect(200);
    return res.body.balance as string;
  }

  async transfer(id: string): Promise<TransferView> {
    const res = await this.http().get(`/transfers/${id}`).expect(200);
    return res.body as TransferView;
  }

  /** Waits until every notification of the transfer is sent. */
  async waitNotified(id: string, timeoutMs = 15_000): Promise<TransferView> {
    return waitFor(`transfer ${id} to be notified`, async () => {
      const t = await this.transfer(id);
      return t.status === 'notified' ? t : undefined;
    }, { timeoutMs });
  }

  /** A plain AMQP channel for looking at (and into) the namespace's queues; a new one if a failed check closed the last. */
  async channel(): Promise<Channel> {
    if (!this.inspector) {
      const connection = await amqp.connect(AMQP_URL);
      connection.on('error', () => undefined);
      this.inspector = { connection, channel: null };
    }
    const inspector = this.inspector;
    if (!inspector.channel) {
      const channel = await inspector.connection.createChannel();
      channel.on('error', () => undefined);
      channel.on('close', () => {
        if (inspector.channel === channel) inspector.channel = null;
      });
      inspector.channel = channel;
    }
    return inspector.channel;
  }

  async messageCount(queue: string): Promise<number> {
    return (await (await this.channel()).checkQueue(queue)).messageCount;
  }

  /** Takes every message currently in the queue (acking it). */
  async drain(queue: string): Promise<GetMessage[]> {
    const channel = await this.channel();
    const messages: GetMessage[] = [];
    for (;;) {
      const message = await channel.get(queue, { noAck: true });
      if (!message) return messages;
      messages.push(message);
    }
  }

  async stop(): Promise<void> {
    await this.worker?.stop();
    await this.api?.stop();
    await this.inspector?.connection.close().catch(() => undefined);
    await this.ns.cleanup();
  }
}

export interface TransferView {
  transferId: string;
  status: 'accepted' | 'notified' | 'notification_failed';
  fromAccount: string;
  toAccount: string;
  amount: string;
  currency: string;
  reference: string | null;
  createdAt: string;
  notifications: { channel: string; status: string; attempts: number; lastError?: string; updatedAt: string }[];
}
