import amqp from 'amqplib';

/**
 * RabbitMQ's own rate on this machine for what the system asks of it: persistent
 * messages of the event's size, published with confirms (a window in flight) into a
 * quorum queue and consumed with acks, publisher and consumer running together.
 */
export async function brokerCeiling(url: string, queue: string, options: { messages: number; bytes: number }): Promise<{ messagesPerSecond: number }> {
  const pub = await amqp.connect(url);
  const sub = await amqp.connect(url);
  for (const c of [pub, sub]) c.on('error', () => undefined);
  try {
    const publishChannel = await pub.createConfirmChannel();
    await publishChannel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await publishChannel.purgeQueue(queue);
    const consumeChannel = await sub.createChannel();
    await consumeChannel.prefetch(256);

    const body = Buffer.alloc(options.bytes, 'x');
    const started = performance.now();
    let consumed = 0;
    const done = new Promise<void>((resolve) => {
      void consumeChannel.consume(queue, (message) => {
        if (!message) return;
        consumeChannel.ack(message);
        if (++consumed === options.messages) resolve();
      });
    });

    const window = 1000;
    let inFlight = 0;
    let waiters: (() => void)[] = [];
    for (let i = 0; i < options.messages; i++) {
      while (inFlight >= window) await new Promise<void>((resolve) => waiters.push(resolve));
      inFlight++;
      publishChannel.publish('', queue, body, { persistent: true }, () => {
        inFlight--;
        const w = waiters;
        waiters = [];
        for (const resolve of w) resolve();
      });
    }
    await publishChannel.waitForConfirms();
    await done;
    const seconds = (performance.now() - started) / 1000;
    await publishChannel.deleteQueue(queue);
    return { messagesPerSecond: options.messages / seconds };
  } finally {
    await pub.close().catch(() => undefined);
    await sub.close().catch(() => undefined);
  }
}
