import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import pg from 'pg';
import { inheritedEnv } from '../../shared/runtime/config.js';
import { MANAGEMENT_URL, managementProbe } from './management.js';
import { AMQP_URL, PG_ADMIN_URL } from './namespace.js';
import { SetupError, clusterOnPort, isLocal, prepareServices, type Probe, type Service } from './service-setup.js';

/**
 * Mocha's global setup for `npm test` (see .mocharc.json): makes sure RabbitMQ,
 * its management HTTP API and PostgreSQL answer before any suite runs, starting
 * the local ones that are installed but stopped, as a fresh machine needs. When
 * all three answer it costs three quick probes. When it cannot prepare one, the
 * run stops at once with one line naming the command that fixes it.
 */
const exec = promisify(execFile);

const installed = (command: string) =>
  (inheritedEnv().PATH ?? '/usr/bin:/bin').split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });

const REFUSED = /ECONNREFUSED|ECONNRESET|ENOENT|socket hang up|connect.*refused/i;

async function probe(attempt: () => Promise<unknown>): Promise<Probe> {
  try {
    await attempt();
    return { up: true };
  } catch (error) {
    const reason = (error as Error).message || String(error);
    const code = (error as { code?: unknown; cause?: { code?: unknown } }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
    return { up: false, reason, refused: REFUSED.test(`${String(code)} ${reason}`) };
  }
}

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string) =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms).unref())]);

export function suiteServices(): Service[] {
  const rabbitmq: Service = {
    name: 'RabbitMQ',
    where: redact(AMQP_URL),
    probe: () =>
      probe(async () => {
        const connection = await withTimeout(amqp.connect(AMQP_URL), 5000, 'AMQP connect');
        connection.on('error', () => undefined);
        await connection.close();
      }),
    startCommands: async () => {
      if (!isLocal(AMQP_URL) || !installed('rabbitmq-server')) return null;
      // The local node is running, so AMQP_URL points elsewhere: starting another node would not help.
      if (await exec('rabbitmq-diagnostics', ['-q', 'ping'], { timeout: 60_000 }).then(() => true, () => false)) return null;
      return [
        ['rabbitmq-server', '-detached'],
        ['rabbitmqctl', 'await_startup', '--timeout', '120'],
      ];
    },
    fix: 'rabbitmq-server -detached && rabbitmqctl await_startup (or point AMQP_URL at a running RabbitMQ)',
    readyWithinMs: 30_000,
  };
  const management: Service = {
    name: "RabbitMQ's management HTTP API",
    where: redact(MANAGEMENT_URL),
    probe: () => probe(managementProbe),
    startCommands: async () => (isLocal(MANAGEMENT_URL) && installed('rabbitmq-plugins') ? [['rabbitmq-plugins', 'enable', 'rabbitmq_management']] : null),
    fix: 'rabbitmq-plugins enable rabbitmq_management (or set RABBITMQ_MANAGEMENT_URL)',
    readyWithinMs: 60_000,
  };
  const postgres: Service = {
    name: 'PostgreSQL',
    where: redact(PG_ADMIN_URL),
    probe: () =>
      probe(async () => {
        const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000 });
        client.on('error', () => undefined);
        try {
          await client.connect();
          await client.query('SELECT 1');
        } finally {
          await client.end().catch(() => undefined);
        }
      }),
    startCommands: async () => {
      if (!isLocal(PG_ADMIN_URL) || !installed('pg_lsclusters') || !installed('pg_ctlcluster')) return null;
      const { stdout } = await exec('pg_lsclusters', ['--no-header']);
      const cluster = clusterOnPort(stdout, Number(new URL(PG_ADMIN_URL).port || 5432));
      return cluster ? [['pg_ctlcluster', '--skip-systemctl-redirect', cluster.version, cluster.name, 'start']] : null;
    },
    fix: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start (or point TEST_PG_URL at a running PostgreSQL)',
    readyWithinMs: 30_000,
  };
  return [rabbitmq, management, postgres];
}

const redact = (url: string) => url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');

export async function mochaGlobalSetup(): Promise<void> {
  try {
    await prepareServices(suiteServices(), {
      run: async (argv) => {
        await exec(argv[0]!, argv.slice(1), { timeout: 180_000 });
      },
      say: (line) => process.stderr.write(`${line}\n`),
    });
  } catch (error) {
    if (!(error instanceof SetupError)) throw error;
    // One line, no stack: the fix is the whole story.
    process.stderr.write(`\n${error.message}\n`);
    process.exit(1);
  }
}
