import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { expect } from 'chai';
import { DEMO_ACCOUNTS } from '../shared/domain/demo-accounts.js';
import { isAppError } from '../shared/domain/errors.js';
import { SqliteStore } from '../shared/store/sqlite-store.js';

/** What only SQLite's group commit can get wrong; what every store must do is in store-contract.test.ts. */
describe('SQLite group commit', () => {
  const file = path.join(tmpdir(), `group-commit-${process.pid}-${Date.now()}.db`);
  let store: SqliteStore;
  before(async () => {
    store = new SqliteStore(file, { busyTimeoutMs: 200 });
    await store.seedAccounts(DEMO_ACCOUNTS);
  });
  after(async () => {
    await store.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
  });

  const lease = { owner: 'test', leaseMs: 60_000 };
  const transfer = (amountMinor: number) => ({ fromAccount: 'user-A', toAccount: 'user-B', amountMinor, currency: null, reference: null });
  const total = async () => {
    const balances = await Promise.all(DEMO_ACCOUNTS.map((a) => store.findAccount(a.id)));
    return balances.reduce((sum, a) => sum + a!.balanceMinor, 0);
  };

  it('When the disk fills up in the middle of a group, then every caller told it succeeded has its transfer, and every other has none', async () => {
    const before = await total();
    const payeeBefore = (await store.findAccount('user-B'))!.balanceMinor;
    // Cap the file at its current size: the group's inserts run out of pages part-way.
    const db = (store as unknown as { db: Database.Database }).db;
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages + 2}`);
    const results = await Promise.allSettled(Array.from({ length: 200 }, () => store.executeTransfer(transfer(1), null, lease)));
    db.pragma('max_page_count = 1073741823');

    const accepted = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<SqliteStore['executeTransfer']>>> => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused.length, 'the cap must bite').to.be.greaterThan(0);
    for (const r of refused) expect(isAppError(r.reason, 'database_unavailable'), String(r.reason)).to.equal(true);
    for (const r of accepted) {
      if (r.value.replayed) throw new Error('no idempotency keys here');
      expect(await store.findTransfer(r.value.transfer.id), 'an accepted transfer exists').to.not.equal(null);
    }
    expect(await total(), 'money is neither created nor lost').to.equal(before);
    expect((await store.findAccount('user-B'))!.balanceMinor).to.equal(payeeBefore + accepted.length);
  });
});
