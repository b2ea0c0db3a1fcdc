import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { expect } from 'chai';
import { authenticate, issueApiKey } from '../shared/domain/api-keys.js';
import { DEMO_ACCOUNTS } from '../shared/domain/demo-accounts.js';
import { isAppError, type ErrorCode } from '../shared/domain/errors.js';
import type { TransferRequest } from '../shared/domain/ledger.js';
import { inheritedEnv } from '../shared/runtime/config.js';
import type { OutboxLease, Store, TransferReceipt } from '../shared/store/store.js';
import { TestNamespace, testStores } from './support/namespace.js';
import { waitFor } from './support/wait.js';

/**
 * The Store contract (shared/store/store.ts): the same cases against every store
 * kind, through the interface alone, with no broker. Each test gets a fresh
 * database with the demo accounts. To add a case, add an `it` to the describe
 * of its topic; it runs against SQLite and PostgreSQL (TEST_STORES picks).
 */
for (const kind of testStores()) describe(`[${kind}] the Store contract`, function () {
  this.timeout(20_000);
  let ns: TestNamespace;
  let store: Store;
  beforeEach(async () => {
    ns = new TestNamespace(kind);
    await ns.prepare();
    store = await ns.openStore();
    await store.seedAccounts(DEMO_ACCOUNTS);
  });
  afterEach(async () => {
    await store?.close();
    await ns?.dropDatabase();
  });

  const committer: OutboxLease = { owner: 'relay-committer', leaseMs: 60_000 };
  const request = (amountMinor = 100, overrides: Partial<TransferRequest> = {}): TransferRequest => ({
    fromAccount: 'user-A',
    toAccount: 'user-B',
    amountMinor,
    currency: null,
    reference: null,
    ...overrides,
  });
  /** A committed transfer's ids (its outbox event is leased to `lease`). */
  const commit = async (lease = committer, amountMinor = 100) => {
    const receipt = await store.executeTransfer(request(amountMinor), null, lease);
    if (receipt.replayed) throw new Error('not a replay');
    return { transferId: receipt.transfer.id, eventId: receipt.event.id, createdAt: receipt.transfer.createdAt };
  };
  const claim = (owner: string, limit = 100, afterSeq = 0, leaseMs = 60_000) => store.claimOutbox({ owner, leaseMs }, limit, afterSeq);
  const balance = async (id: string) => (await store.findAccount(id))!.balanceMinor;
  const refusal = async (promise: Promise<unknown>): Promise<ErrorCode | string> => {
    try {
      await promise;
    } catch (error) {
      return isAppError(error) ? error.code : String(error);
    }
    throw new Error('it was accepted');
  };

  describe('transfers', () => {
    it('When transfers of one moment race and one is refused, then only that one fails and every other commits', async () => {
      const results = await Promise.allSettled([100, 999_999_999, 200].map((amount) => store.executeTransfer(request(amount), null, committer)));
      expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
      expect(isAppError((results[1] as PromiseRejectedResult).reason, 'insufficient_funds')).to.equal(true);
      expect(await balance('user-A')).to.equal(1_000_000 - 300);
      expect(await balance('user-B')).to.equal(1_000_000 + 300);
      expect((await store.outboxStats()).unpublished).to.equal(2);
    });

    it('When a transfer is refused, then no money moves and no event is written', async () => {
      expect(await refusal(store.executeTransfer(request(100, { toAccount: 'nobody' }), null, committer))).to.equal('account_not_found');
      expect(await refusal(store.executeTransfer(request(100, { currency: 'EUR' }), null, committer))).to.equal('currency_mismatch');
      expect([await balance('user-A'), await balance('user-B')]).to.deep.equal([1_000_000, 1_000_000]);
      expect(await store.outboxStats()).to.deep.equal({ unpublished: 0, oldestCreatedAt: null });
    });

    it('When accounts are seeded again, then existing balances are left as they are', async () => {
      await commit();
      await store.seedAccounts(DEMO_ACCOUNTS);
      expect(await balance('user-A')).to.equal(1_000_000 - 100);
    });
  });

  describe('the outbox', () => {
    it('When transfers commit, then their events wait unpublished, leased to the relay that committed them', async () => {
      const first = await commit();
      await commit();
      expect(await store.outboxStats()).to.deep.equal({ unpublished: 2, oldestCreatedAt: first.createdAt });
      expect(await claim('relay-other'), 'no other relay takes a leased event').to.deep.equal([]);
    });

    it('When events are free, then claims take them oldest first, page by page after the last seq, and never twice', async () => {
      const committed = [];
      for (let i = 0; i < 5; i++) committed.push(await commit());
      await store.releaseOutbox(committer.owner);

      const pages = [];
      let afterSeq = 0;
      for (;;) {
        const page = await claim('relay-A', 2, afterSeq);
        if (page.length === 0) break;
        pages.push(page.map((e) => e.id));
        afterSeq = page.at(-1)!.seq;
      }
      const ids = committed.map((c) => c.eventId);
      expect(pages).to.deep.equal([ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)]);
      expect(await claim('relay-B'), 'relay-A holds them all').to.deep.equal([]);
    });

    it('When an event is claimed, then it carries the transfer.completed payload of its transfer', async () => {
      const { transferId, eventId } = await commit(committer, 1234);
      await store.releaseOutbox(committer.owner);
      const [event] = await claim('relay-A');
      expect(event).to.include({ id: eventId, transferId, type: 'transfer.completed' });
      expect(event!.seq).to.be.a('number');
      expect(JSON.parse(event!.payload)).to.deep.include({ eventId, type: 'transfer.completed' });
      expect(JSON.parse(event!.payload).transfer).to.include({ id: transferId, amountMinor: 1234, fromAccount: 'user-A' });
    });

    it('When a relay releases its events, then only its own unpublished events become free', async () => {
      const mine = [await commit({ owner: 'relay-X', leaseMs: 60_000 }), await commit({ owner: 'relay-X', leaseMs: 60_000 })];
      await commit({ owner: 'relay-Y', leaseMs: 60_000 });
      await store.markPublished([mine[1]!.eventId]);
      await store.releaseOutbox('relay-X');
      expect((await claim('relay-B')).map((e) => e.id)).to.deep.equal([mine[0]!.eventId]);
    });

    it('When events are marked published twice, then the second mark changes nothing and they are never claimed again', async () => {
      const a = await commit();
      const b = await commit();
      await store.markPublished([a.eventId]);
      await store.markPublished([a.eventId]);
      await store.markPublished([]);
      expect(await store.outboxStats()).to.deep.equal({ unpublished: 1, oldestCreatedAt: b.createdAt });
      await store.releaseOutbox(committer.owner);
      expect((await claim('relay-B')).map((e) => e.id)).to.deep.equal([b.eventId]);
    });
  });

  describe('leases', () => {
    it('When a lease runs out, then another relay may claim the event, and the first owner can no longer renew it', async () => {
      const short = { owner: 'relay-short', leaseMs: 1000 };
      const { eventId } = await commit(short);
      expect(await claim('relay-B'), 'still leased').to.deep.equal([]);
      const taken = await waitFor('the lease to run out', async () => {
        const page = await claim('relay-B');
        return page.length > 0 ? page : undefined;
      }, { timeoutMs: 10_000 });
      expect(taken.map((e) => e.id)).to.deep.equal([eventId]);
      expect(await store.renewLeases(short, [eventId])).to.deep.equal([]);
    });

    it('When the owner renews a lease, then it outlives the original, while a lease not renewed runs out', async () => {
      const short = { owner: 'relay-short', leaseMs: 1000 };
      const renewed = await commit(short);
      const lapsed = await commit(short);
      expect(await store.renewLeases({ ...short, leaseMs: 60_000 }, [renewed.eventId])).to.deep.equal([renewed.eventId]);
      // Both leases began together: once the lapsed one is free, the renewed one would have been too.
      const taken = await waitFor('the unrenewed lease to run out', async () => {
        const page = await claim('relay-B');
        return page.length > 0 ? page : undefined;
      }, { timeoutMs: 10_000 });
      expect(taken.map((e) => e.id)).to.deep.equal([lapsed.eventId]);
      expect(await claim('relay-C'), 'the renewed lease holds').to.deep.equal([]);
    });

    it('When someone other than the owner renews, or the event is published, then the renewal returns nothing', async () => {
      const { eventId } = await commit();
      expect(await store.renewLeases({ owner: 'relay-other', leaseMs: 60_000 }, [eventId])).to.deep.equal([]);
      expect(await store.renewLeases(committer, [])).to.deep.equal([]);
      await store.markPublished([eventId]);
      expect(await store.renewLeases(committer, [eventId])).to.deep.equal([]);
    });
  });

  describe('send claims and notification outcomes', () => {
    const both = ['email', 'sms'] as const;
    /** A worker of this process (alive as long as the test runs). */
    const worker = (id: string, leaseMs = 60_000) => store.registerClaimant(id, leaseMs);
    const states = async (transferId: string) =>
      (await store.findTransfer(transferId))!.notifications.map(({ channel, status, attempts, lastError, parked }) => ({ channel, status, attempts, lastError, parked }));

    it('When a worker claims a transfer’s channels, then it learns whom to notify; a second live worker is told who holds them and gets none', async () => {
      const { transferId } = await commit();
      const [a, b] = [await worker('worker-a'), await worker('worker-b')];
      const first = await store.claimSends(transferId, both, a, { replay: false });
      expect(first).to.deep.equal({
        contact: { name: 'Ada Lovelace', email: 'ada@example.com', phone: '+15550100001' },
        granted: ['email', 'sms'],
        held: [],
        unparked: [],
      });
      const second = await store.claimSends(transferId, both, b, { replay: false });
      expect(second).to.deep.include({ granted: [], unparked: [] });
      expect(second!.held).to.deep.equal([
        { channel: 'email', by: 'worker-a' },
        { channel: 'sms', by: 'worker-a' },
      ]);
      // The holder itself may claim again (its own redelivery), and a claim shows as pending, not attempted.
      expect((await store.claimSends(transferId, ['sms'], a, { replay: false }))!.granted).to.deep.equal(['sms']);
      expect(await states(transferId)).to.deep.equal([
        { channel: 'email', status: 'pending', attempts: 0, lastError: null, parked: false },
        { channel: 'sms', status: 'pending', attempts: 0, lastError: null, parked: false },
      ]);
    });

    it('When workers race for the same channels, then exactly one of them gets each channel', async () => {
      const { transferId } = await commit();
      const workers = await Promise.all(Array.from({ length: 6 }, (_, i) => worker(`racer-${i}`)));
      const claims = await Promise.all(workers.map((w) => store.claimSends(transferId, both, w, { replay: false })));
      const granted = claims.flatMap((c) => c!.granted);
      expect(granted.sort()).to.deep.equal(['email', 'sms']);
    });

    it('When a claim’s lease has run out, or its worker gives it back, then another worker gets the channel', async () => {
      const { transferId } = await commit();
      const brief = await worker('brief', 50);
      const patient = await worker('patient');
      await store.claimSends(transferId, ['email'], brief, { replay: false });
      await waitFor('the lease to run out', async () => (await store.claimSends(transferId, ['email'], patient, { replay: false }))!.granted.length === 1);
      await store.releaseClaims(transferId, ['email'], patient);
      expect((await store.claimSends(transferId, ['email'], brief, { replay: false }))!.granted).to.deep.equal(['email']);
    });

    it('When the worker holding a claim has died, then its claim stops counting at once, long before its lease ends', async () => {
      const { transferId } = await commit();
      // A real worker process: it claims both channels with a lease of an hour, then is killed with SIGKILL.
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', `
          import { loadConfig } from './shared/runtime/config.ts';
          import { openStore } from './shared/store/index.ts';
          const store = await openStore(loadConfig());
          const claimant = await store.registerClaimant('doomed', 3_600_000);
          const claim = await store.claimSends(process.argv[1], ['email', 'sms'], claimant, { replay: false });
          process.stdout.write(JSON.stringify(claim.granted) + '\\n');
          setInterval(() => undefined, 1000);`, transferId],
        { env: inheritedEnv({ DATABASE_URL: ns.databaseUrl, LOG_LEVEL: 'error' }), stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
      expect(JSON.parse(line)).to.deep.equal(['email', 'sms']);
      const alive = await worker('survivor');
      expect((await store.claimSends(transferId, both, alive, { replay: false }))!.held.map((h) => h.by)).to.deep.equal(['doomed', 'doomed']);
      child.kill('SIGKILL');
      await once(child, 'exit');
      const taken = await waitFor('the dead worker’s claims to stop counting', async () => {
        const c = await store.claimSends(transferId, both, alive, { replay: false });
        return c!.granted.length === 2 ? c : undefined;
      }, { timeoutMs: 5000 });
      expect(taken!.held).to.deep.equal([]);
    });

    it('When outcomes are recorded, then each channel reads back with its status, attempts and last error, and its claim is free again', async () => {
      const { transferId } = await commit();
      const a = await worker('worker-a');
      await store.claimSends(transferId, both, a, { replay: false });
      await store.recordAttempts(transferId, [], a);
      await store.recordAttempts(transferId, [
        { channel: 'email', status: 'sent', error: null },
        { channel: 'sms', status: 'pending', error: 'gateway timeout' },
      ], a);
      expect(await states(transferId)).to.deep.equal([
        { channel: 'email', status: 'sent', attempts: 1, lastError: null, parked: false },
        { channel: 'sms', status: 'pending', attempts: 1, lastError: 'gateway timeout', parked: false },
      ]);
      // The retry, in another worker: the SMS is free to claim; the email is done.
      const b = await worker('worker-b');
      expect(await store.claimSends(transferId, both, b, { replay: false })).to.deep.include({ granted: ['sms'], held: [], unparked: [] });
      await store.recordAttempts(transferId, [{ channel: 'sms', status: 'sent', error: null }], b);
      expect((await states(transferId)).map((n) => [n.channel, n.status, n.attempts])).to.deep.equal([
        ['email', 'sent', 1],
        ['sms', 'sent', 2],
      ]);
      const createdAt = Date.parse((await store.findTransfer(transferId))!.createdAt);
      for (const n of (await store.findTransfer(transferId))!.notifications) expect(Date.parse(n.updatedAt)).to.be.at.least(createdAt);
    });

    it('When a channel recorded sent is recorded again (failed or pending), then it stays sent with its attempts', async () => {
      const { transferId } = await commit();
      const a = await worker('worker-a');
      await store.recordAttempts(transferId, [{ channel: 'email', status: 'sent', error: null }], a);
      await store.recordAttempts(transferId, [{ channel: 'email', status: 'failed', error: 'a late duplicate' }], a);
      await store.recordAttempts(transferId, [{ channel: 'email', status: 'pending', error: null }], a);
      const [email] = await states(transferId);
      expect(email).to.include({ channel: 'email', status: 'sent', attempts: 1, lastError: null });
    });

    it('When a channel is recorded failed, then it is unparked until its dead letter is confirmed; a later claim says so, and a replay reopens it', async () => {
      const { transferId } = await commit();
      const a = await worker('worker-a');
      await store.claimSends(transferId, ['sms'], a, { replay: false });
      await store.recordAttempts(transferId, [{ channel: 'sms', status: 'failed', error: 'SMS gateway answered 400' }], a);
      expect((await states(transferId))[0]).to.include({ channel: 'sms', status: 'failed', parked: false });
      // A delivery after a crash in between: nothing to send, one channel to park.
      expect(await store.claimSends(transferId, both, a, { replay: false })).to.deep.include({
        granted: ['email'],
        held: [],
        unparked: [{ channel: 'sms', lastError: 'SMS gateway answered 400' }],
      });
      await store.markParked(transferId, ['sms']);
      await store.markParked(transferId, ['sms', 'email']);
      const parked = await states(transferId);
      expect(parked.find((n) => n.channel === 'sms')).to.include({ status: 'failed', parked: true, attempts: 1 });
      expect(parked.find((n) => n.channel === 'email'), 'only failed channels are parked').to.include({ status: 'pending', parked: false });
      expect((await store.claimSends(transferId, ['sms'], a, { replay: false }))!).to.deep.include({ granted: [], unparked: [] });
      // The operator replays it: a new round starts from pending.
      expect((await store.claimSends(transferId, ['sms'], a, { replay: true }))!.granted).to.deep.equal(['sms']);
      expect((await states(transferId)).find((n) => n.channel === 'sms')).to.include({ status: 'pending', parked: false, attempts: 1 });
    });
  });

  describe('idempotency', () => {
    const keyed = (key: string, amountMinor: number) => {
      const r = request(amountMinor);
      return [r, { key }] as const;
    };
    const replayOf = (receipt: TransferReceipt) => (receipt.replayed ? receipt.transferId : null);

    it('When the same key comes with the same request, then the first transfer is answered and no money moves again', async () => {
      const first = await store.executeTransfer(...keyed('key-1', 250), committer);
      const again = await store.executeTransfer(...keyed('key-1', 250), committer);
      expect(first.replayed).to.equal(false);
      expect(replayOf(again)).to.equal(first.replayed ? null : first.transfer.id);
      expect(await balance('user-A')).to.equal(1_000_000 - 250);
      expect((await store.outboxStats()).unpublished).to.equal(1);
    });

    it('When the same key comes with another request, then it is refused as idempotency_key_reused and nothing moves', async () => {
      await store.executeTransfer(...keyed('key-1', 250), committer);
      expect(await refusal(store.executeTransfer(...keyed('key-1', 999), committer))).to.equal('idempotency_key_reused');
      expect(await balance('user-A')).to.equal(1_000_000 - 250);
    });

    it('When a request with a key is refused, then the key is not remembered and may be used once the cause is fixed', async () => {
      expect(await refusal(store.executeTransfer(...keyed('key-2', 999_999_999), committer))).to.equal('insufficient_funds');
      const retried = await store.executeTransfer(...keyed('key-2', 100), committer);
      expect(retried.replayed).to.equal(false);
    });
  });

  describe('API keys', () => {
    it('When a key is revoked, then it no longer authenticates, and revoking it again reports nothing to revoke', async () => {
      const { id, token } = await issueApiKey(store, ['user-A', 'user-B'], { label: 'contract' });
      expect(await authenticate(store, token)).to.deep.include({ keyId: id });
      const stored = await store.findApiKey(id);
      expect(stored).to.include({ id, label: 'contract', revokedAt: null });
      expect(stored!.accounts).to.deep.equal(['user-A', 'user-B']);

      expect(await store.revokeApiKey(id)).to.equal(true);
      expect(Date.parse((await store.findApiKey(id))!.revokedAt!)).to.be.a('number').and.not.NaN;
      expect(await authenticate(store, token)).to.equal(null);
      expect(await store.revokeApiKey(id)).to.equal(false);
      expect(await store.revokeApiKey('nosuchkey0')).to.equal(false);
    });

    it('When a key id is inserted twice, then the second insert is refused and the first key is kept', async () => {
      const key = { id: 'contract01', secretHash: 'a'.repeat(64), accounts: ['user-A'], label: 'first', createdAt: new Date().toISOString(), revokedAt: null };
      expect(await store.insertApiKey(key)).to.equal(true);
      expect(await store.insertApiKey({ ...key, label: 'second', accounts: ['user-C'] })).to.equal(false);
      expect(await store.findApiKey(key.id)).to.include({ label: 'first' });
      expect((await store.listApiKeys()).map((k) => k.id)).to.deep.equal([key.id]);
    });
  });

  describe('malformed and unknown ids', () => {
    it('When an id is malformed or unknown, then lookups answer "none" rather than failing', async () => {
      for (const id of ['not-a-uuid', '', '00000000-0000-4000-8000-000000000000', "'; DROP TABLE transfers; --"]) {
        expect(await store.findTransfer(id), `findTransfer(${JSON.stringify(id)})`).to.equal(null);
        expect(await store.claimSends(id, ['email'], await store.registerClaimant('w', 1000), { replay: false }), `claimSends(${JSON.stringify(id)})`).to.equal(null);
      }
      expect(await store.findAccount("user-A' OR '1'='1")).to.equal(null);
      expect(await store.findAccount('')).to.equal(null);
      expect(await store.findApiKey('not a key id')).to.equal(null);
      expect(await balance('user-A'), 'nothing was dropped').to.equal(1_000_000);
    });

    it('When outcomes are recorded for a transfer that does not exist, then the store refuses and records nothing', async () => {
      const w = await store.registerClaimant('w', 1000);
      for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
        await refusal(store.recordAttempts(id, [{ channel: 'email', status: 'sent', error: null }], w));
        expect(await store.findTransfer(id)).to.equal(null);
      }
    });
  });
});
