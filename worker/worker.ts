import { hostname } from 'node:os';
import { Broker } from '../shared/broker/connection.js';
import { topologyOf } from '../shared/broker/topology.js';
import type { Config } from '../shared/runtime/config.js';
import { Lifecycle } from '../shared/runtime/lifecycle.js';
import { logger } from '../shared/runtime/logger.js';
import { claimLeaseMs } from '../shared/domain/send-claims.js';
import { openStore, type Store } from '../shared/store/index.js';
import { NotificationConsumer, type ConsumerChannels } from './consumer.js';
import { Notifier, type Providers } from './notifier.js';
import { closeServer, listen } from '../shared/runtime/http-server.js';
import { WorkerMetrics } from './metrics.js';
import { createProviders } from './providers/index.js';

export interface WorkerHandle {
  workerId: string;
  store: Store;
  broker: Broker<ConsumerChannels>;
  consumer: NotificationConsumer;
  metrics: WorkerMetrics;
  /** Where /metrics is served, when WORKER_METRICS_PORT is set. */
  metricsPort: number | null;
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
      await Promise.all([...new Set(Object.values(providers))].map(async (p) => p.close?.()));
    });

    // Aborted at stop, so store retries give up and undone deliveries go back to the queue.
    const stopping = new AbortController();
    const metrics = new WorkerMetrics();
    // The store's way of telling other workers this one is alive, for its send claims.
    const claimant = await store.registerClaimant(workerId, claimLeaseMs(config.providers.timeoutMs));
    const notifier = new Notifier(store, providers, config.retry, claimant, stopping.signal, metrics);
    const consumer = new NotificationConsumer({
      topology: topologyOf(config),
      prefetch: config.workerPrefetch,
      deliveryLimit: config.deliveryLimit,
      notifier,
      workerId,
      metrics,
    });
    const broker = await Broker.open({
      nodes: config.amqpNodes,
      order: config.amqpFailover,
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
      broker: config.amqpNodes.map((n) => n.label).join(','),
      amqpPrefix: config.amqpPrefix,
      prefetch: config.workerPrefetch,
      providers: { email: describe(providers.email), sms: describe(providers.sms) },
    });
    let metricsPort: number | null = null;
    if (config.workerMetricsPort !== null) {
      const { server, port } = await listen((req, res) => {
        if (req.url !== '/metrics') {
          res.writeHead(404).end();
          return;
        }
        metrics.registry.metrics().then(
          (text: string) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text),
          (error: Error) => {
            logger.warn('collecting metrics failed', { error: error.message });
            res.writeHead(500).end();
          },
        );
      }, config.workerMetricsPort);
      metricsPort = port;
      lifecycle.onStop('metrics server', () => closeServer(server, 1000));
      logger.info('worker metrics listening', { port });
    }
    return { workerId, store, broker, consumer, metrics, metricsPort, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
