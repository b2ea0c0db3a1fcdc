import type { Account } from './ledger.js';

/** Seeded on first start (SEED_DEMO_ACCOUNTS=true) so the README's curl works on a fresh machine. */
export const DEMO_ACCOUNTS: readonly Account[] = [
  { id: 'user-A', ownerName: 'Ada Lovelace', email: 'ada@example.com', phone: '+15550100001', currency: 'USD', balanceMinor: 1_000_000 },
  { id: 'user-B', ownerName: 'Bob Kahn', email: 'bob@example.com', phone: '+15550100002', currency: 'USD', balanceMinor: 1_000_000 },
  { id: 'user-C', ownerName: 'Carol Shaw', email: 'carol@example.com', phone: '+15550100003', currency: 'USD', balanceMinor: 1_000_000 },
];

/**
 * One published key per demo account, each bound to its account only. They are
 * in the README on purpose, so they guard nothing but demo money: never seed
 * demo accounts where real money lives.
 */
export const DEMO_API_KEYS: Readonly<Record<string, string>> = {
  'user-A': 'atk_demousera0_demo-key-for-user-A-not-a-secret',
  'user-B': 'atk_demouserb0_demo-key-for-user-B-not-a-secret',
  'user-C': 'atk_demouserc0_demo-key-for-user-C-not-a-secret',
};
