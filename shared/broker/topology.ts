import type { Channel } from 'amqplib';
import type { Config } from '../runtime/config.js';

/**
 * Every exchange and queue, named from AMQP_PREFIX so that deployments and test
 * runs share one broker without touching each other. Both processes assert
 * this at every (re)connect; asserting is idempotent while the arguments match.
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
}

export interface DelayQueue {
  delayMs: number;
  /** Routing key on the retry exchange, e.g. "5s". */
  tier: string;
  name: string;
}

export const TRANSFER_EVENTS_BINDING = 'transfer.#';

/** 1000 -> "1s", 120000 -> "2m", 1500 -> "1500ms": names that read well in the management UI. */
export function tierName(delayMs: number): string {
  if (delayMs % 3_600_000 === 0) return `${delayMs / 3_600_000}h`;
  if (delayMs % 60_000 === 0) return `${delayMs / 60_000}m`;
  if (delayMs % 1000 === 0) return `${delayMs / 1000}s`;
  return `${delayMs}ms`;
}

export function topology(prefix: string, retryDelaysMs: readonly number[]): Topology {
  const workQueue = `${prefix}.notifications`;
  return {
    exchange: `${prefix}.transfers`,
    workQueue,
    deadExchange: `${prefix}.dead`,
    deadQueue: `${prefix}.notifications.dead`,
    retryExchange: `${prefix}.retry`,
    delayQueues: [...new Set(retryDelaysMs)].map((delayMs) => {
      const tier = tierName(delayMs);
      return { delayMs, tier, name: `${workQueue}.retry.${tier}` };
    }),
  };
}

export function topologyOf(config: Pick<Config, 'amqpPrefix' | 'retry'>): Topology {
  return topology(config.amqpPrefix, config.retry.delaysMs);
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

export async function assertTopology(channel: Channel, t: Topology, options: { deliveryLimit: number }): Promise<void> {
  await channel.assertExchange(t.exchange, 'topic', { durable: true });
  await channel.assertExchange(t.deadExchange, 'topic', { durable: true });
  await channel.assertExchange(t.retryExchange, 'direct', { durable: true });

  await channel.assertQueue(t.deadQueue, {
    durable: true,
    // RabbitMQ 4 gives quorum queues a delivery limit of 20 by default and drops what exceeds it;
    // listing parked messages (get, then hand back) counts as deliveries. Parked means kept.
    arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 1_000_000 },
  });
  await channel.bindQueue(t.deadQueue, t.deadExchange, '#');

  await channel.assertQueue(t.workQueue, {
    durable: true,
    arguments: {
      ...safeDeadLettering(t.deadExchange),
      // A message that kills its consumer again and again is parked instead of looping forever.
      'x-delivery-limit': options.deliveryLimit,
    },
  });
  await channel.bindQueue(t.workQueue, t.exchange, TRANSFER_EVENTS_BINDING);

  for (const q of t.delayQueues) {
    // Nobody consumes a delay queue: a message waits out the TTL, then dead-letters
    // through the default exchange straight back into the work queue.
    await channel.assertQueue(q.name, {
      durable: true,
      arguments: { ...safeDeadLettering('', t.workQueue), 'x-message-ttl': q.delayMs },
    });
    await channel.bindQueue(q.name, t.retryExchange, q.tier);
  }
}

/** For tests and teardown: what a prefix owns on the broker. */
export function topologyQueues(t: Topology): string[] {
  return [t.workQueue, t.deadQueue, ...t.delayQueues.map((q) => q.name)];
}

export function topologyExchanges(t: Topology): string[] {
  return [t.exchange, t.deadExchange, t.retryExchange];
}
