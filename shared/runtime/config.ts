import path from 'node:path';
import { z } from 'zod';

/**
 * The one place that reads the environment. Everything else receives a typed
 * Config, so a bad variable fails the process at boot instead of mid-request.
 */

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const databaseUrl = z
  .string()
  .transform((value, ctx): DatabaseConfig => {
    if (value.startsWith('sqlite:')) {
      // Accept both sqlite:/abs/file.db (or sqlite:./rel.db) and the URL form sqlite:///abs/file.db.
      const raw = value.slice('sqlite:'.length).replace(/^\/\//, '');
      if (raw === '' || raw === ':memory:') {
        ctx.addIssue({ code: 'custom', message: 'needs a file path (the API and the worker share it), e.g. sqlite:./data/bank.db' });
        return z.NEVER;
      }
      return { kind: 'sqlite', file: path.resolve(raw) };
    }
    if (/^postgres(ql)?:\/\//.test(value)) return { kind: 'postgres', url: value, poolMax: 10 };
    ctx.addIssue({ code: 'custom', message: 'unsupported scheme; expected sqlite:<file> or postgres://user:pass@host:5432/db' });
    return z.NEVER;
  });

const delayList = z
  .string()
  .transform((value, ctx) => {
    const delays = value.split(',').map((part) => Number(part.trim()));
    if (delays.length === 0 || delays.some((d) => !Number.isInteger(d) || d < 1 || d > 86_400_000)) {
      ctx.addIssue({ code: 'custom', message: 'must be a comma-separated list of whole milliseconds, e.g. 1000,5000,30000' });
      return z.NEVER;
    }
    return delays;
  });

const url = (schemes: RegExp, example: string) => z.string().regex(schemes, `must be a URL like ${example}`);

/** One RabbitMQ node of AMQP_URL: the URL amqplib dials, and `host:port` for logs (no credentials). */
export interface AmqpNode {
  url: string;
  label: string;
}

/** A URL with its credentials masked, for an error message. */
const masked = (value: string) => value.replace(/\/\/[^@/]*@/, '//***@');

/**
 * AMQP_URL: one node, or several separated by commas (the nodes of a cluster), as
 * Celery writes failover broker URLs. Each is read the way amqplib reads it (a WHATWG
 * URL with the amqp: or amqps: scheme) and must name a host, so a typo stops the
 * boot instead of becoming a reconnect loop that can never succeed.
 */
const amqpNodes = z.string().transform((value, ctx): AmqpNode[] => {
  const entries = value.split(',').map((entry) => entry.trim());
  const nodes: AmqpNode[] = [];
  entries.forEach((entry, i) => {
    const which = entries.length > 1 ? `URL ${i + 1} of ${entries.length} (${masked(entry) || 'empty'})` : `"${masked(entry)}"`;
    let parsed: URL;
    try {
      parsed = new URL(entry);
    } catch {
      ctx.addIssue({ code: 'custom', message: `${which} is not a valid URL; expected amqp://user:pass@host:5672[/vhost], several separated by commas` });
      return;
    }
    if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
      ctx.addIssue({ code: 'custom', message: `${which} must start with amqp:// or amqps://` });
      return;
    }
    if (parsed.hostname === '') {
      ctx.addIssue({ code: 'custom', message: `${which} names no host` });
      return;
    }
    const port = parsed.port || (parsed.protocol === 'amqp:' ? '5672' : '5671');
    // hostname keeps an IPv6 address in brackets: [::1]:5672.
    nodes.push({ url: entry, label: `${parsed.hostname}:${port}` });
  });
  return nodes;
});

const envSchema = z.object({
  PORT: int(0, 65535).default(3000),
  AMQP_URL: amqpNodes.prefault('amqp://guest:guest@localhost:5672'),
  AMQP_FAILOVER: z.enum(['shuffle', 'in-order']).default('shuffle'),
  QUORUM_REPLICAS: int(1, 99).default(3),
  API_PROCESSES: int(1, 256).default(1),
  AMQP_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_" and "-", at most 63 characters')
    .default('bank'),
  DATABASE_URL: databaseUrl.prefault('sqlite:./data/async-transfers.db'),
  SQLITE_BUSY_TIMEOUT_MS: int(0, 60_000).default(5000),
  PG_POOL_MAX: int(1, 500).default(10),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly']).default('info'),
  WORKER_PREFETCH: int(1, 1000).default(16),
  NOTIFY_LATENCY_MS: int(0, 60_000).default(200),
  SEED_DEMO_ACCOUNTS: z.stringbool().default(true),
  SHUTDOWN_TIMEOUT_MS: int(100, 600_000).default(10_000),
  OUTBOX_LEASE_MS: int(1000, 3_600_000).default(30_000),
  OUTBOX_SWEEP_INTERVAL_MS: int(100, 3_600_000).default(5000),
  DELIVERY_LIMIT: int(1, 1000).default(10),
  RETRY_DELAYS_MS: delayList.prefault('1000,5000,30000,120000'),
  MAX_ATTEMPTS: int(1, 100).default(5),
  EMAIL_PROVIDER: z.enum(['simulated', 'smtp']).default('simulated'),
  SMS_PROVIDER: z.enum(['simulated', 'webhook']).default('simulated'),
  SMTP_URL: url(/^smtps?:\/\//, 'smtp://user:pass@mail.example.com:587').optional(),
  EMAIL_FROM: z.string().min(3).default('Async Transfers <notifications@async-transfers.local>'),
  SMS_WEBHOOK_URL: url(/^https?:\/\//, 'https://sms.example.com/messages').optional(),
  SMS_WEBHOOK_TOKEN: z.string().min(1).optional(),
  SMTP_MAX_CONNECTIONS: int(1, 1000).optional(),
  SMS_MAX_CONNECTIONS: int(1, 1000).optional(),
  PROVIDER_TIMEOUT_MS: int(100, 600_000).default(10_000),
  NOTIFY_FAILURE_RATE: z.coerce.number().min(0).max(1).default(0),
  AUTH_DISABLED: z.stringbool().default(false),
  RATE_LIMIT_WINDOW_MS: int(1000, 86_400_000).default(60_000),
  RATE_LIMIT_PER_KEY: int(1, 10_000_000).default(600),
  RATE_LIMIT_PER_IP: int(1, 10_000_000).default(1200),
  TRUST_PROXY: z.string().default('false'),
  REQUEST_TIMEOUT_MS: int(1000, 600_000).default(15_000),
  WORKER_METRICS_PORT: int(0, 65535).optional(),
}).superRefine((env, ctx) => {
  if (env.EMAIL_PROVIDER === 'smtp' && !env.SMTP_URL) {
    ctx.addIssue({ code: 'custom', path: ['SMTP_URL'], message: 'is required when EMAIL_PROVIDER=smtp' });
  }
  if (env.SMS_PROVIDER === 'webhook' && !env.SMS_WEBHOOK_URL) {
    ctx.addIssue({ code: 'custom', path: ['SMS_WEBHOOK_URL'], message: 'is required when SMS_PROVIDER=webhook' });
  }
  // A relay renews the leases it holds at each sweep once they are half spent: sweeping less
  // often would let them lapse, and another relay would publish the same events.
  if (env.OUTBOX_SWEEP_INTERVAL_MS >= env.OUTBOX_LEASE_MS / 2) {
    ctx.addIssue({
      code: 'custom',
      path: ['OUTBOX_SWEEP_INTERVAL_MS'],
      message: `must be less than half of OUTBOX_LEASE_MS (${env.OUTBOX_LEASE_MS}), or leases lapse between renewals`,
    });
  }
});

export type DatabaseConfig = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string; poolMax: number };

export interface Config {
  port: number;
  /** The broker's nodes, in the order AMQP_URL gives them. */
  amqpNodes: AmqpNode[];
  /** shuffle: each process tries the nodes in its own random order, so connections spread; in-order: as listed. */
  amqpFailover: 'shuffle' | 'in-order';
  amqpPrefix: string;
  database: DatabaseConfig;
  sqliteBusyTimeoutMs: number;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  workerPrefetch: number;
  notifyLatencyMs: number;
  seedDemoAccounts: boolean;
  shutdownTimeoutMs: number;
  outboxLeaseMs: number;
  outboxSweepIntervalMs: number;
  deliveryLimit: number;
  /** Replicas of each quorum queue when it is created (RabbitMQ caps it at the cluster's size). */
  quorumReplicas: number;
  /** API processes sharing the port (node:cluster), each with its own outbox relay. */
  apiProcesses: number;
  retry: { delaysMs: number[]; maxAttempts: number };
  providers: {
    /** maxConnections: sends in flight at once; by default the worker's prefetch, all it can hold. */
    email: { kind: 'simulated' } | { kind: 'smtp'; url: string; from: string; maxConnections: number };
    sms: { kind: 'simulated' } | { kind: 'webhook'; url: string; token: string | null; maxConnections: number };
    timeoutMs: number;
    /** NOTIFY_FAILURE_RATE: a demo setting; this share of every provider's sends fails transiently. */
    failureRate: number;
  };
  authDisabled: boolean;
  rateLimit: { windowMs: number; perKey: number; perIp: number };
  /** Express's `trust proxy`: false, true, a hop count, or addresses; decides what req.ip is. */
  trustProxy: boolean | number | string;
  requestTimeoutMs: number;
  /** Off (null) unless set, so scaled workers on one host do not fight over a port. */
  workerMetricsPort: number | null;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  // An empty variable (FOO= in a compose file) means "use the default", not "0" or "".
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(env)'}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  return {
    port: e.PORT,
    amqpNodes: e.AMQP_URL,
    amqpFailover: e.AMQP_FAILOVER,
    amqpPrefix: e.AMQP_PREFIX,
    database: e.DATABASE_URL.kind === 'postgres' ? { ...e.DATABASE_URL, poolMax: e.PG_POOL_MAX } : e.DATABASE_URL,
    sqliteBusyTimeoutMs: e.SQLITE_BUSY_TIMEOUT_MS,
    logLevel: e.LOG_LEVEL,
    workerPrefetch: e.WORKER_PREFETCH,
    notifyLatencyMs: e.NOTIFY_LATENCY_MS,
    seedDemoAccounts: e.SEED_DEMO_ACCOUNTS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    outboxLeaseMs: e.OUTBOX_LEASE_MS,
    outboxSweepIntervalMs: e.OUTBOX_SWEEP_INTERVAL_MS,
    deliveryLimit: e.DELIVERY_LIMIT,
    quorumReplicas: e.QUORUM_REPLICAS,
    apiProcesses: e.API_PROCESSES,
    retry: { delaysMs: e.RETRY_DELAYS_MS, maxAttempts: e.MAX_ATTEMPTS },
    providers: {
      email:
        e.EMAIL_PROVIDER === 'smtp'
          ? { kind: 'smtp', url: e.SMTP_URL!, from: e.EMAIL_FROM, maxConnections: e.SMTP_MAX_CONNECTIONS ?? e.WORKER_PREFETCH }
          : { kind: 'simulated' },
      sms:
        e.SMS_PROVIDER === 'webhook'
          ? { kind: 'webhook', url: e.SMS_WEBHOOK_URL!, token: e.SMS_WEBHOOK_TOKEN ?? null, maxConnections: e.SMS_MAX_CONNECTIONS ?? e.WORKER_PREFETCH }
          : { kind: 'simulated' },
      timeoutMs: e.PROVIDER_TIMEOUT_MS,
      failureRate: e.NOTIFY_FAILURE_RATE,
    },
    authDisabled: e.AUTH_DISABLED,
    rateLimit: { windowMs: e.RATE_LIMIT_WINDOW_MS, perKey: e.RATE_LIMIT_PER_KEY, perIp: e.RATE_LIMIT_PER_IP },
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    workerMetricsPort: e.WORKER_METRICS_PORT ?? null,
  };
}

function parseTrustProxy(value: string): boolean | number | string {
  if (value === 'true' || value === 'false') return value === 'true';
  return /^\d+$/.test(value) ? Number(value) : value;
}

/**
 * How npm started this process, if it did: `npm run <event>` runs `<script>`. The
 * CLI tools read it to print their usage in the form that started them.
 */
export function npmScript(env: Env = process.env): { event: string; script: string } | null {
  const { npm_lifecycle_event: event, npm_lifecycle_script: script } = env;
  return event && script ? { event, script } : null;
}

/** The environment a child process of ours inherits; tests and the launcher spawn processes with it. */
export function inheritedEnv(overrides: Env = {}): Env {
  return { ...process.env, ...overrides };
}
