import path from 'node:path';
import { npmScript } from './config.js';

/** What decides the command that runs a CLI tool again: this process's own start-up. */
export interface Invocation {
  /** process.argv: [node, the script, ...args] */
  argv: readonly string[];
  /** process.execArgv: node's own flags, e.g. ['--import', 'tsx'] from source */
  execArgv: readonly string[];
  cwd: string;
  npm: { event: string; script: string } | null;
}

export function currentInvocation(): Invocation {
  return { argv: process.argv, execArgv: process.execArgv, cwd: process.cwd(), npm: npmScript() };
}

const shellWord = (word: string) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);

/**
 * The command that runs this tool, as it works where it runs: `npm run keys --` in a
 * checkout when npm started it (tsx is there), `node dist/api/keys-cli.js` in the
 * Docker image (no tsx, no dev dependencies), `node --import tsx api/keys-cli.ts` from
 * source. Under npm, only when npm's script is the one that runs this file: a test
 * run by `npm test` that spawns the tool gets the node form.
 */
export function toolCommand(inv: Invocation = currentInvocation()): string {
  const script = path.relative(inv.cwd, inv.argv[1] ?? '') || (inv.argv[1] ?? '');
  const words = inv.npm?.script.split(/\s+/).map((w) => path.normalize(w.replace(/^['"]|['"]$/g, '')));
  if (inv.npm && words?.includes(path.normalize(script))) return `npm run ${inv.npm.event} --`;
  return ['node', ...inv.execArgv, script].map(shellWord).join(' ');
}
