import type { Channel } from 'amqplib';

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
}

export const TRANSFER_EVENTS_BINDING = 'transfer.#';

export function topology(prefix: string): Topology {
  return {
    exchange: `${prefix}.transfers`,
    workQueue: `${prefix}.notifications`,
    deadExchange: `${prefix}.dead`,
    deadQueue: `${prefix}.notifications.dead`,
  };
}

export async function assertTopology(channel: Channel, t: Topology, options: { deliveryLimit: number }): Promise<void> {
  await channel.assertExchange(t.exchange, 'topic', { durable: true });
  await channel.assertExchange(t.deadExchange, 'topic', { durable: true });
  await channel.assertQueue(t.deadQueue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await channel.bindQueue(t.deadQueue, t.deadExchange, '#');
  await channel.assertQueue(t.workQueue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-dead-letter-exchange': t.deadExchange,
      // at-least-once: the broker keeps a dead-lettered message until the dead-letter queue has confirmed it.
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
      // A message that kills its consumer again and again is parked instead of looping forever.
      'x-delivery-limit': options.deliveryLimit,
    },
  });
  await channel.bindQueue(t.workQueue, t.exchange, TRANSFER_EVENTS_BINDING);
}

/** For tests and teardown: what a prefix owns on the broker. */
export function topologyQueues(t: Topology): string[] {
  return [t.workQueue, t.deadQueue];
}

export function topologyExchanges(t: Topology): string[] {
  return [t.exchange, t.deadExchange];
}
