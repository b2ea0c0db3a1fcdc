import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { ConfirmChannel, Message, Options } from 'amqplib';

export class UnroutableError extends Error {
  override name = 'UnroutableError';
}

const PUBLISH_ID = 'x-publish-id';

/**
 * Publishes on a confirm channel and resolves only when the broker has taken
 * responsibility for the message. Every publish is mandatory: a message no queue
 * would receive comes back as a basic.return (sent before its ack), and the
 * publish fails instead of the message vanishing.
 */
export class ConfirmPublisher {
  private readonly returned = new Set<string>();
  private readonly instance = randomUUID().slice(0, 8);
  private sequence = 0;
  private drained: Promise<unknown> | null = null;

  constructor(
    private readonly channel: ConfirmChannel,
    private readonly confirmTimeoutMs = 15_000,
  ) {
    channel.on('return', (message: Message) => {
      const id = message.properties.headers?.[PUBLISH_ID];
      if (id !== undefined) this.returned.add(String(id));
    });
  }

  async publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
    // The channel's write buffer is full: wait until it drains instead of piling up memory.
    if (this.drained) await this.drained;
    const publishId = `${this.instance}-${++this.sequence}`;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no confirm from the broker within ${this.confirmTimeoutMs} ms`)), this.confirmTimeoutMs);
      const settle = (error?: Error) => {
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      try {
        const ok = this.channel.publish(
          exchange,
          routingKey,
          content,
          { ...options, mandatory: true, persistent: true, headers: { ...options.headers, [PUBLISH_ID]: publishId } },
          (err) => {
            if (this.returned.delete(publishId)) return settle(new UnroutableError(`no queue is bound for ${exchange} ${routingKey}`));
            if (err) return settle(err instanceof Error ? err : new Error('the broker refused the message (nack)'));
            settle();
          },
        );
        if (!ok && !this.drained) {
          // A channel that closes never drains; its publishes fail on their own.
          this.drained = Promise.race([once(this.channel, 'drain'), once(this.channel, 'close')]).finally(() => {
            this.drained = null;
          });
        }
      } catch (error) {
        settle(error as Error);
      }
    });
  }
}
