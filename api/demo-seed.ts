import { issueApiKey } from '../shared/domain/api-keys.js';
import { DEMO_ACCOUNTS, DEMO_API_KEYS } from '../shared/domain/demo-accounts.js';
import type { Store } from '../shared/store/index.js';

/**
 * Creates the demo accounts and their keys if they are missing, and prints the
 * keys the first time, on stderr rather than in the logs: they are public demo
 * credentials, and the logs mask every key.
 */
export async function seedDemo(store: Store, print: (text: string) => void = (text) => process.stderr.write(text)): Promise<void> {
  await store.seedAccounts(DEMO_ACCOUNTS);
  const created: string[] = [];
  for (const [account, token] of Object.entries(DEMO_API_KEYS)) {
    const key = await issueApiKey(store, [account], { label: `demo key for ${account}`, fixed: token });
    if (key.created) created.push(`  ${account}: ${token}`);
  }
  if (created.length > 0) {
    print(
      `Demo accounts created (SEED_DEMO_ACCOUNTS=true). Their API keys, each bound to its own account:\n${created.join('\n')}\n` +
        `Use one as: curl -H 'Authorization: Bearer <key>' ...   Create your own: npm run keys -- create --accounts <id>\n`,
    );
  }
}
