import amqp, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import request from 'supertest';
import { startApi, type ApiHandle } from '../../api/server.js';
import { issueApiKey } from '../../shared/domain/api-keys.js';
import { DEMO_ACCOUNTS, DEMO_API_KEYS } from '../../shared/domain/demo-accounts.js';
import type { Account } from '../../shared/domain/ledger.js';
import { startWorker, type WorkerDeps, type WorkerHandle } from '../../worker/worker.js';
import { AMQP_URL, TestNamespace, type EnvOverrides, type StoreKind } from './namespace.js';
import { issuedTokens } from './secrets.js';
import { waitFor } from './wait.js';

/** The API (and optionally a worker) running in this process against the real broker and database. */
export class TestSystem {
  readonly ns: TestNamespace;
  api!: ApiHandle;
  worker: WorkerHandle | null = null;
  private inspector: { connection: ChannelModel; channel: Channel | null } | null = null;
  /** Accounts that exist in this system's store, so requests can authenticate as their owner. */
  private readonly accounts = new Set(DEMO_ACCOUNTS.map((a) => a.id));
  private readonly keys = new Map<string, Promise<string>>();

  private constructor(store: StoreKind) {
    this.ns = new TestNamespace(store);
  }

  /** `existing` fills the namespace's fresh database before anything opens it, as an earlier version would have left it. */
  static async start(
    options: { db?: StoreKind; worker?: boolean; env?: EnvOverrides; existing?: (ns: TestNamespace) => Promise<void> } & WorkerDeps = {},
  ): Promise<TestSystem> {
    const system = new TestSystem(options.db ?? 'sqlite');
    try {
      await system.ns.prepare();
      await options.existing?.(system.ns);
      system.api = await startApi(system.ns.config(options.env), { print: () => undefined });
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

  async seedAccounts(accounts: Account[]): Promise<void> {
    await this.api.store.seedAccounts(accounts);
    for (const a of accounts) this.accounts.add(a.id);
  }

  /** A key bound to exactly these accounts (the published demo key for a lone demo account). */
  keyFor(...accounts: string[]): Promise<string> {
    const id = [...accounts].sort().join(',');
    let key = this.keys.get(id);
    if (!key) {
      const demo = accounts.length === 1 ? DEMO_API_KEYS[accounts[0]!] : undefined;
      key = demo
        ? Promise.resolve(demo)
        : issueApiKey(this.api.store, accounts, { label: 'test' }).then(({ token }) => {
            issuedTokens.add(token);
            return token;
          });
      this.keys.set(id, key);
    }
    return key;
  }

  async auth(...accounts: string[]): Promise<Record<string, string>> {
    return { Authorization: `Bearer ${await this.keyFor(...accounts)}` };
  }

  /** POST /transfer as the owner of fromAccount (user-A's key when fromAccount is not an account). */
  post(body: unknown, headers: Record<string, string> = {}): PendingRequest {
    const from = (body as { fromAccount?: unknown } | null)?.fromAccount;
    const owner = typeof from === 'string' && this.accounts.has(from) ? from : 'user-A';
    // Boxed: an async function returning the (thenable) Test would run it and hand back its Response.
    return new PendingRequest(async () => ({
      test: this.http()
        .post('/transfer')
        .set({ ...(await this.auth(owner)), ...headers })
        .send(body as object),
    }));
  }

  async balance(accountId: string): Promise<string> {
    const res = await this.http().get(`/accounts/${accountId}`).set(await this.auth(accountId)).expect(200);
    return res.body.balance as string;
  }

  /** Reads as a key bound to every account of the system, so any transfer is visible. */
  async transfer(id: string): Promise<TransferView> {
    const res = await this.http().get(`/transfers/${id}`).set(await this.auth(...this.accounts)).expect(200);
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

/** A supertest request whose headers need an await first; `await` it, or `.expect(status)` like supertest. */
export class PendingRequest implements PromiseLike<request.Response> {
  private started: Promise<{ test: request.Test }> | null = null;

  constructor(private readonly build: () => Promise<{ test: request.Test }>) {}

  private box(): Promise<{ test: request.Test }> {
    this.started ??= this.build();
    return this.started;
  }

  expect(status: number): Promise<request.Response> {
    return this.box().then(({ test }) => test.expect(status));
  }

  then<A = request.Response, B = never>(
    onFulfilled?: ((value: request.Response) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.box()
      .then(({ test }) => test as unknown as PromiseLike<request.Response>)
      .then(onFulfilled, onRejected);
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
