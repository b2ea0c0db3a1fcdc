import { parseArgs } from 'node:util';
import { issueApiKey } from '../shared/domain/api-keys.js';
import { toolCommand } from '../shared/runtime/cli-usage.js';
import { ConfigError, loadConfig } from '../shared/runtime/config.js';
import { AppError } from '../shared/domain/errors.js';
import { openStore } from '../shared/store/index.js';

/** Names the command the way this process was started, so it can be pasted where it runs (checkout or image). */
const usage = (cmd = toolCommand()) => `usage: ${cmd} create --accounts <id>[,<id>...] [--label <text>]
       ${cmd} list [--json]
       ${cmd} revoke <key id>

create  prints a new API key once (only its hash is stored), bound to the given accounts
list    shows every key's id, accounts, label, creation and revocation; never a secret
revoke  refuses the key from now on`;

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { accounts: { type: 'string' }, label: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
  });
  const [command, arg] = positionals;
  const known = command === 'create' || command === 'list' || command === 'revoke';
  if (values.help || !known || (command === 'revoke' && !arg) || (command === 'create' && !values.accounts)) {
    process.stdout.write(`${usage()}\n`);
    return values.help ? 0 : 2;
  }

  const store = await openStore(loadConfig());
  try {
    if (command === 'create') {
      const accounts = values.accounts!.split(',').map((a) => a.trim()).filter(Boolean);
      const key = await issueApiKey(store, accounts, { label: values.label ?? null });
      if (!key.created) throw new Error(`a key with id ${key.id} exists already; run create again`);
      process.stdout.write(`${key.token}\n`);
      process.stderr.write(`key ${key.id} created for ${accounts.join(', ')}; it is shown this once, store it now\n`);
    } else if (command === 'list') {
      const keys = await store.listApiKeys();
      if (values.json) {
        for (const { secretHash: _, ...k } of keys) process.stdout.write(`${JSON.stringify(k)}\n`);
      } else {
        process.stdout.write(`${keys.length} key(s)\n`);
        for (const k of keys) {
          const state = k.revokedAt ? `revoked ${k.revokedAt}` : 'active';
          process.stdout.write(`${k.id}  ${state.padEnd(33)}  ${k.accounts.join(',').padEnd(24)}  ${k.createdAt}  ${k.label ?? ''}\n`);
        }
      }
    } else {
      if (!(await store.revokeApiKey(arg!))) {
        process.stderr.write(`no active key ${arg}\n`);
        return 1;
      }
      process.stdout.write(`key ${arg} revoked\n`);
    }
    return 0;
  } finally {
    await store.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    const known = error instanceof ConfigError || error instanceof AppError;
    process.stderr.write(`${known ? error.message : `keys failed: ${error.message}`}\n`);
    process.exit(1);
  },
);
