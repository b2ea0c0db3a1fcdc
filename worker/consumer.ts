import type { Channel, ConsumeMessage } from 'amqplib';
import type { BrokerSession } from '../shared/broker/connection.js';
import { ConfirmPublisher } from '../shared/broker/publisher.js';
import { assertTopology, type Topology } from '../shared/broker/topology.js';
import { parseTransferEvent } from '../shared/contract.js';
import { addLogContext, logger, withLogContext } from '../shared/logger.js';
import type { Decision, Notifier } from './notifier.js';

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
}

/** Why a message was parked, for whoever reads the dead-letter queue. */
export const FAILURE_REASON_HEADER = 'x-failure-reason';

/**
 * The worker's AMQP adapter. Late acks: a delivery is acked only after its
 * outcome is in the store. A delivery is settled on the channel it came from,
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
    const publishChannel = session.watch(await session.model.createConfirmChannel(), 'publish');
    await assertTopology(publishChannel, topology, { deliveryLimit: this.options.deliveryLimit });
    const consume = session.watch(await session.model.createChannel(), 'consume');
    await consume.prefetch(prefetch);
    const channels: ConsumerChannels = { session, consume, publisher: new ConfirmPublisher(publishChannel), consumerTag: null };
    if (this.stopping) return channels;
    const { consumerTag } = await consume.consume(
      topology.workQueue,
      (message) => {
        if (message === null) {
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
      if (result === 'timeout') logger.warn('deliveries still in hand at the drain deadline; the broker will redeliver them', { count: this.inFlight.size });
    })();
    return this.stopped;
  }

  private track(work: Promise<void>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  private onMessage(channels: ConsumerChannels, message: ConsumeMessage): Promise<void> {
    const { messageId, correlationId } = message.properties;
    return withLogContext({ messageId, transferId: correlationId, workerId: this.options.workerId }, async () => {
      let decision: Decision | 'leave' | 'requeue';
      const parsed = parseTransferEvent(message.content);
      if (!parsed.ok) {
        decision = { kind: 'dead-letter', reason: parsed.reason };
      } else {
        addLogContext({ transferId: parsed.event.transfer.id });
        try {
          decision = await this.options.notifier.handle(parsed.event);
        } catch (error) {
          if (this.stopping) {
            decision = 'leave';
          } else {
            // A bug or a crash-worthy message: requeue, and the queue's delivery limit parks it if it keeps failing.
            logger.error('handling the message failed', { error });
            decision = 'requeue';
          }
        }
      }
      await this.settle(channels, message, decision);
    });
  }

  private async settle(channels: ConsumerChannels, message: ConsumeMessage, decision: Decision | 'leave' | 'requeue'): Promise<void> {
    if (decision === 'leave') return;
    if (channels.session.isEnding) {
      logger.info('the channel this delivery came on is gone; the broker redelivers it');
      return;
    }
    try {
      if (decision === 'requeue') {
        channels.consume.reject(message, true);
      } else if (decision.kind === 'ack') {
        channels.consume.ack(message);
      } else {
        await this.deadLetter(channels, message, decision.reason);
      }
    } catch (error) {
      logger.warn('could not settle the delivery; the broker redelivers it', { error: (error as Error).message });
    }
  }

  /**
   * Parks the message in the dead-letter queue with the reason on it. If the copy
   * cannot be published, reject it instead: the queue's own dead-lettering takes
   * it there, without the reason header.
   */
  private async deadLetter(channels: ConsumerChannels, message: ConsumeMessage, reason: string): Promise<void> {
    const { topology } = this.options;
    logger.warn('dead-lettering the message', { reason });
    const p = message.properties;
    try {
      await channels.publisher.publish(topology.deadExchange, message.fields.routingKey, message.content, {
        contentType: p.contentType,
        contentEncoding: p.contentEncoding,
        messageId: p.messageId,
        correlationId: p.correlationId,
        timestamp: p.timestamp,
        type: p.type,
        appId: p.appId,
        headers: {
          ...p.headers,
          [FAILURE_REASON_HEADER]: reason.slice(0, 1000),
          'x-failed-at': new Date().toISOString(),
          'x-failed-by': this.options.workerId,
          'x-original-queue': topology.workQueue,
        },
      });
      channels.consume.ack(message);
    } catch (error) {
      logger.warn('could not publish to the dead-letter exchange; rejecting instead', { error: (error as Error).message });
      channels.consume.reject(message, false);
    }
  }
}
