import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from './errors.js';
import type { Store } from '../store/store.js';

/**
 * API keys look like atk_<id>_<secret>. The id is public (it names the key in
 * `keys list`, in logs and in rate limiting); the secret is 256 random bits and
 * only its SHA-256 is stored. A slow password hash buys nothing for a secret
 * that random, and SHA-256 keeps authentication off the hot path's budget.
 */
export const API_KEY = /^atk_([a-z0-9]{10})_([A-Za-z0-9_-]{20,128})$/;

export interface StoredApiKey {
  id: string;
  secretHash: string;
  accounts: string[];
  label: string | null;
  createdAt: string;
  revokedAt: string | null;
}

/** Who is calling: a key and the accounts it may act for, or everyone when AUTH_DISABLED. */
export type Principal = { keyId: string; accounts: ReadonlySet<string> } | { keyId: null; accounts: 'all' };

export const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

export function parseApiKey(token: string): { id: string; secret: string } | null {
  const match = API_KEY.exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : null;
}

function secretMatches(secret: string, storedHash: string): boolean {
  const given = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return given.length === stored.length && timingSafeEqual(given, stored);
}

/** The principal for a bearer token, or null for a key that is malformed, unknown, revoked or wrong. */
export async function authenticate(store: Store, token: string): Promise<Principal | null> {
  const parsed = parseApiKey(token);
  if (!parsed) return null;
  const key = await store.findApiKey(parsed.id);
  if (!key || key.revokedAt !== null || !secretMatches(parsed.secret, key.secretHash)) return null;
  return { keyId: key.id, accounts: new Set(key.accounts) };
}

export function mayActFor(principal: Principal, accountId: string): boolean {
  return principal.accounts === 'all' || principal.accounts.has(accountId);
}

/**
 * Creates a key bound to existing accounts and returns the token; the token is
 * shown this once and never stored. `fixed` gives the demo keys their published value.
 */
export async function issueApiKey(
  store: Store,
  accounts: readonly string[],
  options: { label?: string | null; fixed?: string } = {},
): Promise<{ id: string; token: string; created: boolean }> {
  if (accounts.length === 0) throw new AppError('invalid_body', 'a key must be bound to at least one account');
  for (const account of accounts) {
    if (!(await store.findAccount(account))) throw new AppError('account_not_found', `account ${account} does not exist`);
  }
  const token = options.fixed ?? `atk_${randomBytes(8).toString('hex').slice(0, 10)}_${randomBytes(32).toString('base64url')}`;
  const parsed = parseApiKey(token);
  if (!parsed) throw new Error('generated an API key that does not parse');
  const created = await store.insertApiKey({
    id: parsed.id,
    secretHash: hashSecret(parsed.secret),
    accounts: [...new Set(accounts)],
    label: options.label ?? null,
    createdAt: new Date().toISOString(),
    revokedAt: null,
  });
  return { id: parsed.id, token, created };
}
