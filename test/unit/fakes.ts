import type { ConfirmPublisher } from '../../shared/broker/publisher.js';
import { hashSecret, parseApiKey, type StoredApiKey } from '../../shared/domain/api-keys.js';
import { DEMO_ACCOUNTS, DEMO_API_KEYS } from '../../shared/domain/demo-accounts.js';
import { checkTransfer, newTransfer, requestFingerprint, resolveReplay, type Account, type Transfer } from '../../shared/domain/ledger.js';
import type { OutboxRelay } from '../../api/outbox-relay.js';
import { outboxEventFor, type ClaimedEvent, type OutboxEvent, type OutboxLease, type Store, type TransferRecord } from '../../shared/store/store.js';

/**
 * Fakes for unit tests: no broker, no database. Each is as small as the code
 * under test needs; what it does not fake fails loudly instead of answering
 * something made up. The store contract suite (test/store-contract.test.ts)
 * holds the real stores to the behaviour these imitate.
 */

/** A Store with only the given methods; calling any other rejects, naming it. */
export function fakeStore(methods: Partial<Store>): Store {
  return new Proxy(methods as Store, {
    get(target, property) {
      if (property in target) return target[property as keyof Store];
      // `await store` looks for a then; a Store is not a promise.
      if (property === 'then') return undefined;
      return () => Promise.reject(new Error(`the fake store has no ${String(property)}`));
    },
  });
}

/** The API's side of a store in memory: the demo accounts and keys, transfers with idempotency. */
export function memoryLedger(): Store & { transfers: Map<string, Transfer> } {
  const accounts = new Map<string, Account>(DEMO_ACCOUNTS.map((a) => [a.id, { ...a }]));
  const keys = new Map<string, StoredApiKey>(
    Object.entries(DEMO_API_KEYS).map(([account, token]) => {
      const { id, secret } = parseApiKey(token)!;
      return [id, { id, secretHash: hashSecret(secret), accounts: [account], label: 'demo', createdAt: new Date(0).toISOString(), revokedAt: null }];
    }),
  );
  const transfers = new Map<string, Transfer>();
  const byKey = new Map<string, { transferId: string; requestHash: string }>();
  const store = fakeStore({
    async findApiKey(id) {
      return keys.get(id) ?? null;
    },
    async findAccount(id) {
      return accounts.get(id) ?? null;
    },
    async executeTransfer(request, claim) {
      const stored = claim && byKey.get(claim.key);
      if (claim && stored) return { replayed: true, transferId: resolveReplay(stored, request, accounts.get(request.fromAccount)?.currency ?? null) };
      const from = accounts.get(request.fromAccount);
      const currency = checkTransfer(request, from, accounts.get(request.toAccount));
      from!.balanceMinor -= request.amountMinor;
      accounts.get(request.toAccount)!.balanceMinor += request.amountMinor;
      const transfer = newTransfer(request, currency, new Date());
      transfers.set(transfer.id, transfer);
      if (claim) byKey.set(claim.key, { transferId: transfer.id, requestHash: requestFingerprint(request, currency) });
      return { replayed: false, transfer, event: outboxEventFor(transfer) };
    },
    async findTransfer(id): Promise<TransferRecord | null> {
      const transfer = transfers.get(id);
      return transfer ? { ...transfer, notifications: [] } : null;
    },
    async ping() {},
    async outboxStats() {
      return { unpublished: 0, oldestCreatedAt: null };
    },
  });
  return Object.assign(store, { transfers });
}

/** A relay that only collects what the API hands it. */
export function collectingRelay(): OutboxRelay & { enqueued: OutboxEvent[] } {
  const enqueued: OutboxEvent[] = [];
  const relay = { lease: { owner: 'relay-fake', leaseMs: 30_000 }, backlog: 0, enqueue: (event: OutboxEvent) => enqueued.push(event), enqueued };
  return relay as unknown as OutboxRelay & { enqueued: OutboxEvent[] };
}

interface OutboxRow extends ClaimedEvent {
  leaseOwner: string | null;
  leaseUntil: number;
  published: boolean;
}

/**
 * The outbox table in memory, with the stores' lease rules read off Date.now()
 * (so fake timers move it): a claim takes unpublished rows whose lease ran out,
 * in seq order after `afterSeq`; a renewal extends only the owner's unpublished rows.
 */
export class MemoryOutbox {
  readonly rows: OutboxRow[] = [];
  /** Every store call, in order, for asserting what the relay asked. */
  readonly calls: string[] = [];
  /** Set to make the next calls of that method reject, as a database outage would. */
  failing = new Set<'markPublished' | 'claimOutbox' | 'renewLeases'>();
  private seq = 0;

  /** A committed event, leased to `owner` for `leaseMs` (or free, as after a crash's lease ran out). */
  add(owner: string | null = null, leaseMs = 0): OutboxEvent {
    const id = `00000000-0000-7000-8000-${String(++this.seq).padStart(12, '0')}`;
    const event = { id, transferId: id, type: 'transfer.completed', payload: JSON.stringify({ n: this.seq }), createdAt: new Date().toISOString() };
    this.rows.push({ ...event, seq: this.seq, leaseOwner: owner, leaseUntil: owner ? Date.now() + leaseMs : 0, published: false });
    return event;
  }

  get unpublished(): string[] {
    return this.rows.filter((r) => !r.published).map((r) => r.id);
  }

  private check(method: 'markPublished' | 'claimOutbox' | 'renewLeases'): void {
    this.calls.push(method);
    if (this.failing.has(method)) throw new Error(`${method}: database unavailable (fake)`);
  }

  store(): Store {
    return fakeStore({
      claimOutbox: async (lease: OutboxLease, limit: number, afterSeq: number) => {
        this.check('claimOutbox');
        const now = Date.now();
        const claimed = this.rows.filter((r) => !r.published && r.seq > afterSeq && r.leaseUntil < now).slice(0, limit);
        for (const r of claimed) Object.assign(r, { leaseOwner: lease.owner, leaseUntil: now + lease.leaseMs });
        return claimed.map(({ seq, id, transferId, type, payload, createdAt }) => ({ seq, id, transferId, type, payload, createdAt }));
      },
      renewLeases: async (lease: OutboxLease, ids: readonly string[]) => {
        this.check('renewLeases');
        const held = this.rows.filter((r) => ids.includes(r.id) && r.leaseOwner === lease.owner && !r.published);
        for (const r of held) r.leaseUntil = Date.now() + lease.leaseMs;
        return held.map((r) => r.id);
      },
      markPublished: async (ids: readonly string[]) => {
        this.check('markPublished');
        for (const r of this.rows) if (ids.includes(r.id)) Object.assign(r, { published: true, leaseOwner: null });
      },
      releaseOutbox: async (owner: string) => {
        this.calls.push('releaseOutbox');
        for (const r of this.rows) if (r.leaseOwner === owner && !r.published) Object.assign(r, { leaseOwner: null, leaseUntil: 0 });
      },
    });
  }
}

/** A confirm-channel publisher whose broker the test controls: it takes messages, or refuses them. */
export class FakePublisher {
  /** Message ids the broker confirmed, in order (one per confirm, so a duplicate shows twice). */
  readonly confirmed: string[] = [];
  /** Every publish attempt's time (Date.now()), confirmed or not. */
  readonly attempts: number[] = [];
  refusing = false;

  async publish(_exchange: string, _routingKey: string, _content: Buffer, options: { messageId?: string }): Promise<void> {
    this.attempts.push(Date.now());
    if (this.refusing) throw new Error('no confirm from the broker (fake)');
    this.confirmed.push(options.messageId!);
  }

  asPublisher(): ConfirmPublisher {
    return this as unknown as ConfirmPublisher;
  }
}
