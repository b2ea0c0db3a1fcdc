import path from 'node:path';
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../shared/runtime/config.js';

const refused = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
};

describe('configuration', () => {
  it('When nothing is set, then every setting has the default the README lists', () => {
    const config = loadConfig({});
    expect(config).to.deep.include({
      port: 3000,
      amqpNodes: [{ url: 'amqp://guest:guest@localhost:5672', label: 'localhost:5672' }],
      amqpPrefix: 'bank',
      database: { kind: 'sqlite', file: path.resolve('./data/async-transfers.db') },
      sqliteBusyTimeoutMs: 5000,
      logLevel: 'info',
      workerPrefetch: 16,
      notifyLatencyMs: 200,
      seedDemoAccounts: true,
      shutdownTimeoutMs: 10_000,
      outboxLeaseMs: 30_000,
      outboxSweepIntervalMs: 5000,
      deliveryLimit: 10,
      retry: { delaysMs: [1000, 5000, 30000, 120000], maxAttempts: 5 },
      authDisabled: false,
      rateLimit: { windowMs: 60_000, perKey: 600, perIp: 1200 },
      trustProxy: false,
      requestTimeoutMs: 15_000,
      workerMetricsPort: null,
    });
    expect(config.providers).to.deep.equal({ email: { kind: 'simulated' }, sms: { kind: 'simulated' }, timeoutMs: 10_000, failureRate: 0 });
  });

  it('When a variable is empty (FOO= in a compose file), then its default applies', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '', RETRY_DELAYS_MS: '' })).to.deep.include({ port: 3000, retry: { delaysMs: [1000, 5000, 30000, 120000], maxAttempts: 5 } });
  });

  it('When DATABASE_URL names PostgreSQL, then the pool size comes from PG_POOL_MAX', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/bank', PG_POOL_MAX: '25' }).database).to.deep.equal({ kind: 'postgres', url: 'postgres://u:p@db:5432/bank', poolMax: 25 });
    expect(loadConfig({ DATABASE_URL: 'postgresql://db/bank' }).database).to.include({ kind: 'postgres', poolMax: 10 });
  });

  it('When DATABASE_URL names a SQLite file in either form, then it is resolved to an absolute path', () => {
    expect(loadConfig({ DATABASE_URL: 'sqlite:./x/bank.db' }).database).to.deep.equal({ kind: 'sqlite', file: path.resolve('x/bank.db') });
    expect(loadConfig({ DATABASE_URL: 'sqlite:///var/lib/bank.db' }).database).to.deep.equal({ kind: 'sqlite', file: '/var/lib/bank.db' });
  });

  const invalid: [Record<string, string>, RegExp][] = [
    [{ PORT: '70000' }, /^Invalid configuration: PORT: /],
    [{ PORT: 'abc' }, /PORT: /],
    [{ AMQP_URL: 'http://rabbit' }, /AMQP_URL: "http:\/\/rabbit" must start with amqp:\/\/ or amqps:\/\//],
    [{ AMQP_PREFIX: 'has space' }, /AMQP_PREFIX: letters, digits/],
    [{ DATABASE_URL: 'mysql://db' }, /DATABASE_URL: unsupported scheme/],
    [{ DATABASE_URL: 'sqlite::memory:' }, /DATABASE_URL: needs a file path/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL: /],
    [{ WORKER_PREFETCH: '0' }, /WORKER_PREFETCH: /],
    [{ SEED_DEMO_ACCOUNTS: 'maybe' }, /SEED_DEMO_ACCOUNTS: /],
    [{ RETRY_DELAYS_MS: '1000,soon' }, /RETRY_DELAYS_MS: must be a comma-separated list of whole milliseconds/],
    [{ RETRY_DELAYS_MS: '0' }, /RETRY_DELAYS_MS: /],
    [{ NOTIFY_FAILURE_RATE: '1.5' }, /NOTIFY_FAILURE_RATE: /],
    [{ EMAIL_PROVIDER: 'smtp' }, /SMTP_URL: is required when EMAIL_PROVIDER=smtp/],
    [{ SMS_PROVIDER: 'webhook' }, /SMS_WEBHOOK_URL: is required when SMS_PROVIDER=webhook/],
    [{ SMTP_URL: 'mail.example.com' }, /SMTP_URL: must be a URL like smtp:\/\//],
  ];
  for (const [env, message] of invalid) {
    it(`When ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ')}, then loading stops with a message naming the variable`, () => {
      expect(refused(env)).to.match(message);
    });
  }

  it('When several variables are wrong, then one message names each of them', () => {
    const message = refused({ PORT: '-1', WORKER_PREFETCH: 'many' });
    expect(message).to.match(/PORT: /).and.to.match(/WORKER_PREFETCH: /);
  });

  it('When real providers are chosen, then their settings are carried through', () => {
    const config = loadConfig({
      EMAIL_PROVIDER: 'smtp',
      SMTP_URL: 'smtp://u:p@mail:587',
      SMS_PROVIDER: 'webhook',
      SMS_WEBHOOK_URL: 'https://sms.example.com/messages',
      SMS_WEBHOOK_TOKEN: 'tok',
      PROVIDER_TIMEOUT_MS: '2500',
    });
    // As many connections as the worker holds messages (WORKER_PREFETCH), unless set.
    expect(config.providers.email).to.deep.equal({ kind: 'smtp', url: 'smtp://u:p@mail:587', from: 'Async Transfers <notifications@async-transfers.local>', maxConnections: 16 });
    expect(config.providers.sms).to.deep.equal({ kind: 'webhook', url: 'https://sms.example.com/messages', token: 'tok', maxConnections: 16 });
    expect(config.providers.timeoutMs).to.equal(2500);
  });

  it('When provider connection limits are set, or only the prefetch, then the pools follow', () => {
    const base = { EMAIL_PROVIDER: 'smtp', SMTP_URL: 'smtp://mail:25', SMS_PROVIDER: 'webhook', SMS_WEBHOOK_URL: 'http://sms/messages' };
    const byPrefetch = loadConfig({ ...base, WORKER_PREFETCH: '40' }).providers;
    expect([byPrefetch.email, byPrefetch.sms].map((p) => ('maxConnections' in p ? p.maxConnections : null))).to.deep.equal([40, 40]);
    const explicit = loadConfig({ ...base, SMTP_MAX_CONNECTIONS: '8', SMS_MAX_CONNECTIONS: '64' }).providers;
    expect([explicit.email, explicit.sms].map((p) => ('maxConnections' in p ? p.maxConnections : null))).to.deep.equal([8, 64]);
    expect(refused({ ...base, SMTP_MAX_CONNECTIONS: '0' })).to.match(/SMTP_MAX_CONNECTIONS: /);
  });

  it('When the outbox sweep is too seldom to renew leases in time, then the configuration is refused', () => {
    expect(refused({ OUTBOX_LEASE_MS: '10000', OUTBOX_SWEEP_INTERVAL_MS: '5000' })).to.match(/OUTBOX_SWEEP_INTERVAL_MS: must be less than half of OUTBOX_LEASE_MS/);
    expect(loadConfig({ OUTBOX_LEASE_MS: '10000', OUTBOX_SWEEP_INTERVAL_MS: '4999' }).outboxSweepIntervalMs).to.equal(4999);
  });

  it('When TRUST_PROXY is a boolean, a hop count or addresses, then Express gets the matching value', () => {
    expect(['true', 'false', '2', 'loopback, 10.0.0.0/8'].map((v) => loadConfig({ TRUST_PROXY: v }).trustProxy)).to.deep.equal([true, false, 2, 'loopback, 10.0.0.0/8']);
  });

  it('When WORKER_METRICS_PORT is 0, then the worker serves metrics on any free port (0), not off (null)', () => {
    expect(loadConfig({ WORKER_METRICS_PORT: '0' }).workerMetricsPort).to.equal(0);
  });
});
