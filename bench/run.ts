import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import amqp from 'amqplib';
import { issueApiKey } from '../shared/domain/api-keys.js';
import { deleteTopology, topologyOf } from '../shared/broker/topology.js';
import { inheritedEnv, loadConfig } from '../shared/runtime/config.js';
import { openStore } from '../shared/store/index.js';
import { apiProcessesRows, measureApiProcesses, type ApiProcessesResult } from './lib/api-processes.js';
import { brokerCeiling } from './lib/broker-ceiling.js';
import { load, paced, type LoadResult } from './lib/load.js';
import { measureRealProviders, realProviderRows } from './lib/real-providers.js';
import { Service } from './lib/services.js';
import { round, summary } from './lib/stats.js';

/**
 * npm run bench: starts the real system (broker, API and worker processes, the
 * default store or DATABASE_URL) and measures, in one run, what the README's
 * benchmark table shows. Prints the table and writes bench/results.json.
 */

const { values: flags } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } });
if (flags.only !== undefined && flags.only !== 'real-providers') throw new Error('--only takes one section: real-providers');
const QUICK = flags.quick;
const SIZES = {
  durationS: QUICK ? 4 : 10,
  warmupS: QUICK ? 1 : 3,
  connections: 64,
  e2eRate: 200,
  drainBacklog: QUICK ? 4000 : 20_000,
  rssBacklogs: QUICK ? [2000, 10_000] : [2000, 50_000],
  realDrain1: QUICK ? 600 : 2000,
  realDrain4: QUICK ? 1600 : 6000,
  realCrash: 200,
  prefetch: 16,
  brokerMessages: QUICK ? 5000 : 20_000,
};

const env = inheritedEnv();
const runId = `bench-${Date.now().toString(36)}`;
const scratch = path.join(os.tmpdir(), runId);
mkdirSync(scratch, { recursive: true });
const databaseUrl = env.DATABASE_URL ?? `sqlite:${path.join(scratch, 'bench.db')}`;
const amqpUrl = env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const baseEnv: Record<string, string> = {
  AMQP_URL: amqpUrl,
  AMQP_PREFIX: runId,
  DATABASE_URL: databaseUrl,
  PORT: '0',
  LOG_LEVEL: 'info',
  SEED_DEMO_ACCOUNTS: 'true',
  // The benchmark is the only client: it must measure the service, not the limiter refusing it.
  RATE_LIMIT_PER_KEY: '10000000',
  RATE_LIMIT_PER_IP: '10000000',
  NOTIFY_LATENCY_MS: '0',
  WORKER_PREFETCH: String(SIZES.prefetch),
};
const config = loadConfig(baseEnv);
const topology = topologyOf(config);

const log = (text: string) => process.stdout.write(`${text}\n`);

/**
 * The API and the worker run compiled, as the image runs them (node dist/...): what
 * is measured is the service, not TypeScript being compiled at every start.
 */
const ENTRY = { api: 'dist/api/main.js', worker: 'dist/worker/main.js' };
log('building (npm run build) ...');
execFileSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' });
const services: Service[] = [];
function start(name: string, entry: string, overrides: Record<string, string> = {}): Service {
  const service = new Service(name, entry, { ...baseEnv, ...overrides });
  services.push(service);
  return service;
}

// --- 200 accounts, each with its own key as each client would have, so transfers
// do not all queue on one row and every request authenticates like a real one.
const ACCOUNTS = Array.from({ length: 200 }, (_, i) => `bench-${i}`);
const tokens = new Map<string, string>();
let readerToken = '';
async function seed(): Promise<void> {
  const store = await openStore(config);
  try {
    await store.seedAccounts(
      ACCOUNTS.map((id) => ({ id, ownerName: `Bench ${id}`, email: `${id}@bench.example`, phone: '+15550000000', currency: 'USD', balanceMinor: 100_000_000 })),
    );
    for (const id of ACCOUNTS) tokens.set(id, (await issueApiKey(store, [id], { label: 'benchmark' })).token);
    readerToken = (await issueApiKey(store, ACCOUNTS, { label: 'benchmark reader' })).token;
  } finally {
    await store.close();
  }
}
const pick = () => ACCOUNTS[Math.floor(Math.random() * ACCOUNTS.length)]!;
function transfer(): { body: { fromAccount: string; toAccount: string; amount: string }; headers: Record<string, string> } {
  const from = pick();
  let to = pick();
  while (to === from) to = pick();
  return { body: { fromAccount: from, toAccount: to, amount: '0.01' }, headers: { authorization: `Bearer ${tokens.get(from)}` } };
}
const reader = () => ({ authorization: `Bearer ${readerToken}` });

async function startApi(): Promise<{ service: Service; url: string }> {
  const service = start('api', ENTRY.api);
  const { port } = (await service.ready('API listening')) as { port: number };
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100 && (await fetch(`${url}/ready`)).status !== 200; i++) await sleep(100);
  return { service, url };
}

async function startWorkers(count: number, overrides: Record<string, string>): Promise<{ workers: Service[]; ports: number[] }> {
  const workers = Array.from({ length: count }, (_, i) => start(`worker-${i}`, ENTRY.worker, { WORKER_METRICS_PORT: '0', ...overrides }));
  const ports = await Promise.all(workers.map(async (w) => ((await w.ready('worker metrics listening')) as { port: number }).port));
  await Promise.all(workers.map((w) => w.ready('"consuming"')));
  return { workers, ports };
}

/** Deliveries completed by the given workers, from their /metrics. */
async function completed(ports: number[]): Promise<number> {
  let total = 0;
  for (const port of ports) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('worker_messages_total{outcome="completed"}'));
    total += line ? Number(line.split(' ')[1]) : 0;
  }
  return total;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let inspector: { connection: amqp.ChannelModel; channel: amqp.Channel } | null = null;
async function channel(): Promise<amqp.Channel> {
  if (!inspector) {
    const connection = await amqp.connect(amqpUrl);
    connection.on('error', () => undefined);
    const ch = await connection.createChannel();
    ch.on('error', () => undefined);
    inspector = { connection, channel: ch };
  }
  return inspector.channel;
}
const queued = async () => (await (await channel()).checkQueue(topology.workQueue)).messageCount;

/** POSTs `count` transfers as fast as 64 connections go and waits until all are in the work queue. */
async function backlog(url: string, count: number): Promise<void> {
  const before = await queued();
  await load({ url: `${url}/transfer`, connections: SIZES.connections, amount: count, request: transfer });
  const deadline = Date.now() + 120_000;
  while ((await queued()) < before + count) {
    if (Date.now() > deadline) throw new Error('the relay did not publish the backlog');
    await sleep(100);
  }
}

async function cleanup(): Promise<void> {
  await Promise.all(services.map((s) => s.stop().catch(() => undefined)));
  try {
    await channel();
    await deleteTopology(inspector!.connection, topology);
    await inspector?.connection.close();
  } catch {
    // The broker may be gone; nothing more to tidy there.
  }
  rmSync(scratch, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------

interface Results {
  machine: Record<string, unknown>;
  ceiling: { express: LoadResult & { cpuMicrosPerRequest: number }; broker: { messagesPerSecond: number } };
  post: LoadResult & { ratioToCeiling: number; cpuMicrosPerRequest: number };
  endToEnd: { rate: number; p50Ms: number; p99Ms: number; count: number };
  drain: { workers: number; sendMs: number; messagesPerSecond: number; idealPerSecond: number | null; ofIdeal: number | null }[];
  asyncVsInline: { notifyLatencyMs: number; inline: LoadResult; async: LoadResult; fasterAnswers: number; throughputRatio: number };
  rss: { backlog: number; apiMiB: number; workerMiB: number; workerHeapUsedMiB: number; workerNewSpaceMiB: number }[];
  /** POST /transfer with API_PROCESSES=1 and 2; PostgreSQL only. */
  apiProcesses: ApiProcessesResult[];
  /** The worker against an SMTP server and an HTTP gateway taking 200 ms a send. */
  realProviders: Awaited<ReturnType<typeof measureRealProviders>>;
  targets: { name: string; value: string; target: string; met: boolean }[];
}

async function measureCpu<T>(service: Service, work: () => Promise<T & { total: number }>): Promise<T & { total: number; cpuMicrosPerRequest: number }> {
  const before = service.cpuSeconds();
  const result = await work();
  return { ...result, cpuMicrosPerRequest: round(((service.cpuSeconds() - before) * 1e6) / result.total, 0) };
}

/** The worker against an SMTP server and an HTTP gateway that take 200 ms a send (npm run bench -- --only real-providers). */
async function realProvidersSection(): Promise<Results['realProviders']> {
  log('real providers (SMTP + HTTP, 200 ms a send): drain with 1 and 4 workers, then a worker killed -9 ...');
  const api = await startApi();
  const realProviders = await measureRealProviders(
    {
      prefetch: SIZES.prefetch,
      backlog: (count) => backlog(api.url, count),
      purge: async () => void (await (await channel()).purgeQueue(topology.workQueue)),
      startWorkers,
      completed,
      statuses: async (id) => {
        const view = (await (await fetch(`${api.url}/transfers/${id}`, { headers: reader() })).json()) as { notifications: { channel: string; status: string }[] };
        return Object.fromEntries(view.notifications.map((n) => [n.channel, n.status]));
      },
      startProviders: async () => {
        const service = start('providers', 'bench/servers/providers.ts');
        const { smtpPort, httpPort } = (await service.ready('listening')) as { smtpPort: number; httpPort: number };
        return { service, smtpUrl: `smtp://127.0.0.1:${smtpPort}`, gatewayUrl: `http://127.0.0.1:${httpPort}/messages`, sendsUrl: `http://127.0.0.1:${httpPort}/sends` };
      },
    },
    { drain1: SIZES.realDrain1, drain4: SIZES.realDrain4, crash: SIZES.realCrash },
  );
  await api.service.stop();
  return realProviders;
}

async function main(): Promise<Results> {
  await seed();
  const machine = {
    cpu: `${os.cpus()[0]?.model ?? 'unknown'} × ${os.cpus().length}`,
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    store: config.database.kind,
    broker: await (async () => {
      const ch = await channel();
      return `RabbitMQ ${String((ch.connection as unknown as { serverProperties: { version: string } }).serverProperties.version)}`;
    })(),
    quick: QUICK,
  };
  log(`machine: ${machine.cpu}, ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.broker}, store ${machine.store}${QUICK ? ' (quick)' : ''}`);

  // 1. Ceilings
  log('ceiling: trivial Express endpoint ...');
  const ceilingServer = start('ceiling', 'bench/servers/ceiling.ts');
  const { port: ceilingPort } = (await ceilingServer.ready('listening')) as { port: number };
  const ceilingUrl = `http://127.0.0.1:${ceilingPort}/transfer`;
  await load({ url: ceilingUrl, connections: SIZES.connections, durationS: SIZES.warmupS, request: transfer });
  const express = await measureCpu(ceilingServer, () => load({ url: ceilingUrl, connections: SIZES.connections, durationS: SIZES.durationS, request: transfer }));
  await ceilingServer.stop();
  log('ceiling: RabbitMQ persistent + confirms -> quorum queue -> consume + ack ...');
  const broker = await brokerCeiling(amqpUrl, `${runId}.ceiling`, { messages: SIZES.brokerMessages, bytes: 420 });

  // 2. POST /transfer at 64 connections (workers stopped: they run elsewhere; the queue just grows)
  log('POST /transfer at 64 connections ...');
  let api = await startApi();
  await load({ url: `${api.url}/transfer`, connections: SIZES.connections, durationS: SIZES.warmupS, request: transfer });
  const postRun = await measureCpu(api.service, () => load({ url: `${api.url}/transfer`, connections: SIZES.connections, durationS: SIZES.durationS, request: transfer }));
  const post = { ...postRun, ratioToCeiling: round(postRun.requestsPerSecond / express.requestsPerSecond, 2) };
  await sleep(2000);
  await (await channel()).purgeQueue(topology.workQueue);

  // 3. End to end: 202 -> both notifications recorded sent, zero send time, steady rate
  log(`end-to-end latency at ${SIZES.e2eRate} transfers/s ...`);
  const e2eWorkers = await startWorkers(1, { NOTIFY_LATENCY_MS: '0' });
  const answered: { id: string; at: number }[] = [];
  await paced({
    url: `${api.url}/transfer`,
    rate: SIZES.e2eRate,
    durationS: SIZES.durationS,
    request: transfer,
    onResponse: (status, body) => {
      if (status === 202) answered.push({ id: (JSON.parse(body) as { transferId: string }).transferId, at: Date.now() });
    },
  });
  const e2e: number[] = [];
  for (const { id, at } of answered) {
    for (let tries = 0; ; tries++) {
      const view = (await (await fetch(`${api.url}/transfers/${id}`, { headers: reader() })).json()) as { status: string; notifications: { updatedAt: string }[] };
      if (view.status === 'notified') {
        e2e.push(Math.max(...view.notifications.map((n) => Date.parse(n.updatedAt))) - at);
        break;
      }
      if (tries > 200) throw new Error(`transfer ${id} never got notified`);
      await sleep(50);
    }
  }
  const e2eSummary = summary(e2e);
  await Promise.all(e2eWorkers.workers.map((w) => w.stop()));

  // 4. Draining a backlog with 1 and 4 workers, 0 and 50 ms sends
  const drain: Results['drain'] = [];
  for (const sendMs of [0, 50]) {
    for (const workers of [1, 4]) {
      log(`drain: ${SIZES.drainBacklog} transfers, ${workers} worker(s), ${sendMs} ms sends ...`);
      await (await channel()).purgeQueue(topology.workQueue);
      await backlog(api.url, SIZES.drainBacklog);
      const { workers: running, ports } = await startWorkers(workers, { NOTIFY_LATENCY_MS: String(sendMs) });
      const samples: { t: number; done: number }[] = [];
      for (;;) {
        const done = await completed(ports);
        samples.push({ t: performance.now(), done });
        if (done >= SIZES.drainBacklog) break;
        await sleep(100);
      }
      // The steady middle of the drain: start-up and the last stragglers do not count.
      const at = (share: number) => samples.find((s) => s.done >= share * SIZES.drainBacklog)!.t;
      const messagesPerSecond = (0.8 * SIZES.drainBacklog) / ((at(0.9) - at(0.1)) / 1000);
      const idealPerSecond = sendMs > 0 ? (workers * SIZES.prefetch) / (sendMs / 1000) : null;
      drain.push({
        workers,
        sendMs,
        messagesPerSecond: round(messagesPerSecond, 0),
        idealPerSecond,
        ofIdeal: idealPerSecond ? round(messagesPerSecond / idealPerSecond, 2) : null,
      });
      await Promise.all(running.map((w) => w.stop()));
    }
  }

  // 5. What going async buys: the same transfer with both sends inline, against 202
  const notifyLatencyMs = 200;
  log(`async vs inline (${notifyLatencyMs} ms per send) ...`);
  const inlineServer = start('inline', 'bench/servers/inline.ts', { NOTIFY_LATENCY_MS: String(notifyLatencyMs) });
  const { port: inlinePort } = (await inlineServer.ready('listening')) as { port: number };
  const inline = await load({ url: `http://127.0.0.1:${inlinePort}/transfer`, connections: SIZES.connections, durationS: SIZES.durationS, request: transfer });
  await inlineServer.stop();
  const asyncSide = await load({ url: `${api.url}/transfer`, connections: SIZES.connections, durationS: SIZES.durationS, request: transfer });
  await api.service.stop();
  await sleep(500);
  await (await channel()).purgeQueue(topology.workQueue);

  // 6. Peak RSS with a backlog of 2,000 and of 50,000
  const rss: Results['rss'] = [];
  for (const size of SIZES.rssBacklogs) {
    log(`peak RSS with a backlog of ${size} ...`);
    api = await startApi();
    await backlog(api.url, size);
    const apiMiB = round(api.service.peakRssBytes() / 2 ** 20, 1);
    await api.service.stop();
    const { workers, ports } = await startWorkers(1, { NOTIFY_LATENCY_MS: '0' });
    while ((await completed(ports)) < size) await sleep(200);
    const workerMiB = round(workers[0]!.peakRssBytes() / 2 ** 20, 1);
    // What the peak is made of: the heap in use, and V8's young generation, which it grows under
    // sustained allocation (prom-client's default metrics).
    const metrics = await (await fetch(`http://127.0.0.1:${ports[0]}/metrics`)).text();
    const mib = (re: RegExp) => round(Number(re.exec(metrics)?.[1] ?? NaN) / 2 ** 20, 1);
    const workerHeapUsedMiB = mib(/^nodejs_heap_size_used_bytes (\S+)$/m);
    const workerNewSpaceMiB = mib(/^nodejs_heap_space_size_total_bytes\{space="new"\} (\S+)$/m);
    await workers[0]!.stop();
    rss.push({ backlog: size, apiMiB, workerMiB, workerHeapUsedMiB, workerNewSpaceMiB });
  }

  // 7. Real providers at their real speed: drain, and a worker killed mid-stream
  const realProviders = await realProvidersSection();

  // 8. Several API processes on one machine (PostgreSQL: the store they can share)
  let apiProcesses: ApiProcessesResult[] = [];
  if (config.database.kind === 'postgres') {
    log('POST /transfer with API_PROCESSES=1 and 2 ...');
    apiProcesses = await measureApiProcesses({
      start,
      request: transfer,
      connections: SIZES.connections,
      warmupS: SIZES.warmupS,
      durationS: SIZES.durationS,
      purge: async () => {
        await sleep(500);
        await (await channel()).purgeQueue(topology.workQueue);
      },
    });
  }

  const d = (w: number, s: number) => drain.find((x) => x.workers === w && x.sendMs === s)!;
  const speedup50 = round(d(4, 50).messagesPerSecond / d(1, 50).messagesPerSecond, 2);
  const rssRatio = round(rss.at(-1)!.workerMiB / rss[0]!.workerMiB, 2);
  const targets: Results['targets'] = [
    { name: 'POST /transfer vs Express ceiling', value: `${post.ratioToCeiling}×`, target: '≥ 0.6×', met: post.ratioToCeiling >= 0.6 },
    { name: 'POST /transfer p99 at 64 connections', value: `${post.p99Ms} ms`, target: '≤ 25 ms', met: post.p99Ms <= 25 },
    { name: 'end-to-end p50', value: `${e2eSummary.p50} ms`, target: '≤ 20 ms', met: e2eSummary.p50 <= 20 },
    { name: '4 workers vs 1, 50 ms sends', value: `${speedup50}×`, target: '≥ 3.5×', met: speedup50 >= 3.5 },
    { name: '4 workers, 50 ms sends, of ideal', value: `${Math.round((d(4, 50).ofIdeal ?? 0) * 100)}%`, target: '≥ 80%', met: (d(4, 50).ofIdeal ?? 0) >= 0.8 },
    { name: `worker peak RSS, backlog ${rss.at(-1)!.backlog} vs ${rss[0]!.backlog}`, value: `${rssRatio}×`, target: '≤ 1.2×', met: rssRatio <= 1.2 },
    ...realProviders.drain.map((x) => ({
      name: `${x.workers} worker${x.workers > 1 ? 's' : ''}, real providers, of ${x.idealPerSecond}/s`,
      value: `${Math.round(x.ofIdeal * 100)}%`,
      target: '≥ 90%',
      met: x.ofIdeal >= 0.9,
    })),
    { name: 'crash: lost', value: String(realProviders.crash.lost), target: '0', met: realProviders.crash.lost === 0 },
    {
      name: 'crash: repeated sends vs sends in flight at the kill',
      value: `${realProviders.crash.repeats} vs ${realProviders.crash.inFlightAtKill}`,
      target: '≤ in flight',
      met: realProviders.crash.repeats <= realProviders.crash.inFlightAtKill,
    },
    { name: 'crash: kill to all sent', value: `${(realProviders.crash.killToAllSentMs / 1000).toFixed(1)} s`, target: '≤ 3 s', met: realProviders.crash.killToAllSentMs <= 3000 },
    { name: 'crash: fresh worker start to first send', value: `${realProviders.crash.startToFirstSendMs} ms`, target: '≤ 1 s', met: realProviders.crash.startToFirstSendMs <= 1000 },
  ];
  return {
    machine,
    ceiling: { express, broker: { messagesPerSecond: round(broker.messagesPerSecond, 0) } },
    post,
    endToEnd: { rate: SIZES.e2eRate, p50Ms: e2eSummary.p50, p99Ms: e2eSummary.p99, count: e2eSummary.count },
    drain,
    asyncVsInline: {
      notifyLatencyMs,
      inline,
      async: asyncSide,
      fasterAnswers: round(inline.p50Ms / asyncSide.p50Ms, 1),
      throughputRatio: round(asyncSide.requestsPerSecond / inline.requestsPerSecond, 1),
    },
    rss,
    apiProcesses,
    realProviders,
    targets,
  };
}

function report(r: Results): string {
  const rps = (n: number) => Math.round(n).toLocaleString('en-US');
  const lines = [
    '',
    `| Measure | Result |`,
    `| --- | --- |`,
    `| Express ceiling (trivial 202), 64 connections | ${rps(r.ceiling.express.requestsPerSecond)} req/s, p50 ${r.ceiling.express.p50Ms} ms, p99 ${r.ceiling.express.p99Ms} ms, ${r.ceiling.express.cpuMicrosPerRequest} µs CPU/req |`,
    `| RabbitMQ ceiling (persistent, confirms, quorum queue, acks) | ${rps(r.ceiling.broker.messagesPerSecond)} msg/s |`,
    `| POST /transfer, 64 connections | ${rps(r.post.requestsPerSecond)} req/s (${r.post.ratioToCeiling}× ceiling), p50 ${r.post.p50Ms} ms, p99 ${r.post.p99Ms} ms, ${r.post.cpuMicrosPerRequest} µs CPU/req, ${r.post.non2xx} non-2xx |`,
    `| End to end (202 → both sent), ${r.endToEnd.rate}/s, 0 ms sends | p50 ${r.endToEnd.p50Ms} ms, p99 ${r.endToEnd.p99Ms} ms (${r.endToEnd.count} transfers) |`,
    ...r.drain.map(
      (x) =>
        `| Drain ${x.workers} worker${x.workers > 1 ? 's' : ''}, ${x.sendMs} ms sends | ${rps(x.messagesPerSecond)} msg/s${x.idealPerSecond ? ` (ideal ${rps(x.idealPerSecond)}, ${Math.round((x.ofIdeal ?? 0) * 100)}%)` : ''} |`,
    ),
    `| Inline sends (${r.asyncVsInline.notifyLatencyMs} ms each), 64 connections | ${rps(r.asyncVsInline.inline.requestsPerSecond)} req/s, p50 ${r.asyncVsInline.inline.p50Ms} ms, p99 ${r.asyncVsInline.inline.p99Ms} ms |`,
    `| POST /transfer (async), same load | ${rps(r.asyncVsInline.async.requestsPerSecond)} req/s, p50 ${r.asyncVsInline.async.p50Ms} ms, p99 ${r.asyncVsInline.async.p99Ms} ms → ${r.asyncVsInline.fasterAnswers}× faster answers, ${r.asyncVsInline.throughputRatio}× throughput |`,
    ...r.rss.map((x) => `| Peak RSS, backlog ${x.backlog.toLocaleString('en-US')} | API ${x.apiMiB} MiB, worker ${x.workerMiB} MiB (heap in use ${x.workerHeapUsedMiB} MiB, young generation ${x.workerNewSpaceMiB} MiB) |`),
    ...realProviderRows(r.realProviders),
    ...apiProcessesRows(r.apiProcesses, SIZES.connections),
    '',
    `| Target | Measured | Wanted | |`,
    `| --- | --- | --- | --- |`,
    ...r.targets.map((t) => `| ${t.name} | ${t.value} | ${t.target} | ${t.met ? 'met' : 'MISSED'} |`),
    '',
  ];
  return lines.join('\n');
}

try {
  if (flags.only === 'real-providers') {
    await seed();
    log(['', '| Measure | Result |', '| --- | --- |', ...realProviderRows(await realProvidersSection()), ''].join('\n'));
  } else {
    const results = await main();
    log(report(results));
    // One file per store, so a PostgreSQL run (the only one with API_PROCESSES) does not replace the default run's.
    const out = path.join(import.meta.dirname, config.database.kind === 'postgres' ? 'results-postgres.json' : 'results.json');
    writeFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), ...results }, null, 2)}\n`);
    log(`wrote ${path.relative(process.cwd(), out)}`);
  }
} catch (error) {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
