import { readFileSync, writeFileSync } from 'node:fs';
import { topologyOf, topologyTable } from '../shared/broker/topology.js';
import { loadConfig } from '../shared/runtime/config.js';

/**
 * npm run docs:topology: rewrites the README's broker table from the topology's
 * declarations (default settings), so the table cannot drift from the code.
 * A unit test fails when the README's copy is stale.
 */
export const README = new URL('../README.md', import.meta.url);
const BEGIN = '<!-- topology:begin (npm run docs:topology writes this table) -->';
const END = '<!-- topology:end -->';

/** The README with its topology table replaced by the one the code declares. */
export function withCurrentTable(readme: string): string {
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${BEGIN} … ${END} section`);
  const table = topologyTable(topologyOf(loadConfig({})));
  return `${readme.slice(0, start + BEGIN.length)}\n${table}\n${readme.slice(end)}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const before = readFileSync(README, 'utf8');
  const after = withCurrentTable(before);
  writeFileSync(README, after);
  process.stdout.write(after === before ? 'README.md: the topology table was current\n' : 'README.md: topology table rewritten\n');
}
