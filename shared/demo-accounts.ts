import type { Account } from './ledger.js';

/** Seeded on first start (SEED_DEMO_ACCOUNTS=true) so the README's curl works on a fresh machine. */
export const DEMO_ACCOUNTS: readonly Account[] = [
  { id: 'user-A', ownerName: 'Ada Lovelace', email: 'ada@example.com', phone: '+15550100001', currency: 'USD', balanceMinor: 1_000_000 },
  { id: 'user-B', ownerName: 'Bob Kahn', email: 'bob@example.com', phone: '+15550100002', currency: 'USD', balanceMinor: 1_000_000 },
  { id: 'user-C', ownerName: 'Carol Shaw', email: 'carol@example.com', phone: '+15550100003', currency: 'USD', balanceMinor: 1_000_000 },
];
