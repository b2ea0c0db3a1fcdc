import type { Channel, ConsumeMessage, Options } from 'amqplib';
import type { BrokerSession } from '../shared/broker/connection.js';
import { ConfirmPublisher } from '../shared/broker/publisher.js';
import { assertTopology, tierName, type Topology } from '../shared/broker/topology.js';
import { BROKER_HEADERS, HEADERS, parseTransferEvent, readDeliveryScope } from '../shared/domain/contract.js';
import { addLogContext, logger, withLogContext } from '../shared/runtime/logger.js';
import type { MessageOutcome, WorkerMetrics } from './metrics.js';
import { parkWhole, type Decision, type Delivery, type Notifier } from './notifier.js';

export interface ConsumerChannels {
  session: BrokerSession;
  consume: Channel;
  publisher: ConfirmPublisher;
  consumerTag: string | null;
}

export interface ConsumerOptions {
  topology: Topology;
  prefetch: number;
  deliveryLimit: number;
  notifier: Notifier;
  workerId: string;
  metrics: WorkerMetrics;
}

/** Settling a delivery: publish what the decision asks for, then ack; or give it back; or leave it. */
type Outcome = { kind: 'decided'; transferId: string | null; decision: Decision } | { kind: 'requeue' } | { kind: 'leave' };

const unreadable = (reason: string): Outcome => ({ kind: 'decided', transferId: null, decision: parkWhole(1, reason) });

/**
 * The worker's AMQP adapter. Late acks: a delivery is acked only after its
 * outcome is in the store and every retry or dead letter it spawned has been
 * confirmed by the broker. A delivery is settled on the channel it came from,
 * and never once that channel is gone: the broker has already put it back.
 */
export class NotificationConsumer {
  private readonly inFlight = new Set<Promise<void>>();
  private stopping = false;
  private stopped: Promise<void> | null = null;

  constructor(private readonly options: ConsumerOptions) {}

  /** Broker setup: runs on every (re)connect and subscribes again. */
  async attach(session: BrokerSession): Promise<ConsumerChannels> {
    const { topology, prefetch } = this.options;
    await assertTopology(session.model, topology);
    const publishChannel = session.watch(await session.model.createConfirmChannel(), 'publish');
    const consume = session.watch(await session.model.createChannel(), 'consume');
    await consume.prefetch(prefetch);
    const channels: ConsumerChannels = { session, consume, publisher: new ConfirmPublisher(publishChannel, session.model), consumerTag: null };
    if (this.stopping) return channels;
    const { consumerTag } = await consume.consume(
      topology.workQueue,
      (message) => {
        if (message === null) {
          // The broker cancelled us (queue deleted, node failover): resubscribe through a fresh connection.
          session.recycle('the broker cancelled the consumer');
          return;
        }
        this.track(this.onMessage(channels, message));
      },
      { noAck: false },
    );
    channels.consumerTag = consumerTag;
    logger.info('consuming', { queue: topology.workQueue, prefetch, workerId: this.options.workerId });
    return channels;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /**
   * Stops taking deliveries and waits up to drainMs for the ones in hand. What is
   * still unfinished then is returned to the queue when the connection closes.
   * Safe to call twice; both calls wait for the same stop.
   */
  stop(current: ConsumerChannels | null, drainMs: number): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      if (current?.consumerTag) {
        await current.consume.cancel(current.consumerTag).catch(() => undefined);
      }
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), drainMs);
      });
      const result = await Promise.race([Promise.allSettled([...this.inFlight]), deadline]);
      clearTimeout(timer);
      if (result === 'timeout') {
        logger.warn('deliveries still in hand at the drain deadline; the broker will redeliver them', { count: this.inFlight.size });
      }
    })();
    return this.stopped;
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    this.options.metrics.inFlight.inc();
    void work.finally(() => {
      this.inFlight.delete(work);
      this.options.metrics.inFlight.dec();
    });
  }

  private onMessage(channels: ConsumerChannels, message: ConsumeMessage): Promise<void> {
    const { messageId, correlationId } = message.properties;
    return withLogContext({ messageId, transferId: correlationId, workerId: this.options.workerId }, async () => {
      const outcome = await this.decide(message, { lost: () => channels.session.isEnding });
      await this.settle(channels, message, outcome);
    });
  }

  private async decide(message: ConsumeMessage, delivery: Delivery): Promise<Outcome> {
    const parsed = parseTransferEvent(message.content);
    if (!parsed.ok) return unreadable(parsed.reason);
    const transferId = parsed.event.transfer.id;
    addLogContext({ transferId });
    const scope = readDeliveryScope(message.properties.headers);
    if (!scope.ok) return unreadable(scope.reason);

    // The quorum queue counts every delivery that came back unacked (a crashed worker, a thrown handler).
    const deliveryCount = Number(message.properties.headers?.['x-delivery-count'] ?? 0);
    logger.debug('delivery received', { attempt: scope.attempt, channel: scope.channel ?? 'all', deliveryCount });
    try {
      if (deliveryCount >= this.options.deliveryLimit) {
        const reason = `quarantined: ${deliveryCount} earlier deliveries of this message never completed (worker crash or handler error)`;
        logger.error('poison message quarantined', { deliveryCount });
        return { kind: 'decided', transferId, decision: await this.options.notifier.quarantine(parsed.event, scope, reason) };
      }
      return { kind: 'decided', transferId, decision: await this.options.notifier.handle(parsed.event, scope, delivery) };
    } catch (error) {
      if (this.stopping) return { kind: 'leave' };
      // A bug or a message that breaks the handler: give it back; the delivery count above parks it in the end.
      logger.error('handling the message failed; returning it to the queue', { error, deliveryCount });
      return { kind: 'requeue' };
    }
  }

  private async settle(channels: ConsumerChannels, message: ConsumeMessage, outcome: Outcome): Promise<void> {
    const { metrics } = this.options;
    if (outcome.kind === 'leave' || channels.session.isEnding) {
      if (outcome.kind !== 'leave') logger.info('the channel this delivery came on is gone; the broker redelivers it');
      metrics.messages.inc({ outcome: 'returned' });
      return;
    }
    try {
      if (outcome.kind === 'requeue') {
        // reject, not nack: RabbitMQ 4.3+ counts only reject toward the delivery limit; 3.x counts both.
        channels.consume.reject(message, true);
        metrics.messages.inc({ outcome: 'requeued' });
        return;
      }
      const { decision } = outcome;
      await this.publishFollowUps(channels, message, decision);
      // Only now, with the dead-letter copies confirmed, do the parked channels show failed.
      if (outcome.transferId) await this.options.notifier.confirmParked(outcome.transferId, decision);
      channels.consume.ack(message);
      for (const r of decision.retries) metrics.retries.inc({ channel: r.channel });
      for (const p of decision.parked) metrics.deadLettered.inc({ channel: p.channel ?? 'all' });
      const result: MessageOutcome =
        decision.parked.length > 0 ? 'dead_lettered' : decision.retries.length > 0 ? 'retry_scheduled' : decision.deferred.length > 0 ? 'deferred' : 'completed';
      metrics.messages.inc({ outcome: result });
    } catch (error) {
      if (channels.session.isEnding) return;
      logger.warn('could not publish the follow-up messages; returning the delivery to the queue', { error: (error as Error).message });
      try {
        channels.consume.reject(message, true);
        metrics.messages.inc({ outcome: 'requeued' });
      } catch {
        // The channel died meanwhile: the broker has the delivery back already.
      }
    }
  }

  private async publishFollowUps(channels: ConsumerChannels, message: ConsumeMessage, decision: Decision): Promise<void> {
    const { topology } = this.options;
    await Promise.all([
      ...decision.retries.map((r) => {
        logger.info('retry scheduled', { channel: r.channel, attempt: r.attempt, delayMs: r.delayMs });
        return channels.publisher.publish(
          topology.retryExchange,
          tierName(r.delayMs),
          message.content,
          copyOf(message, { [HEADERS.attempt]: r.attempt, [HEADERS.channel]: r.channel, [HEADERS.lastError]: r.error.slice(0, 500) }),
        );
      }),
      ...decision.deferred.map((d) => {
        logger.info('another worker is sending this channel; looking again later', { channel: d.channel, by: d.by, delayMs: d.delayMs });
        return channels.publisher.publish(
          topology.retryExchange,
          tierName(d.delayMs),
          message.content,
          copyOf(message, { [HEADERS.attempt]: d.attempt, [HEADERS.channel]: d.channel, [HEADERS.deferredBy]: d.by }),
        );
      }),
      ...decision.parked.map((p) => {
        logger.warn('dead-lettering', { channel: p.channel ?? 'all', reason: p.reason });
        return channels.publisher.publish(
          topology.deadExchange,
          message.fields.routingKey,
          message.content,
          copyOf(message, {
            [HEADERS.attempt]: p.attempt,
            ...(p.channel ? { [HEADERS.channel]: p.channel } : {}),
            [HEADERS.failureReason]: p.reason.slice(0, 1000),
            [HEADERS.failedAt]: new Date().toISOString(),
            [HEADERS.failedBy]: this.options.workerId,
          }),
        );
      }),
    ]);
  }
}

/** Headers that describe one delivery and must not pass on to the messages it spawns. */
const ONE_DELIVERY = new Set<string>([HEADERS.replayedAt, HEADERS.deferredBy]);

/** The message's own properties and app headers, minus what the broker added, plus `headers`. */
function copyOf(message: ConsumeMessage, headers: Record<string, unknown>): Options.Publish {
  const p = message.properties;
  const kept = Object.fromEntries(Object.entries(p.headers ?? {}).filter(([k]) => !BROKER_HEADERS.test(k) && !ONE_DELIVERY.has(k)));
  return {
    contentType: p.contentType,
    contentEncoding: p.contentEncoding,
    messageId: p.messageId,
    correlationId: p.correlationId,
    timestamp: p.timestamp,
    type: p.type,
    appId: p.appId,
    headers: { ...kept, ...headers },
  };
}
