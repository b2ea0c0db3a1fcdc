import { parseArgs } from 'node:util';
import { connectToFirst } from '../shared/broker/connection.js';
import { topologyOf } from '../shared/broker/topology.js';
import { toolCommand } from '../shared/runtime/cli-usage.js';
import { ConfigError, loadConfig } from '../shared/runtime/config.js';
import { listDeadLetters, replayDeadLetters, type ParkedMessage } from './dead-letter-queue.js';

/** Names the command the way this process was started, so it can be pasted where it runs (checkout or image). */
const usage = (cmd = toolCommand()) => `usage: ${cmd} list [--limit N] [--json]
       ${cmd} replay [--limit N]

list    shows what is parked in the dead-letter queue and why (default limit 50)
replay  sends parked messages back to the work queue for a new round of attempts
        (all of them unless --limit); notifications already sent are not resent`;

function table(rows: ParkedMessage[]): string {
  const header = ['transfer', 'channel', 'attempt', 'failed at', 'reason'];
  const lines = rows.map((r) => [r.transferId ?? '-', r.channel, String(r.attempt ?? '-'), r.failedAt ?? '-', r.reason]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (i === 4 ? 0 : l[i]!.length))));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 4 ? c : c.padEnd(widths[i]!))).join('  ');
  return [fmt(header), ...lines.map(fmt)].join('\n');
}

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { limit: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } },
  });
  const command = positionals[0];
  if (values.help || (command !== 'list' && command !== 'replay')) {
    process.stdout.write(`${usage()}\n`);
    return values.help ? 0 : 2;
  }
  const limit = values.limit === undefined ? (command === 'list' ? 50 : Number.MAX_SAFE_INTEGER) : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) {
    process.stderr.write('--limit must be a positive integer\n');
    return 2;
  }

  const config = loadConfig();
  const t = topologyOf(config);
  const connection = await connectToFirst(config.amqpNodes, `async-transfers-dlq ${command}`);
  connection.on('error', (err: Error) => process.stderr.write(`AMQP connection error: ${err.message}\n`));
  try {
    const channel = await connection.createConfirmChannel();
    channel.on('error', (err: Error) => process.stderr.write(`AMQP channel error: ${err.message}\n`));
    if (command === 'list') {
      const { total, shown } = await listDeadLetters(channel, t, limit);
      if (values.json) {
        for (const row of shown) process.stdout.write(`${JSON.stringify(row)}\n`);
      } else {
        process.stdout.write(`${t.deadQueue}: ${total} parked${total > shown.length ? `, showing ${shown.length}` : ''}\n`);
        if (shown.length > 0) process.stdout.write(`${table(shown)}\n`);
      }
    } else {
      const replayed = await replayDeadLetters(connection, channel, t, limit);
      process.stdout.write(`replayed ${replayed.length} message(s) from ${t.deadQueue} to ${t.workQueue}\n`);
      if (values.json) for (const row of replayed) process.stdout.write(`${JSON.stringify(row)}\n`);
    }
    await channel.close();
    return 0;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`${error instanceof ConfigError ? error.message : `dlq failed: ${error.message}`}\n`);
    process.exit(1);
  },
);
