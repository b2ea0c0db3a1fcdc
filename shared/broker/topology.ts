import type { Channel } from 'amqplib';
import type { Config } from '../runtime/config.js';
import { logger } from '../runtime/logger.js';

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
  /**
   * Where the queue's replicas and leader go. RabbitMQ reads these only when it
   * creates the queue, but still refuses a redeclare that differs, so a queue
   * created by an earlier version (or with another QUORUM_REPLICAS) keeps its own:
   * assertTopology accepts it and warns.
   */
  placement: Record<string, unknown>;
  bindings: { exchange: string; pattern: string }[];
  role: string;
}

export const TRANSFER_EVENTS_BINDING = 'transfer.#';

/** RabbitMQ 4 gives quorum queues a delivery limit of 20 and drops what exceeds it; parked means kept. */
export const DEAD_QUEUE_DELIVERY_LIMIT = 1_000_000;

export interface TopologyOptions {
  retryDelaysMs: readonly number[];
  deliveryLimit: number;
  /** x-quorum-initial-group-size of every queue; 3 unless given. */
  quorumReplicas?: number;
}

/**
 * Survives a node: an explicit replica count (RabbitMQ caps it at the cluster's
 * size, so one dev node is fine), and leaders spread over the nodes instead of all
 * on the node the declaring process happens to be connected to (RabbitMQ's default,
 * client-local). RabbitMQ 3.10 and 4.x both take `balanced` (3.10 also the aliases
 * random and least-leaders; anything else is refused with PRECONDITION_FAILED).
 */
function placement(replicas: number): Record<string, unknown> {
  return { 'x-quorum-initial-group-size': replicas, 'x-queue-leader-locator': 'balanced' };
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
  const placed = placement(options.quorumReplicas ?? 3);
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
        placement: placed,
        bindings: [{ exchange: deadExchange, pattern: '#' }],
        role: 'parked messages; the worker adds an `x-failure-reason` header saying why',
      },
      {
        name: workQueue,
        // A message that kills its consumer again and again is parked instead of looping forever.
        arguments: { ...safeDeadLettering(deadExchange), 'x-delivery-limit': options.deliveryLimit },
        placement: placed,
        bindings: [{ exchange, pattern: TRANSFER_EVENTS_BINDING }],
        role: 'the workers consume it; what it gives up on dead-letters to the dead-letter exchange',
      },
      // Nobody consumes a delay queue: a message waits out the TTL, then dead-letters
      // through the default exchange straight back into the work queue.
      ...delayQueues.map((q) => ({
        name: q.name,
        arguments: { ...safeDeadLettering('', workQueue), 'x-message-ttl': q.delayMs },
        placement: placed,
        bindings: [{ exchange: retryExchange, pattern: q.tier }],
        role: `backoff of ${q.tier}: no consumer; expired messages dead-letter back into the work queue`,
      })),
    ],
  };
}

export function topologyOf(config: Pick<Config, 'amqpPrefix' | 'retry' | 'deliveryLimit' | 'quorumReplicas'>): Topology {
  return topology(config.amqpPrefix, { retryDelaysMs: config.retry.delaysMs, deliveryLimit: config.deliveryLimit, quorumReplicas: config.quorumReplicas });
}

interface ChannelOpener {
  createChannel(): Promise<Channel>;
}

/**
 * Declares every exchange, queue and binding of the topology, on a channel of its
 * own: a refused declaration closes the channel it ran on, and must not take a
 * caller's channel (or, through it, the connection) down with it.
 */
export async function assertTopology(connection: ChannelOpener, t: Topology): Promise<void> {
  let channel = await openChannel(connection);
  try {
    for (const x of t.exchanges) await channel.assertExchange(x.name, x.type, { durable: true });
    for (const q of t.queues) {
      let args = { ...q.arguments, ...q.placement };
      const kept: PlacementDifference[] = [];
      // Each refusal names one argument; there are at most as many as placement keys.
      for (;;) {
        try {
          await channel.assertQueue(q.name, { durable: true, arguments: args });
          break;
        } catch (error) {
          const difference = placementDifference(error, q);
          if (!difference || kept.length >= Object.keys(q.placement).length) throw error;
          kept.push(difference);
          const { [difference.key]: _wanted, ...rest } = args;
          args = difference.current === undefined ? rest : { ...rest, [difference.key]: difference.current };
          channel = await openChannel(connection);
        }
      }
      if (kept.length > 0) warnKeptPlacement(q.name, kept);
      for (const b of q.bindings) await channel.bindQueue(q.name, b.exchange, b.pattern);
    }
  } finally {
    await channel.close().catch(() => undefined);
  }
}

async function openChannel(connection: ChannelOpener): Promise<Channel> {
  const channel = await connection.createChannel();
  // A refused declaration also arrives as an 'error' event; the failed call reports it.
  channel.on('error', () => undefined);
  return channel;
}

interface PlacementDifference {
  key: string;
  wanted: unknown;
  /** What the existing queue has; undefined: the queue was created without it. */
  current: unknown;
}

/**
 * Reads RabbitMQ's PRECONDITION_FAILED for a placement argument, e.g. "inequivalent
 * arg 'x-quorum-initial-group-size' for queue 'q' in vhost '/': received the value
 * '3' of type 'byte' but current is none" (or "... current is '5'", or "... current
 * is the value 'client-local' of type 'longstr'"). Null for anything else, which
 * stays an error: those arguments decide how messages are treated.
 */
function placementDifference(error: unknown, q: QueueDeclaration): PlacementDifference | null {
  const message = error instanceof Error ? error.message : '';
  const found = /inequivalent arg '([^']+)' for .* but current is (none|'(.*)'|the value '(.*)' of type '[^']+')"?$/.exec(message);
  if (!found || !(found[1]! in q.placement)) return null;
  const key = found[1]!;
  const wanted = q.placement[key];
  const text = found[3] ?? found[4];
  if (text === undefined) return { key, wanted, current: undefined };
  const current = typeof wanted === 'number' && /^\d+$/.test(text) ? Number(text) : text;
  return { key, wanted, current };
}

/** Once per queue and process: reconnects declare again, and the answer does not change. */
const warnedAbout = new Set<string>();

function warnKeptPlacement(queue: string, kept: PlacementDifference[]): void {
  if (warnedAbout.has(queue)) return;
  warnedAbout.add(queue);
  const show = (v: unknown) => (v === undefined ? 'none' : String(v));
  logger.warn(
    `queue ${queue} keeps the placement it was created with (${kept.map((d) => `${d.key}: ${show(d.current)}, this version asks ${show(d.wanted)}`).join('; ')}). ` +
      'RabbitMQ applies these only when it creates a queue, so the queue works as before. To spread the leaders now: rabbitmq-queues rebalance quorum; ' +
      'to add a replica on a node: rabbitmq-queues grow <node> all; or, once the queue is empty and no process runs, delete it and the next start creates it with the new arguments.',
    { queue, kept: Object.fromEntries(kept.map((d) => [d.key, show(d.current)])), wanted: Object.fromEntries(kept.map((d) => [d.key, d.wanted])) },
  );
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
      const args = Object.entries({ ...q.arguments, ...q.placement })
        .filter(([k]) => k !== 'x-queue-type')
        .map(([k, v]) => `\`${k}\`: ${typeof v === 'string' ? `\`${v || '""'}\`` : v}`)
        .join(', ');
      const bound = q.bindings.map((b) => `\`${b.exchange}\` with \`${b.pattern}\``).join(', ');
      return `| \`${q.name}\` | durable ${String(q.arguments['x-queue-type'])} queue, bound to ${bound}; ${args} | ${q.role} |`;
    }),
  ];
  return ['| Name | Kind and arguments | Role |', '| --- | --- | --- |', ...rows].join('\n');
}
