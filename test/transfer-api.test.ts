import type { GetMessage } from 'amqplib';
import { expect } from 'chai';
import pg from 'pg';
import { parseApiKey } from '../shared/domain/api-keys.js';
import { DEMO_API_KEYS } from '../shared/domain/demo-accounts.js';
import { idempotencyLockName } from '../shared/store/postgres-store.js';
import { testStores } from './support/namespace.js';
import { TestSystem } from './support/system.js';
import { waitFor } from './support/wait.js';

const ALICE = 'user-A';
const BOB = 'user-B';

for (const store of testStores()) describe(`[${store}] POST /transfer and the read endpoints`, () => {
  let system: TestSystem;

  before(async () => {
    // No worker: the work queue keeps what the API publishes, so we can count it.
    system = await TestSystem.start({ db: store, env: { SQLITE_BUSY_TIMEOUT_MS: '100' } });
  });
  after(async () => system?.stop());

  describe('validation: a rejected request answers a JSON error, moves no money and publishes nothing', () => {
    const valid = { fromAccount: ALICE, toAccount: BOB, amount: 1 };
    type Case = { name: string; status: number; code: string; body?: unknown; raw?: string; type?: string; headers?: Record<string, string> };
    const cases: Case[] = [
      { name: 'the body is not valid JSON', raw: '{"fromAccount":', status: 400, code: 'malformed_json' },
      { name: 'the body is a JSON string, not an object', raw: '"hello"', status: 400, code: 'malformed_json' },
      { name: 'the body is a JSON array', raw: '[1,2]', status: 400, code: 'invalid_body' },
      { name: 'the body is empty JSON object', body: {}, status: 400, code: 'invalid_body' },
      { name: 'there is no body at all', raw: '', status: 400, code: 'invalid_body' },
      { name: 'fromAccount is missing', body: { toAccount: BOB, amount: 1 }, status: 400, code: 'invalid_body' },
      { name: 'an unknown field is sent', body: { ...valid, memo: 'x' }, status: 400, code: 'invalid_body' },
      { name: 'amount is zero', body: { ...valid, amount: 0 }, status: 400, code: 'invalid_body' },
      { name: 'amount is negative', body: { ...valid, amount: -10 }, status: 400, code: 'invalid_body' },
      { name: 'amount has three decimals', body: { ...valid, amount: 1.001 }, status: 400, code: 'invalid_body' },
      { name: 'amount is a non-numeric string', body: { ...valid, amount: 'ten' }, status: 400, code: 'invalid_body' },
      { name: 'amount is in exponent notation', body: { ...valid, amount: '1e3' }, status: 400, code: 'invalid_body' },
      { name: 'amount is null', body: { ...valid, amount: null }, status: 400, code: 'invalid_body' },
      { name: 'amount is a boolean', body: { ...valid, amount: true }, status: 400, code: 'invalid_body' },
      { name: 'amount exceeds the maximum', body: { ...valid, amount: '100000000000.01' }, status: 400, code: 'invalid_body' },
      { name: 'an account id has forbidden characters', body: { ...valid, toAccount: 'bob; drop table' }, status: 400, code: 'invalid_body' },
      { name: 'currency is not an ISO code', body: { ...valid, currency: 'usd' }, status: 400, code: 'invalid_body' },
      { name: 'reference is longer than 140 characters', body: { ...valid, reference: 'x'.repeat(141) }, status: 400, code: 'invalid_body' },
      { name: 'the Idempotency-Key is too long', body: valid, headers: { 'Idempotency-Key': 'k'.repeat(256) }, status: 400, code: 'invalid_header' },
      { name: 'fromAccount is not an account of the key (nor any account)', body: { ...valid, fromAccount: 'nobody' }, status: 403, code: 'forbidden' },
      { name: 'fromAccount belongs to someone else', body: { ...valid, fromAccount: BOB, toAccount: ALICE }, status: 403, code: 'forbidden' },
      { name: 'toAccount does not exist', body: { ...valid, toAccount: 'nobody' }, status: 404, code: 'account_not_found' },
      { name: 'the body is too large', raw: JSON.stringify({ ...valid, reference: 'x'.repeat(20_000) }), status: 413, code: 'payload_too_large' },
      { name: 'the body is not JSON', raw: 'fromAccount=user-A', type: 'application/x-www-form-urlencoded', status: 415, code: 'unsupported_media_type' },
      { name: 'the body is plain text', raw: '{}', type: 'text/plain', status: 415, code: 'unsupported_media_type' },
      { name: 'both accounts are the same', body: { ...valid, toAccount: ALICE }, status: 422, code: 'same_account' },
      { name: 'the amount exceeds the balance', body: { ...valid, amount: '10000.01' }, status: 422, code: 'insufficient_funds' },
      { name: 'the currency differs from the accounts', body: { ...valid, currency: 'EUR' }, status: 422, code: 'currency_mismatch' },
    ];

    for (const c of cases) {
      it(`When ${c.name}, then it answers ${c.status} ${c.code}`, async () => {
        let req = system.http().post('/transfer').set({ ...(await system.auth(ALICE)), ...c.headers });
        if (c.raw !== undefined) {
          req = req.set('Content-Type', c.type ?? 'application/json').send(c.raw);
        } else {
          req = req.send(c.body as object);
        }
        const res = await req;
        expect(res.status, JSON.stringify(res.body)).to.equal(c.status);
        expect(res.headers['content-type']).to.match(/^application\/json/);
        expect(res.body.error.code).to.equal(c.code);
        expect(res.body.error.message).to.be.a('string').and.not.empty;
      });
    }

    it('When all of those were refused, then no balance changed and no event reached the broker', async () => {
      expect(await system.balance(ALICE)).to.equal('10000.00');
      expect(await system.balance(BOB)).to.equal('10000.00');
      // A good transfer after them: once its event is in the queue, anything published before it would be too.
      const ok = await system.post(valid).expect(202);
      await waitFor('the good event in the queue', async () => (await system.messageCount(system.ns.topology.workQueue)) >= 1);
      const messages = await system.drain(system.ns.topology.workQueue);
      expect(messages.map((m) => m.properties.correlationId)).to.deep.equal([ok.body.transferId]);
    });

    it('When a field is invalid, then details name it', async () => {
      const res = await system.post({ fromAccount: ALICE, toAccount: BOB, amount: 1.001, extra: 1 }).expect(400);
      const paths = (res.body.error.details as { path: string }[]).map((d) => d.path);
      expect(paths).to.include('amount');
      expect(JSON.stringify(res.body.error.details)).to.contain('extra');
    });
  });

  describe('a transfer that is accepted', () => {
    it('When the transfer is valid, then it answers 202 with its id, status and Location, and the money has moved', async () => {
      const before = { a: await system.balance('user-C'), b: await system.balance(BOB) };
      const res = await system.post({ fromAccount: 'user-C', toAccount: BOB, amount: 150.75, reference: 'rent' }).expect(202);
      expect(res.body).to.have.keys('transferId', 'status', 'statusUrl');
      expect(res.body.status).to.equal('accepted');
      expect(res.body.statusUrl).to.equal(`/transfers/${res.body.transferId}`);
      expect(res.headers.location).to.equal(res.body.statusUrl);
      expect(res.headers['x-request-id']).to.be.a('string');
      expect(await system.balance('user-C')).to.equal((Number(before.a) - 150.75).toFixed(2));
      expect(await system.balance(BOB)).to.equal((Number(before.b) + 150.75).toFixed(2));

      const view = await system.transfer(res.body.transferId);
      expect(view).to.include({ transferId: res.body.transferId, fromAccount: 'user-C', toAccount: BOB, amount: '150.75', currency: 'USD', reference: 'rent' });
      expect(view.status).to.equal('accepted');
      expect(view.notifications.map((n) => [n.channel, n.status, n.attempts])).to.deep.equal([
        ['email', 'pending', 0],
        ['sms', 'pending', 0],
      ]);
    });

    it('When the event is published, then it carries the ids, type and persistence the contract promises', async () => {
      const res = await system.post({ fromAccount: 'user-C', toAccount: BOB, amount: '1.00' }).expect(202);
      const seen: GetMessage[] = [];
      const message = await waitFor('the event', async () => {
        seen.push(...(await system.drain(system.ns.topology.workQueue)));
        return seen.find((m) => m.properties.correlationId === res.body.transferId);
      });
      const body = JSON.parse(message.content.toString());
      expect(message.properties.correlationId).to.equal(res.body.transferId);
      expect(message.properties.messageId).to.equal(body.eventId);
      expect(message.properties.type).to.equal('transfer.completed');
      expect(message.properties.deliveryMode).to.equal(2);
      expect(message.properties.timestamp).to.be.a('number');
      expect(body.transfer).to.include({ id: res.body.transferId, amountMinor: 100, currency: 'USD' });
    });

    it('When reading an account or transfer that does not exist, then it answers 404 in the same error shape', async () => {
      const a = await system.http().get('/accounts/nobody').set(await system.auth(ALICE)).expect(404);
      expect(a.body.error.code).to.equal('account_not_found');
      const t = await system.http().get('/transfers/00000000-0000-4000-8000-000000000000').set(await system.auth(ALICE)).expect(404);
      expect(t.body.error.code).to.equal('transfer_not_found');
      const r = await system.http().get('/no/such/route').expect(404);
      expect(r.body.error.code).to.equal('not_found');
    });

    it('When a path is not valid percent-encoding, then it answers 400 invalid_path, not 500', async () => {
      for (const path of ['/transfers/%E0', '/accounts/%E0%A4']) {
        const res = await system.http().get(path).set(await system.auth(ALICE)).expect(400);
        expect(res.body.error).to.deep.equal({ code: 'invalid_path', message: 'the path is not valid percent-encoded UTF-8' });
      }
    });
  });

  describe('money is exact', () => {
    before(async () => {
      await system.seedAccounts([
        { id: 'rich', ownerName: 'Rich', email: 'rich@example.com', phone: '+15550199999', currency: 'USD', balanceMinor: 1_000_000_000 },
        { id: 'sink', ownerName: 'Sink', email: 'sink@example.com', phone: '+15550199998', currency: 'USD', balanceMinor: 0 },
      ]);
    });

    it('When amounts like 0.1, 0.2, 150.75 and 1000000.01 are moved, then balances are exact to the cent', async () => {
      const amounts: (number | string)[] = [0.1, 0.2, 150.75, 1000000.01, '0.1', '0.20', '150.75', '1000000.01'];
      for (const amount of amounts) {
        const res = await system.post({ fromAccount: 'rich', toAccount: 'sink', amount }).expect(202);
        const view = await system.transfer(res.body.transferId);
        expect(view.amount).to.equal(Number(amount).toFixed(2));
      }
      // 2 × (0.10 + 0.20 + 150.75 + 1,000,000.01) = 2,000,302.12
      expect(await system.balance('sink')).to.equal('2000302.12');
      expect(await system.balance('rich')).to.equal('7999697.88');
    });
  });

  describe('idempotency', () => {
    const body = { fromAccount: ALICE, toAccount: 'user-C', amount: '12.34' };

    it('When a key is replayed with the same body, then the first answer comes back and money moves once', async () => {
      const before = await system.balance(ALICE);
      const first = await system.post(body, { 'Idempotency-Key': 'replay-1' }).expect(202);
      const second = await system.post({ ...body, amount: 12.34 }, { 'Idempotency-Key': 'replay-1' }).expect(202);
      expect(second.body).to.deep.equal(first.body);
      expect(second.headers.location).to.equal(first.headers.location);
      expect(second.headers['idempotent-replayed']).to.equal('true');
      expect(first.headers['idempotent-replayed']).to.equal(undefined);
      expect(await system.balance(ALICE)).to.equal((Number(before) - 12.34).toFixed(2));
    });

    it('When a key is replayed naming the currency the first request left to the account, then it is the same request', async () => {
      const before = await system.balance(ALICE);
      const first = await system.post(body, { 'Idempotency-Key': 'currency-1' }).expect(202);
      const named = await system.post({ ...body, currency: 'USD' }, { 'Idempotency-Key': 'currency-1' }).expect(202);
      expect(named.body.transferId).to.equal(first.body.transferId);
      expect(named.headers['idempotent-replayed']).to.equal('true');
      // And the other way round.
      const second = await system.post({ ...body, currency: 'USD' }, { 'Idempotency-Key': 'currency-2' }).expect(202);
      const omitted = await system.post(body, { 'Idempotency-Key': 'currency-2' }).expect(202);
      expect(omitted.body.transferId).to.equal(second.body.transferId);
      expect(await system.balance(ALICE)).to.equal((Number(before) - 2 * 12.34).toFixed(2));
      // A currency the account does not hold is another request, not a replay.
      const other = await system.post({ ...body, currency: 'EUR' }, { 'Idempotency-Key': 'currency-1' }).expect(422);
      expect(other.body.error.code).to.equal('idempotency_key_reused');
    });

    it('When a key is reused with another body, then it answers 422 and moves nothing', async () => {
      await system.post(body, { 'Idempotency-Key': 'replay-2' }).expect(202);
      const before = await system.balance(ALICE);
      const res = await system.post({ ...body, amount: '99.00' }, { 'Idempotency-Key': 'replay-2' }).expect(422);
      expect(res.body.error.code).to.equal('idempotency_key_reused');
      expect(await system.balance(ALICE)).to.equal(before);
    });

    it('When the same key arrives 25 times at once, then exactly one transfer is made and every success names it', async () => {
      const before = await system.balance(ALICE);
      const responses = await Promise.all(Array.from({ length: 25 }, () => system.post(body, { 'Idempotency-Key': 'concurrent-1' })));
      const accepted = responses.filter((r) => r.status === 202);
      // 409 is the answer while the first is still running; with an embedded store it never is.
      for (const r of responses) expect([202, 409], JSON.stringify(r.body)).to.include(r.status);
      expect(new Set(accepted.map((r) => r.body.transferId)).size).to.equal(1);
      expect(accepted.filter((r) => r.headers['idempotent-replayed'] !== 'true')).to.have.length(1);
      expect(await system.balance(ALICE)).to.equal((Number(before) - 12.34).toFixed(2));
    });
  });

  describe('concurrency', () => {
    before(async () => {
      await system.seedAccounts([
        { id: 'tight', ownerName: 'Tight', email: 't@example.com', phone: '+15550190000', currency: 'USD', balanceMinor: 10_000 },
        { id: 'payee', ownerName: 'Payee', email: 'p@example.com', phone: '+15550190001', currency: 'USD', balanceMinor: 0 },
      ]);
    });

    it('When 50 transfers of 10.00 race for a balance of 100.00, then exactly 10 succeed and nothing is overdrawn', async () => {
      const responses = await Promise.all(
        Array.from({ length: 50 }, () => system.post({ fromAccount: 'tight', toAccount: 'payee', amount: '10.00' })),
      );
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 202)).to.have.length(10);
      expect(statuses.filter((s) => s === 422)).to.have.length(40);
      for (const r of responses.filter((x) => x.status === 422)) expect(r.body.error.code).to.equal('insufficient_funds');
      expect(await system.balance('tight')).to.equal('0.00');
      expect(await system.balance('payee')).to.equal('100.00');
    });
  });

  describe('when the database is unavailable', () => {
    it('When the database is taken away, then POST answers 503, nothing moves, and it works again once the database is back', async () => {
      const before = await system.balance(ALICE);
      await system.ns.blockDatabase();
      try {
        const res = await system.post({ fromAccount: ALICE, toAccount: BOB, amount: 5 }).expect(503);
        expect(res.body.error.code).to.equal('database_unavailable');
        expect(res.headers['retry-after']).to.equal('5');
        if (store === 'postgres') {
          // Nothing can be read either; with SQLite a write lock leaves reads working.
          const ready = await system.http().get('/ready').expect(503);
          expect(ready.body.checks).to.deep.equal({ database: 'down', broker: 'up' });
        }
      } finally {
        await system.ns.unblockDatabase();
      }
      expect(await system.balance(ALICE)).to.equal(before);
      await system.post({ fromAccount: ALICE, toAccount: BOB, amount: 5 }).expect(202);
      expect(await system.balance(ALICE)).to.equal((Number(before) - 5).toFixed(2));
    });
  });

  if (store === 'postgres') {
    describe('idempotency across replicas', () => {
      it('When another replica is still processing the same Idempotency-Key, then the replay answers 409 and moves nothing', async () => {
        const before = await system.balance(ALICE);
        const other = new pg.Client({ connectionString: system.ns.databaseUrl });
        await other.connect();
        try {
          await other.query('BEGIN');
          // Idempotency keys are scoped to the API key that sent them (user-A's demo key here).
          const keyId = parseApiKey(DEMO_API_KEYS[ALICE]!)!.id;
          await other.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [idempotencyLockName(`${keyId}:in-flight-1`)]);
          const res = await system.post({ fromAccount: ALICE, toAccount: BOB, amount: 3 }, { 'Idempotency-Key': 'in-flight-1' }).expect(409);
          expect(res.body.error.code).to.equal('idempotency_in_flight');
          expect(await system.balance(ALICE)).to.equal(before);
          await other.query('COMMIT');
        } finally {
          await other.end();
        }
        const first = await system.post({ fromAccount: ALICE, toAccount: BOB, amount: 3 }, { 'Idempotency-Key': 'in-flight-1' }).expect(202);
        const again = await system.post({ fromAccount: ALICE, toAccount: BOB, amount: 3 }, { 'Idempotency-Key': 'in-flight-1' }).expect(202);
        expect(again.body.transferId).to.equal(first.body.transferId);
      });

      it('When another session holds the account row past lock_timeout, then POST answers 503 and nothing moves', async function () {
        this.timeout(20_000);
        const before = await system.balance(ALICE);
        const other = new pg.Client({ connectionString: system.ns.databaseUrl });
        await other.connect();
        try {
          await other.query('BEGIN');
          await other.query('SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE', [ALICE]);
          const res = await system.post({ fromAccount: ALICE, toAccount: BOB, amount: 4 }).expect(503);
          expect(res.body.error.code).to.equal('database_unavailable');
          await other.query('ROLLBACK');
        } finally {
          await other.end();
        }
        expect(await system.balance(ALICE)).to.equal(before);
      });
    });
  }
});
