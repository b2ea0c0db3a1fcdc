import { expect } from 'chai';
import { requestFingerprint, transferCompletedEvent, type Transfer } from '../shared/domain/ledger.js';
import { DEMO_API_KEYS } from '../shared/domain/demo-accounts.js';
import { parseApiKey } from '../shared/domain/api-keys.js';
import { POSTGRES_MIGRATIONS } from '../shared/store/postgres-schema.js';
import { SQLITE_MIGRATIONS } from '../shared/store/sqlite-schema.js';
import { testStores, type TestNamespace } from './support/namespace.js';
import { TestSystem } from './support/system.js';

/** The schema as the release before send claims and parking left it: migration steps 1 and 2. */
const PREVIOUS_VERSION = 2;

const at = '2026-11-30T10:00:00.000Z';
const notifiedThenFailed: Transfer = { id: '01a1c000-0000-7000-8000-000000000001', fromAccount: 'user-A', toAccount: 'user-B', amountMinor: 500, currency: 'USD', reference: null, createdAt: at };
const keyedBefore: Transfer = { id: '01a1c000-0000-7000-8000-000000000003', fromAccount: 'user-A', toAccount: 'user-B', amountMinor: 250, currency: 'USD', reference: null, createdAt: at };
const neverPublished: Transfer = { id: '01a1c000-0000-7000-8000-000000000002', fromAccount: 'user-A', toAccount: 'user-B', amountMinor: 700, currency: 'USD', reference: 'left behind', createdAt: at };

/** Rows as the previous version wrote them: one transfer whose SMS was given up on (and parked), one whose event still waits in the outbox. */
function previousVersionRows(ns: TestNamespace): string[] {
  const sqlite = ns.store === 'sqlite';
  const migrations = (sqlite ? SQLITE_MIGRATIONS : POSTGRES_MIGRATIONS).slice(0, PREVIOUS_VERSION);
  const event = transferCompletedEvent(neverPublished);
  const q = (v: string | null) => (v === null ? 'NULL' : `'${v.replace(/'/g, "''")}'`);
  const transferRow = (t: Transfer) =>
    `INSERT INTO transfers (id, from_account, to_account, amount_minor, currency, reference, created_at) VALUES (${q(t.id)}, ${q(t.fromAccount)}, ${q(t.toAccount)}, ${t.amountMinor}, ${q(t.currency)}, ${q(t.reference)}, ${q(t.createdAt)})`;
  return [
    sqlite
      ? 'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL) STRICT'
      : 'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())',
    ...migrations,
    ...migrations.map((_, i) => `INSERT INTO schema_migrations (version, applied_at) VALUES (${i + 1}, ${q(at)})`),
    `INSERT INTO accounts (id, owner_name, email, phone, currency, balance_minor, created_at) VALUES
       ('user-A', 'Ada Lovelace', 'ada@example.com', '+15550100001', 'USD', 998550, ${q(at)}),
       ('user-B', 'Bob Kahn', 'bob@example.com', '+15550100002', 'USD', 1001450, ${q(at)})`,
    transferRow(notifiedThenFailed),
    transferRow(neverPublished),
    // Sent with an Idempotency-Key and no currency: the previous release fingerprinted the currency as null.
    `INSERT INTO transfers (id, from_account, to_account, amount_minor, currency, reference, idempotency_key, request_hash, created_at) VALUES
       (${q(keyedBefore.id)}, 'user-A', 'user-B', 250, 'USD', NULL, ${q(`${parseApiKey(DEMO_API_KEYS['user-A']!)!.id}:before-upgrade`)},
        ${q(requestFingerprint({ fromAccount: 'user-A', toAccount: 'user-B', amountMinor: 250, currency: null, reference: null }, null))}, ${q(at)})`,
    `INSERT INTO notifications (transfer_id, channel, status, attempts, last_error, updated_at) VALUES
       (${q(keyedBefore.id)}, 'email', 'sent', 1, NULL, ${q(at)}), (${q(keyedBefore.id)}, 'sms', 'sent', 1, NULL, ${q(at)})`,
    `INSERT INTO notifications (transfer_id, channel, status, attempts, last_error, updated_at) VALUES
       (${q(notifiedThenFailed.id)}, 'email', 'sent', 1, NULL, ${q(at)}),
       (${q(notifiedThenFailed.id)}, 'sms', 'failed', 5, 'SMS gateway answered 503', ${q(at)})`,
    `INSERT INTO outbox (id, transfer_id, type, payload, created_at, lease_owner, lease_until) VALUES
       (${q(event.eventId)}, ${q(neverPublished.id)}, ${q(event.type)}, ${q(JSON.stringify(event))}, ${q(at)}, NULL, ${sqlite ? 0 : "'-infinity'"})`,
  ];
}

for (const store of testStores()) describe(`[${store}] upgrading a database the previous release left`, function () {
  this.timeout(60_000);
  let system: TestSystem | undefined;
  after(async () => system?.stop());

  it('When the new version starts on tables of the previous one, then it migrates them in place: old failures still show failed, old work still gets done, new work flows', async () => {
    system = await TestSystem.start({ db: store, worker: true, existing: (ns) => ns.execSql(previousVersionRows(ns)) });

    // The previous release parked a channel right after recording it failed: it counts as parked.
    const old = await system.transfer(notifiedThenFailed.id);
    expect(old.status).to.equal('notification_failed');
    expect(old.notifications.map((n) => [n.channel, n.status, n.attempts])).to.deep.equal([
      ['email', 'sent', 1],
      ['sms', 'failed', 5],
    ]);
    // An event the previous release committed and never published goes out now.
    const left = await system.waitNotified(neverPublished.id);
    expect(left.reference).to.equal('left behind');
    // A key the previous release stored still answers its replays, with or without the currency named.
    for (const currency of [{}, { currency: 'USD' }]) {
      const replay = await system.post({ fromAccount: 'user-A', toAccount: 'user-B', amount: '2.50', ...currency }, { 'Idempotency-Key': 'before-upgrade' }).expect(202);
      expect(replay.body.transferId).to.equal(keyedBefore.id);
    }
    // And the new version's own work: claims and parking on the migrated table.
    const id = (await system.post({ fromAccount: 'user-A', toAccount: 'user-B', amount: '1.00' }).expect(202)).body.transferId as string;
    await system.waitNotified(id);
    expect(await system.balance('user-A')).to.equal('9984.50');
  });
});
