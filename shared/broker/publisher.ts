import { randomUUID } from 'node:crypto';
import type { ConfirmChannel, Message, Options } from 'amqplib';

export class UnroutableError extends Error {
  override name = 'UnroutableError';
}

const PUBLISH_ID = 'x-publish-id';

/**
 * Publishes on a confirm channel and resolves only when the broker has taken
 * responsibility for the message. Every publish is mandatory: a message no queue
 * would receive comes back as a basic.return (sent before its ack), and the
 * publish fails instead of the message vanishing. A publish that gets no confirm
 * in time (a broker blocked by a memory or disk alarm) fails too, so callers and
 * shutdown never wait forever.
 */
export class ConfirmPublisher {
  private readonly returned = new Set<string>();
  private readonly instance = randomUUID().slice(0, 8);
  private sequence = 0;
  /** Set while the channel's write buffer is full; resolves (never rejects) when it drains or the channel closes. */
  private drained: Promise<void> | null = null;

  constructor(
    private readonly channel: ConfirmChannel,
    private readonly confirmTimeoutMs = 5000,
  ) {
    channel.on('return', (message: Message) => {
      const id = message.properties.headers?.[PUBLISH_ID];
      if (id !== undefined) this.returned.add(String(id));
    });
  }

  async publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
    const deadline = Date.now() + this.confirmTimeoutMs;
    // The channel's write buffer is full: wait until it drains instead of piling up memory.
    if (this.drained && !(await withTimeout(this.drained, this.confirmTimeoutMs))) {
      throw new Error(`the channel did not drain within ${this.confirmTimeoutMs} ms`);
    }
    const publishId = `${this.instance}-${++this.sequence}`;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no confirm from the broker within ${this.confirmTimeoutMs} ms`)), Math.max(1, deadline - Date.now()));
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
        if (!ok && !this.drained) this.drained = this.nextDrain();
      } catch (error) {
        settle(error as Error);
      }
    });
  }

  private nextDrain(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        this.channel.off('drain', done);
        this.channel.off('close', done);
        this.drained = null;
        resolve();
      };
      // A channel that closes never drains; its pending publishes fail on their own.
      this.channel.on('drain', done);
      this.channel.on('close', done);
    });
  }
}

/** True if the promise settled in time. */
async function withTimeout(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const result = await Promise.race([promise.then(() => true as const), timeout]);
  clearTimeout(timer);
  return result;
}
