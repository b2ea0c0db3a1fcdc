import { hostname } from 'node:os';
import { Broker } from '../shared/broker/connection.js';
import { topology } from '../shared/broker/topology.js';
import type { Config } from '../shared/config.js';
import { Lifecycle } from '../shared/lifecycle.js';
import { logger } from '../shared/logger.js';
import { openStore, type Store } from '../shared/store/index.js';
import { NotificationConsumer, type ConsumerChannels } from './consumer.js';
import { Notifier, type Providers } from './notifier.js';
import { SimulatedProvider } from './providers/simulated.js';

export interface WorkerHandle {
  workerId: string;
  store: Store;
  broker: Broker<ConsumerChannels>;
  consumer: NotificationConsumer;
  stop(): Promise<boolean>;
}

export function defaultProviders(config: Config): Providers {
  const simulated = new SimulatedProvider(config.notifyLatencyMs);
  return { email: simulated, sms: simulated };
}

/** Starts a worker: store, then broker and consumer. Stops in reverse: stop consuming, drain, close. */
export async function startWorker(config: Config, providers: Providers = defaultProviders(config)): Promise<WorkerHandle> {
  const lifecycle = new Lifecycle();
  const stop = () => lifecycle.stop(config.shutdownTimeoutMs);
  const workerId = `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  try {
    const store = await openStore(config);
    lifecycle.onStop('database', () => store.close());

    // Aborted at stop, so store retries give up and undone deliveries go back to the queue.
    const stopping = new AbortController();
    const notifier = new Notifier(store, providers, stopping.signal);
    const consumer = new NotificationConsumer({
      topology: topology(config.amqpPrefix),
      prefetch: config.workerPrefetch,
      deliveryLimit: config.deliveryLimit,
      notifier,
      workerId,
    });
    const broker = await Broker.open({
      url: config.amqpUrl,
      name: `async-transfers-worker ${workerId}`,
      logger,
      setup: (session) => consumer.attach(session),
    });
    lifecycle.onStop('broker', () => broker.close());
    lifecycle.onStop('consumer', async () => {
      await consumer.stop(broker.current, Math.floor(config.shutdownTimeoutMs * 0.7));
      stopping.abort();
    });
    logger.info('worker started', { workerId, amqpPrefix: config.amqpPrefix, prefetch: config.workerPrefetch });
    return { workerId, store, broker, consumer, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
