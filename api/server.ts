import type { Express } from 'express';
import { Broker } from '../shared/broker/connection.js';
import { ConfirmPublisher } from '../shared/broker/publisher.js';
import { assertTopology, topologyOf } from '../shared/broker/topology.js';
import type { Config } from '../shared/runtime/config.js';
import { closeServer, listen } from '../shared/runtime/http-server.js';
import { Lifecycle } from '../shared/runtime/lifecycle.js';
import { logger } from '../shared/runtime/logger.js';
import { openStore, type Store } from '../shared/store/index.js';
import { createApp } from './app.js';
import { seedDemo } from './demo-seed.js';
import { OutboxRelay } from './outbox-relay.js';

export interface ApiHandle {
  app: Express;
  port: number;
  url: string;
  store: Store;
  relay: OutboxRelay;
  broker: Broker<ConfirmPublisher>;
  /** Stops in reverse start order; resolves false if the shutdown deadline passed. */
  stop(): Promise<boolean>;
}

export interface ApiDeps {
  /** A store the caller owns (and closes); by default the API opens DATABASE_URL itself. */
  store?: Store;
  /** Where the first start prints the demo keys; stderr by default. */
  print?: (text: string) => void;
}

/** Starts the API: store, broker, outbox relay, then HTTP. Stops in reverse. */
export async function startApi(config: Config, deps: ApiDeps = {}): Promise<ApiHandle> {
  const lifecycle = new Lifecycle();
  const stop = () => lifecycle.stop(config.shutdownTimeoutMs);
  try {
    let store = deps.store;
    if (!store) {
      const owned = await openStore(config);
      lifecycle.onStop('database', () => owned.close());
      store = owned;
    }
    if (config.seedDemoAccounts) await seedDemo(store, deps.print);
    if (config.authDisabled) {
      logger.warn('AUTH_DISABLED=true: every request may move money out of ANY account. For local experiments only; never expose this process.');
    }

    const names = topologyOf(config);
    const broker = await Broker.open({
      nodes: config.amqpNodes,
      order: config.amqpFailover,
      name: 'async-transfers-api',
      logger,
      setup: async (session) => {
        await assertTopology(session.model, names);
        return new ConfirmPublisher(session.watch(await session.model.createConfirmChannel(), 'publish'), session.model);
      },
    });
    lifecycle.onStop('broker', () => broker.close());

    const relay = new OutboxRelay({
      store,
      publisher: () => broker.current,
      exchange: names.exchange,
      leaseMs: config.outboxLeaseMs,
      sweepIntervalMs: config.outboxSweepIntervalMs,
    });
    broker.on('connect', () => relay.brokerConnected());
    relay.start();
    lifecycle.onStop('outbox relay', () => relay.stop());

    const app = createApp({ config, store, relay, brokerConnected: () => broker.isConnected });
    const { server, port } = await listen(app, config.port, { requestTimeoutMs: config.requestTimeoutMs });
    lifecycle.onStop('http server', () => closeServer(server, config.shutdownTimeoutMs / 2));
    logger.info('API listening', { port, broker: config.amqpNodes.map((n) => n.label).join(','), amqpPrefix: config.amqpPrefix, database: config.database.kind });

    return { app, port, url: `http://127.0.0.1:${port}`, store, relay, broker, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
