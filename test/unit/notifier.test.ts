import { expect } from 'chai';
import { transferCompletedEvent, type Transfer } from '../../shared/domain/ledger.js';
import type { Channel, NotificationStatus, OutgoingNotification } from '../../shared/domain/notifications.js';
import { decideClaims, type ClaimCandidate } from '../../shared/domain/send-claims.js';
import type { AttemptRecord, Claimant } from '../../shared/store/store.js';
import { WorkerMetrics } from '../../worker/metrics.js';
import { Notifier, type Scope } from '../../worker/notifier.js';
import { ProviderError, type NotificationProvider } from '../../worker/providers/provider.js';
import { fakeStore } from './fakes.js';

/**
 * The notifier's decisions with fake providers and an in-memory store that
 * applies the real claim rule (shared/domain/send-claims.ts). The real stores
 * are held to the same rule by the store contract suite; the consumer and the
 * broker by the integration suites.
 */

const transfer: Transfer = { id: '01a1c000-0000-7000-8000-0000000000aa', fromAccount: 'user-A', toAccount: 'user-B', amountMinor: 1234, currency: 'USD', reference: null, createdAt: '2026-12-01T10:00:00.000Z' };
const event = transferCompletedEvent(transfer);
const contact = { name: 'Ada Lovelace', email: 'ada@example.com', phone: '+15550100001' };
const policy = { delaysMs: [1000, 5000], maxAttempts: 3 };
const me: Claimant = { workerId: 'me', token: 'me', leaseMs: 15_000 };
const first: Scope = { ok: true, attempt: 1, channel: null, replay: false };

type Row = { status: NotificationStatus; parked: boolean; lastError: string | null; claimedBy: string | null; attempts: number };

/** One transfer's notification rows in memory, claimed by the real rule; `others` are live workers. */
function memoryStore(rows: Partial<Record<Channel, Partial<Row>>> = {}, exists = true) {
  const table = new Map<Channel, Row>();
  for (const [channel, row] of Object.entries(rows)) table.set(channel as Channel, { status: 'pending', parked: false, lastError: null, claimedBy: null, attempts: 0, ...row });
  const calls = { recorded: [] as AttemptRecord[], parked: [] as Channel[], released: [] as Channel[] };
  const row = (channel: Channel) => table.get(channel) ?? table.set(channel, { status: 'pending', parked: false, lastError: null, claimedBy: null, attempts: 0 }).get(channel)!;
  const store = fakeStore({
    async claimSends(_id, channels, claimant, options) {
      if (!exists) return null;
      const candidates: ClaimCandidate[] = channels.map((channel) => {
        const r = row(channel);
        return { channel, status: r.status, parked: r.parked, lastError: r.lastError, claimedBy: r.claimedBy, heldByLiveWorker: r.claimedBy !== null && r.claimedBy !== claimant.workerId };
      });
      const decision = decideClaims(candidates, options);
      for (const channel of decision.granted) Object.assign(row(channel), { claimedBy: claimant.workerId, status: 'pending', parked: false });
      return { contact, ...decision };
    },
    async recordAttempts(_id, attempts) {
      calls.recorded.push(...attempts);
      for (const a of attempts) Object.assign(row(a.channel), { status: a.status, lastError: a.error, claimedBy: null, parked: false });
    },
    async markParked(_id, channels) {
      calls.parked.push(...channels);
    },
    async releaseClaims(_id, channels) {
      calls.released.push(...channels);
    },
  });
  return { store, table, calls };
}

/** A provider that answers each send with the next of `outcomes` (a thrown error, or nothing). */
function provider(...outcomes: (Error | null)[]): NotificationProvider & { sent: OutgoingNotification[] } {
  const sent: OutgoingNotification[] = [];
  return {
    name: 'fake',
    sent,
    async send(n) {
      sent.push(n);
      const outcome = outcomes.shift() ?? null;
      if (outcome) throw outcome;
    },
  };
}

const notifierWith = (store: ReturnType<typeof memoryStore>['store'], email: NotificationProvider, sms: NotificationProvider) =>
  new Notifier(store, { email, sms }, policy, me, new AbortController().signal, new WorkerMetrics());
const held = { lost: () => false };

describe('the notifier’s decisions (fake providers, in-memory store, the real claim rule)', () => {
  it('When a first delivery’s sends succeed, then both are recorded sent and nothing follows', async () => {
    const { store, calls } = memoryStore();
    const [email, sms] = [provider(), provider()];
    const decision = await notifierWith(store, email, sms).handle(event, first, held);
    expect(decision).to.deep.equal({ retries: [], parked: [], deferred: [] });
    expect(calls.recorded).to.deep.equal([
      { channel: 'email', status: 'sent', error: null },
      { channel: 'sms', status: 'sent', error: null },
    ]);
    expect(email.sent[0]).to.include({ to: 'ada@example.com', idempotencyKey: `${transfer.id}:email` });
    expect(email.sent[0]!.text).to.contain(transfer.id);
  });

  it('When a send fails transiently with attempts left, then that channel alone is retried after its tier, and recorded pending with the error', async () => {
    const { store, calls } = memoryStore();
    const decision = await notifierWith(store, provider(new ProviderError('451 busy', 'transient')), provider()).handle(event, first, held);
    expect(decision.retries).to.deep.equal([{ channel: 'email', attempt: 2, delayMs: 1000, error: '451 busy' }]);
    expect(decision.parked).to.deep.equal([]);
    expect(calls.recorded).to.deep.include({ channel: 'email', status: 'pending', error: '451 busy' });
  });

  it('When a send fails for good, or on its last attempt, then it is recorded failed and parked with why, but not yet marked parked', async () => {
    const { store, calls } = memoryStore();
    const notifier = notifierWith(store, provider(new ProviderError('550 no such user', 'permanent')), provider(new Error('socket hang up')));
    const last: Scope = { ok: true, attempt: 3, channel: null, replay: false };
    const decision = await notifier.handle(event, last, held);
    expect(decision.parked).to.deep.equal([
      { channel: 'email', attempt: 3, reason: 'email: permanent failure: 550 no such user' },
      { channel: 'sms', attempt: 3, reason: 'sms: gave up after attempt 3: socket hang up' },
    ]);
    expect(calls.recorded.map((r) => r.status)).to.deep.equal(['failed', 'failed']);
    expect(calls.parked).to.deep.equal([]);
    // Once the consumer has the dead-letter copies confirmed:
    await notifier.confirmParked(transfer.id, decision);
    expect(calls.parked).to.deep.equal(['email', 'sms']);
  });

  it('When another live worker holds a channel, then it is not sent but deferred by the first tier, without counting an attempt', async () => {
    const { store, calls } = memoryStore({ email: { claimedBy: 'other' } });
    const [email, sms] = [provider(), provider()];
    const decision = await notifierWith(store, email, sms).handle(event, first, held);
    expect(decision.deferred).to.deep.equal([{ channel: 'email', attempt: 1, delayMs: 1000, by: 'other' }]);
    expect(email.sent).to.have.length(0);
    expect(sms.sent).to.have.length(1);
    expect(calls.recorded).to.deep.equal([{ channel: 'sms', status: 'sent', error: null }]);
  });

  it('When a channel was recorded failed but never parked, then a later delivery parks it without sending', async () => {
    const { store } = memoryStore({ sms: { status: 'failed', lastError: 'SMS gateway answered 400' }, email: { status: 'sent' } });
    const sms = provider();
    const decision = await notifierWith(store, provider(), sms).handle(event, first, held);
    expect(sms.sent).to.have.length(0);
    expect(decision.parked).to.have.length(1);
    expect(decision.parked[0]).to.include({ channel: 'sms', attempt: 1 });
    expect(decision.parked[0]!.reason).to.match(/^sms: SMS gateway answered 400 \(parked on a later delivery/);
  });

  it('When a replay names a parked channel, then it is sent again; a first delivery would leave it parked', async () => {
    const { store } = memoryStore({ sms: { status: 'failed', parked: true }, email: { status: 'sent' } });
    const sms = provider();
    const notifier = notifierWith(store, provider(), sms);
    expect(await notifier.handle(event, first, held)).to.deep.equal({ retries: [], parked: [], deferred: [] });
    expect(sms.sent).to.have.length(0);
    await notifier.handle(event, { ok: true, attempt: 1, channel: 'sms', replay: true }, held);
    expect(sms.sent).to.have.length(1);
  });

  it('When the delivery is lost before its sends start, then nothing is sent and the claims are given back', async () => {
    const { store, calls } = memoryStore();
    const [email, sms] = [provider(), provider()];
    await notifierWith(store, email, sms).handle(event, first, { lost: () => true });
    expect(email.sent.length + sms.sent.length).to.equal(0);
    expect(calls.released).to.deep.equal(['email', 'sms']);
    expect(calls.recorded).to.deep.equal([]);
  });

  it('When a message is quarantined, then its unsent channels are recorded failed and parked, and nothing is sent', async () => {
    const { store, calls } = memoryStore({ email: { status: 'sent' } });
    const sms = provider();
    const decision = await notifierWith(store, provider(), sms).quarantine(event, first, 'quarantined: 10 earlier deliveries');
    expect(sms.sent).to.have.length(0);
    expect(calls.recorded).to.deep.equal([{ channel: 'sms', status: 'failed', error: 'quarantined: 10 earlier deliveries' }]);
    expect(decision.parked).to.deep.equal([{ channel: 'sms', attempt: 1, reason: 'sms: quarantined: 10 earlier deliveries' }]);
  });

  it('When the transfer is not in the store, then the whole message is parked', async () => {
    const { store } = memoryStore({}, false);
    const decision = await notifierWith(store, provider(), provider()).handle(event, first, held);
    expect(decision.parked).to.deep.equal([{ channel: null, attempt: 1, reason: `transfer ${transfer.id} is not in the store` }]);
  });

  it('When two deliveries of one transfer arrive at once, then they take turns and the second finds the work done', async () => {
    const { store } = memoryStore();
    const [email, sms] = [provider(), provider()];
    const notifier = notifierWith(store, email, sms);
    await Promise.all([notifier.handle(event, first, held), notifier.handle(event, first, held)]);
    expect([email.sent.length, sms.sent.length]).to.deep.equal([1, 1]);
  });
});

describe('the send claim rule (shared/domain/send-claims.ts)', () => {
  const row = (channel: Channel, overrides: Partial<ClaimCandidate> = {}): ClaimCandidate => ({
    channel,
    status: 'pending',
    parked: false,
    lastError: null,
    claimedBy: null,
    heldByLiveWorker: false,
    ...overrides,
  });

  it('When channels are pending, sent, held, failed or parked, then each gets its one answer', () => {
    expect(
      decideClaims(
        [row('email', { status: 'sent' }), row('sms', { heldByLiveWorker: true, claimedBy: 'w2' })],
        { replay: false },
      ),
    ).to.deep.equal({ granted: [], held: [{ channel: 'sms', by: 'w2' }], unparked: [] });
    expect(decideClaims([row('email'), row('sms', { status: 'failed', lastError: 'x' })], { replay: false })).to.deep.equal({
      granted: ['email'],
      held: [],
      unparked: [{ channel: 'sms', lastError: 'x' }],
    });
    expect(decideClaims([row('sms', { status: 'failed', parked: true })], { replay: false })).to.deep.equal({ granted: [], held: [], unparked: [] });
    // A claim whose worker is dead or whose lease ran out is not held: it is taken.
    expect(decideClaims([row('email', { claimedBy: 'dead', heldByLiveWorker: false })], { replay: false }).granted).to.deep.equal(['email']);
  });

  it('When it is a replay, then failed channels, parked or not, start a new round, and sent ones stay sent', () => {
    expect(
      decideClaims([row('email', { status: 'sent' }), row('sms', { status: 'failed', parked: true })], { replay: true }),
    ).to.deep.equal({ granted: ['sms'], held: [], unparked: [] });
    expect(decideClaims([row('sms', { status: 'failed' })], { replay: true }).granted).to.deep.equal(['sms']);
  });
});
