import type { Channel } from 'amqplib';
import type { Config } from '../runtime/config.js';

/**
 * The broker topology, declared once as data: every exchange and queue (with
 * its arguments) and every binding, named from AMQP_PREFIX so that deployments
 * and test runs share one broker without touching each other. Both processes
 * assert it at every (re)connect (asserting is idempotent while the arguments
 * match); the test cleanup, the benchmark's teardown and the README's table are
 * all read from the same declarations.
 */
export interface Topology {
  /** Durable topic exchange the API publishes transfer events to. */
  exchange: string;
  /** Quorum queue the workers consume. */
  workQueue: string;
  /** Where the work queue dead-letters, and where the worker parks what it gives up on. */
  deadExchange: string;
  deadQueue: string;
  /** Direct exchange routing a failed send to the delay queue of its tier. */
  retryExchange: string;
  /** One queue per delay, so a long delay never holds up a short one. */
  delayQueues: DelayQueue[];
  /** Everything above as declarations, in the order they are asserted. */
  exchanges: ExchangeDeclaration[];
  queues: QueueDeclaration[];
}

export interface DelayQueue {
  delayMs: number;
  /** Routing key on the retry exchange, e.g. "5s". */
  tier: string;
  name: string;
}

export interface ExchangeDeclaration {
  name: string;
  type: 'topic' | 'direct';
  /** What it is for, in a few words (the README table's last column). */
  role: string;
}

export interface QueueDeclaration {
  name: string;
  arguments: Record<string, unknown>;
  bindings: { exchange: string; pattern: string }[];
  role: string;
}

export const TRANSFER_EVENTS_BINDING = 'transfer.#';

/** RabbitMQ 4 gives quorum queues a delivery limit of 20 and drops what exceeds it; parked means kept. */
export const DEAD_QUEUE_DELIVERY_LIMIT = 1_000_000;

export interface TopologyOptions {
  retryDelaysMs: readonly number[];
  deliveryLimit: number;
}

/** 1000 -> "1s", 120000 -> "2m", 1500 -> "1500ms": names that read well in the management UI. */
export function tierName(delayMs: number): string {
  if (delayMs % 3_600_000 === 0) return `${delayMs / 3_600_000}h`;
  if (delayMs % 60_000 === 0) return `${delayMs / 60_000}m`;
  if (delayMs % 1000 === 0) return `${delayMs / 1000}s`;
  return `${delayMs}ms`;
}

/** Quorum queue arguments for a queue whose dead letters must never be lost on the way. */
function safeDeadLettering(exchange: string, routingKey?: string): Record<string, unknown> {
  return {
    'x-queue-type': 'quorum',
    'x-dead-letter-exchange': exchange,
    ...(routingKey === undefined ? {} : { 'x-dead-letter-routing-key': routingKey }),
    // The broker keeps a dead-lettered message until its target queue has confirmed it;
    // RabbitMQ requires reject-publish overflow for that.
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
  };
}

export function topology(prefix: string, options: TopologyOptions): Topology {
  const exchange = `${prefix}.transfers`;
  const deadExchange = `${prefix}.dead`;
  const retryExchange = `${prefix}.retry`;
  const workQueue = `${prefix}.notifications`;
  const deadQueue = `${prefix}.notifications.dead`;
  const delayQueues = [...new Set(options.retryDelaysMs)].map((delayMs) => {
    const tier = tierName(delayMs);
    return { delayMs, tier, name: `${workQueue}.retry.${tier}` };
  });
  return {
    exchange,
    workQueue,
    deadExchange,
    deadQueue,
    retryExchange,
    delayQueues,
    exchanges: [
      { name: exchange, type: 'topic', role: 'the API publishes `transfer.completed` events here' },
      { name: deadExchange, type: 'topic', role: 'dead-letter exchange' },
      { name: retryExchange, type: 'direct', role: 'routes a failed send to the delay queue of its tier' },
    ],
    queues: [
      {
        name: deadQueue,
        arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': DEAD_QUEUE_DELIVERY_LIMIT },
        bindings: [{ exchange: deadExchange, pattern: '#' }],
        role: 'parked messages; the worker adds an `x-failure-reason` header saying why',
      },
      {
        name: workQueue,
        // A message that kills its consumer again and again is parked instead of looping forever.
        arguments: { ...safeDeadLettering(deadExchange), 'x-delivery-limit': options.deliveryLimit },
        bindings: [{ exchange, pattern: TRANSFER_EVENTS_BINDING }],
        role: 'the workers consume it; what it gives up on dead-letters to the dead-letter exchange',
      },
      // Nobody consumes a delay queue: a message waits out the TTL, then dead-letters
      // through the default exchange straight back into the work queue.
      ...delayQueues.map((q) => ({
        name: q.name,
        arguments: { ...safeDeadLettering('', workQueue), 'x-message-ttl': q.delayMs },
        bindings: [{ exchange: retryExchange, pattern: q.tier }],
        role: `backoff of ${q.tier}: no consumer; expired messages dead-letter back into the work queue`,
      })),
    ],
  };
}

export function topologyOf(config: Pick<Config, 'amqpPrefix' | 'retry' | 'deliveryLimit'>): Topology {
  return topology(config.amqpPrefix, { retryDelaysMs: config.retry.delaysMs, deliveryLimit: config.deliveryLimit });
}

/** Declares every exchange, queue and binding of the topology. */
export async function assertTopology(channel: Channel, t: Topology): Promise<void> {
  for (const x of t.exchanges) await channel.assertExchange(x.name, x.type, { durable: true });
  for (const q of t.queues) {
    await channel.assertQueue(q.name, { durable: true, arguments: q.arguments });
    for (const b of q.bindings) await channel.bindQueue(q.name, b.exchange, b.pattern);
  }
}

/** Deletes what the topology declared (test and benchmark teardown); a missing one is no error. */
export async function deleteTopology(connection: { createChannel(): Promise<Channel> }, t: Topology): Promise<void> {
  // Each delete on its own channel: a failure closes the channel it ran on.
  const attempt = async (fn: (channel: Channel) => Promise<unknown>) => {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    await fn(channel).catch(() => undefined);
    await channel.close().catch(() => undefined);
  };
  for (const q of t.queues) await attempt((c) => c.deleteQueue(q.name));
  for (const x of t.exchanges) await attempt((c) => c.deleteExchange(x.name));
}

/** The README's table of the topology, for the default prefix and settings. */
export function topologyTable(t: Topology): string {
  const rows = [
    ...t.exchanges.map((x) => `| \`${x.name}\` | durable ${x.type} exchange | ${x.role} |`),
    ...t.queues.map((q) => {
      const args = Object.entries(q.arguments)
        .filter(([k]) => k !== 'x-queue-type')
        .map(([k, v]) => `\`${k}\`: ${typeof v === 'string' ? `\`${v || '""'}\`` : v}`)
        .join(', ');
      const bound = q.bindings.map((b) => `\`${b.exchange}\` with \`${b.pattern}\``).join(', ');
      return `| \`${q.name}\` | durable ${String(q.arguments['x-queue-type'])} queue, bound to ${bound}; ${args} | ${q.role} |`;
    }),
  ];
  return ['| Name | Kind and arguments | Role |', '| --- | --- | --- |', ...rows].join('\n');
}
