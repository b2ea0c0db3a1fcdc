import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import amqp from 'amqplib';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { deleteTopology, topologyOf } from '../shared/broker/topology.js';
import { DEMO_API_KEYS } from '../shared/domain/demo-accounts.js';
import { inheritedEnv, loadConfig } from '../shared/runtime/config.js';
import { management, MANAGEMENT_URL } from '../test/support/management.js';
import { ServiceProcess } from '../test/support/processes.js';
import { waitFor } from '../test/support/wait.js';

/**
 * npm run screenshots: takes the README's pictures again after a change.
 *  - docs/screenshots/swagger-ui.png: /docs of a running API;
 *  - docs/screenshots/rabbitmq-queues.png: the management UI's Queues page while
 *    4 workers drain a backlog of BACKLOG transfers queued with no worker running.
 * It starts an API and 4 workers as processes, with a fresh AMQP_PREFIX and a scratch
 * SQLite file, drives Debian's chromium (CHROMIUM_PATH; `apt-get install chromium`)
 * through playwright-core, and removes its queues, exchanges and files at the end.
 * Needs the RabbitMQ at AMQP_URL with its management plugin (RABBITMQ_MANAGEMENT_URL).
 */
const env = inheritedEnv();
const CHROMIUM = env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const AMQP_URL = env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const OUT = fileURLToPath(new URL('../docs/screenshots/', import.meta.url));
const BACKLOG = 3000;
const WORKERS = 4;

const say = (line: string) => process.stdout.write(`screenshots: ${line}\n`);

async function main(): Promise<void> {
  const id = `shots-${Date.now().toString(36)}`;
  const dbFile = path.join(tmpdir(), `async-transfers-${id}.db`);
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'async-transfers-chromium-'));
  const runEnv = {
    AMQP_URL,
    AMQP_PREFIX: id,
    DATABASE_URL: `sqlite:${dbFile}`,
    PORT: '0',
    LOG_LEVEL: 'info',
    SEED_DEMO_ACCOUNTS: 'true',
    RATE_LIMIT_PER_KEY: '1000000',
    RATE_LIMIT_PER_IP: '1000000',
    // Slow enough sends that the drain lasts long enough to watch: 4 workers × 16 in hand × 2 sends of 250 ms.
    NOTIFY_LATENCY_MS: '250',
    WORKER_PREFETCH: '16',
  };
  const topology = topologyOf(loadConfig(runEnv));
  const processes: ServiceProcess[] = [];
  let browser: BrowserContext | null = null;
  try {
    const api = new ServiceProcess('api', runEnv);
    processes.push(api);
    const base = `http://127.0.0.1:${await api.port()}`;
    say(`API at ${base}, AMQP_PREFIX=${id}`);

    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1280, height: 900 },
    });
    const page = await browser.newPage();
    mkdirSync(OUT, { recursive: true });

    await page.goto(`${base}/docs/`);
    await page.waitForSelector('.swagger-ui .opblock-summary');
    await page.waitForLoadState('networkidle');
    await page.screenshot({ path: path.join(OUT, 'swagger-ui.png'), clip: await above(page, '.opblock-tag-section') });
    say('docs/screenshots/swagger-ui.png');

    await queueBacklog(base);
    await waitFor(`${BACKLOG} messages ready in ${topology.workQueue}`, async () => (await readyCount(topology.workQueue)) >= BACKLOG, { timeoutMs: 120_000, intervalMs: 250 });
    say(`${BACKLOG} transfers queued with no worker running`);

    await openQueuesPage(page, id);
    for (let i = 0; i < WORKERS; i++) processes.push(new ServiceProcess('worker', runEnv));
    await Promise.all(processes.slice(1).map((w) => w.waitForLog('consuming', (l) => l.message === 'consuming')));
    say(`${WORKERS} workers consuming`);

    // The management API samples every few seconds; wait until it shows the drain under way, then load the page with those numbers.
    await waitFor(
      'the management API to show 4 consumers draining',
      async () => {
        const q = await management<{ consumers: number; messages_ready: number; messages_unacknowledged: number; message_stats?: { ack_details?: { rate: number } } }>(
          `/queues/%2F/${encodeURIComponent(topology.workQueue)}`,
        );
        return q.consumers === WORKERS && q.messages_unacknowledged > 0 && q.messages_ready < BACKLOG * 0.9 && q.messages_ready > BACKLOG * 0.2 && (q.message_stats?.ack_details?.rate ?? 0) > 0;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    await openQueuesPage(page, id);
    await page.screenshot({ path: path.join(OUT, 'rabbitmq-queues.png'), clip: await above(page, '#footer') });
    say('docs/screenshots/rabbitmq-queues.png');
  } finally {
    await browser?.close().catch(() => undefined);
    for (const p of processes) p.kill('SIGTERM');
    await Promise.all(processes.map((p) => Promise.race([p.exited, new Promise((resolve) => setTimeout(resolve, 15_000))])));
    await Promise.all(processes.map((p) => p.dispose()));
    const connection = await amqp.connect(AMQP_URL);
    connection.on('error', () => undefined);
    await deleteTopology(connection, topology);
    await connection.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbFile}${suffix}`, { force: true });
    rmSync(userDataDir, { recursive: true, force: true });
    say(`removed ${id}'s queues and exchanges, its database and the browser profile`);
  }
}

/** The page from its top down to the bottom of `selector`, a little margin included. */
async function above(page: Page, selector: string): Promise<{ x: number; y: number; width: number; height: number }> {
  const box = await page.locator(selector).first().boundingBox();
  if (!box) throw new Error(`${selector} is not on the page`);
  return { x: 0, y: 0, width: page.viewportSize()!.width, height: Math.ceil(box.y + box.height + 16) };
}

/** BACKLOG small transfers from user-A, a few at a time. */
async function queueBacklog(base: string): Promise<void> {
  let next = 0;
  const post = async () => {
    while (next < BACKLOG) {
      next++;
      const res = await fetch(`${base}/transfer`, {
        method: 'POST',
        headers: { authorization: `Bearer ${DEMO_API_KEYS['user-A']}`, 'content-type': 'application/json' },
        body: JSON.stringify({ fromAccount: 'user-A', toAccount: 'user-B', amount: '0.01' }),
      });
      if (res.status !== 202) throw new Error(`POST /transfer answered ${res.status}: ${await res.text()}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, post));
}

async function readyCount(queue: string): Promise<number> {
  const connection = await amqp.connect(AMQP_URL);
  connection.on('error', () => undefined);
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    return (await channel.checkQueue(queue)).messageCount;
  } finally {
    await connection.close();
  }
}

/** Logs in (once), shows the Queues page with a Consumers column, filtered to this run's prefix. */
async function openQueuesPage(page: Page, prefix: string): Promise<void> {
  const ui = new URL(MANAGEMENT_URL);
  const origin = ui.origin;
  await page.goto(`${origin}/#/queues`);
  const login = await page.$('input[name=username]');
  if (login) {
    await page.fill('input[name=username]', decodeURIComponent(ui.username));
    await page.fill('input[name=password]', decodeURIComponent(ui.password));
    await page.click('input[type=submit]');
    await page.waitForSelector('#queues-name');
    await page.click('.popup-options-link[for=queues]');
    const consumers = page.locator('#checkbox-queues-consumers');
    if (!(await consumers.isChecked())) await consumers.check();
    await page.getByText('Close', { exact: true }).click();
    await page.locator('.form-popup-options').waitFor({ state: 'hidden' });
  }
  await page.waitForSelector('#queues-name');
  await page.fill('#queues-name', prefix);
  await page.press('#queues-name', 'Enter');
  const rows = page.locator('table.list tbody tr');
  await waitFor('the queue list filtered to this run', async () => {
    const shown = await rows.count();
    return shown > 0 && shown === (await rows.filter({ hasText: prefix }).count());
  });
  await page.mouse.move(0, 0);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`screenshots failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
