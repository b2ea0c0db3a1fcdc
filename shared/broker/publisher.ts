import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { ConfirmChannel, Message, Options } from 'amqplib';
import { logger } from '../runtime/logger.js';

export class UnroutableError extends Error {
  override name = 'UnroutableError';
}

const PUBLISH_ID = 'x-publish-id';

/** A door that is open, or shut until someone opens it again; waiting never fails. */
class Gate {
  private shut: { opened: Promise<void>; open: () => void } | null = null;

  close(): void {
    if (this.shut) return;
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    this.shut = { opened, open };
  }

  open(): void {
    this.shut?.open();
    this.shut = null;
  }

  get isClosed(): boolean {
    return this.shut !== null;
  }

  passed(): Promise<void> {
    return this.shut?.opened ?? Promise.resolve();
  }
}

/**
 * Publishes on a confirm channel and resolves only when the broker has taken
 * responsibility for the message. Every publish is mandatory: a message no queue
 * would receive comes back as a basic.return (sent before its ack), and the
 * publish fails instead of the message vanishing.
 *
 * A publish waits as long as its channel lives, and fails only when the channel
 * closes (the outcome is then unknown, and the caller publishes again: that is
 * the one way a copy can repeat). It never times out and publishes again on a
 * live channel: a broker that blocks the connection (a memory or disk alarm, the
 * connection's 'blocked' event) or a quorum queue electing a new leader is slow,
 * not lost, and a second copy would reach the queue once it catches up. While the
 * connection is blocked, new publishes wait for 'unblocked' before writing.
 */
export class ConfirmPublisher {
  private readonly returned = new Set<string>();
  private readonly instance = randomUUID().slice(0, 8);
  private sequence = 0;
  /** Shut while the broker blocks the connection, or the channel's write buffer is full. */
  private readonly blocked = new Gate();
  private readonly writable = new Gate();

  constructor(
    private readonly channel: ConfirmChannel,
    /** The channel's connection: it emits 'blocked' and 'unblocked'. */
    connection: EventEmitter,
  ) {
    channel.on('return', (message: Message) => {
      const id = message.properties.headers?.[PUBLISH_ID];
      if (id !== undefined) this.returned.add(String(id));
    });
    channel.on('drain', () => this.writable.open());
    // A closed channel never drains and is never unblocked: let the waiters through to fail on it.
    channel.on('close', () => {
      this.writable.open();
      this.blocked.open();
    });
    const onBlocked = (reason: string) => {
      if (!this.blocked.isClosed) logger.warn('the broker blocks publishing on this connection; publishes wait until it lifts', { reason });
      this.blocked.close();
    };
    const onUnblocked = () => {
      if (this.blocked.isClosed) logger.info('the broker unblocked the connection; publishing resumes');
      this.blocked.open();
    };
    connection.on('blocked', onBlocked);
    connection.on('unblocked', onUnblocked);
    channel.on('close', () => {
      connection.off('blocked', onBlocked);
      connection.off('unblocked', onUnblocked);
    });
  }

  /** True while the broker blocks this connection (for /ready and logs). */
  get isBlocked(): boolean {
    return this.blocked.isClosed;
  }

  async publish(exchange: string, routingKey: string, content: Buffer, options: Options.Publish): Promise<void> {
    await this.blocked.passed();
    // The channel's write buffer is full: wait until it drains instead of piling up memory.
    await this.writable.passed();
    const publishId = `${this.instance}-${++this.sequence}`;
    await new Promise<void>((resolve, reject) => {
      try {
        const ok = this.channel.publish(
          exchange,
          routingKey,
          content,
          { ...options, mandatory: true, persistent: true, headers: { ...options.headers, [PUBLISH_ID]: publishId } },
          (err) => {
            if (this.returned.delete(publishId)) return reject(new UnroutableError(`no queue is bound for ${exchange} ${routingKey}`));
            if (err) return reject(err instanceof Error ? err : new Error('the broker refused the message (nack)'));
            resolve();
          },
        );
        if (!ok) this.writable.close();
      } catch (error) {
        // The channel is closed: the message was not sent.
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }
}
