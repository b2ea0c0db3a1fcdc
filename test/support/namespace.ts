import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { topologyExchanges, topologyOf, topologyQueues, type Topology } from '../../shared/broker/topology.js';
import { inheritedEnv, loadConfig, type Config } from '../../shared/config.js';

export type EnvOverrides = Record<string, string>;

export const AMQP_URL = inheritedEnv().AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/**
 * One isolated world for a test: its own AMQP_PREFIX and its own database,
 * removed again by cleanup(), so runs never see each other's messages or rows.
 */
export class TestNamespace {
  readonly id = `t${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  readonly prefix = `test-${this.id}`;
  readonly dbFile = path.join(tmpdir(), `async-transfers-${this.id}.db`);
  /** The topology of the default settings; a system started with other retry delays also owns theirs. */
  readonly topology: Topology;
  private readonly topologies: Topology[] = [];

  constructor() {
    this.topology = topologyOf(this.config());
  }

  /** The environment a process of this namespace runs with. */
  env(overrides: EnvOverrides = {}): EnvOverrides {
    const env = {
      AMQP_URL,
      AMQP_PREFIX: this.prefix,
      DATABASE_URL: `sqlite:${this.dbFile}`,
      PORT: '0',
      LOG_LEVEL: 'error',
      NOTIFY_LATENCY_MS: '0',
      SEED_DEMO_ACCOUNTS: 'true',
      SHUTDOWN_TIMEOUT_MS: '5000',
      ...overrides,
    };
    try {
      this.topologies.push(topologyOf(loadConfig(env)));
    } catch {
      // An invalid environment (a test of config errors) creates nothing on the broker.
    }
    return env;
  }

  config(overrides: EnvOverrides = {}): Config {
    return loadConfig(this.env(overrides));
  }

  async cleanup(): Promise<void> {
    const connection = await amqp.connect(AMQP_URL);
    connection.on('error', () => undefined);
    try {
      for (const queue of new Set(this.topologies.flatMap(topologyQueues))) {
        const channel = await connection.createChannel();
        channel.on('error', () => undefined);
        await channel.deleteQueue(queue).catch(() => undefined);
      }
      for (const exchange of new Set(this.topologies.flatMap(topologyExchanges))) {
        const channel = await connection.createChannel();
        channel.on('error', () => undefined);
        await channel.deleteExchange(exchange).catch(() => undefined);
      }
    } finally {
      await connection.close().catch(() => undefined);
    }
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${this.dbFile}${suffix}`, { force: true });
  }
}
