import { hostname } from 'node:os';
import { Broker } from '../shared/broker/connection.js';
import { topologyOf } from '../shared/broker/topology.js';
import type { Config } from '../shared/config.js';
import { Lifecycle } from '../shared/lifecycle.js';
import { logger } from '../shared/logger.js';
import { openStore, type Store } from '../shared/store/index.js';
import { NotificationConsumer, type ConsumerChannels } from './consumer.js';
import { Notifier, type Providers } from './notifier.js';
import { createProviders } from './providers/index.js';

export interface WorkerHandle {
  workerId: string;
  store: Store;
  broker: Broker<ConsumerChannels>;
  consumer: NotificationConsumer;
  stop(): Promise<boolean>;
}

export interface WorkerDeps {
  providers?: Providers;
  /** A store the caller owns (and closes); by default the worker opens DATABASE_URL itself. */
  store?: Store;
}

/** Starts a worker: store, then broker and consumer. Stops in reverse: stop consuming, drain, close. */
export async function startWorker(config: Config, deps: WorkerDeps = {}): Promise<WorkerHandle> {
  const providers = deps.providers ?? createProviders(config);
  const lifecycle = new Lifecycle();
  const stop = () => lifecycle.stop(config.shutdownTimeoutMs);
  const workerId = `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  try {
    let store = deps.store;
    if (!store) {
      const owned = await openStore(config);
      lifecycle.onStop('database', () => owned.close());
      store = owned;
    }
    lifecycle.onStop('providers', async () => {
      await Promise.all([...new Set(Object.values(providers))].map((p) => p.close?.()));
    });

    // Aborted at stop, so store retries give up and undone deliveries go back to the queue.
    const stopping = new AbortController();
    const notifier = new Notifier(store, providers, config.retry, stopping.signal);
    const consumer = new NotificationConsumer({
      topology: topologyOf(config),
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
    const describe = (p: Providers[keyof Providers]) => (p.endpoint ? `${p.name} ${p.endpoint}` : p.name);
    logger.info('worker started', {
      workerId,
      broker: config.amqpUrl,
      amqpPrefix: config.amqpPrefix,
      prefetch: config.workerPrefetch,
      providers: { email: describe(providers.email), sms: describe(providers.sms) },
    });
    return { workerId, store, broker, consumer, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
