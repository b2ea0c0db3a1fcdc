import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { Service } from './services.js';

/**
 * The worker against real providers at their real speed: an SMTP server and an
 * HTTP SMS gateway on loopback (bench/servers/providers.ts), 200 ms per send.
 *
 * - Drain: a queued backlog, 1 worker and 4 (prefetch 16): transfers/s against the
 *   ideal workers × prefetch / 200 ms.
 * - Crash: 200 transfers queued, one worker killed with -9 once 80 are fully sent,
 *   a fresh worker started at once. Counted at the providers: sends that reached
 *   them twice (repeats), against the sends in flight at the kill (at a provider,
 *   outcome not recorded), and the time from the kill until every notification had
 *   reached its provider, and from the fresh worker's start to its first send.
 */
export const PROVIDER_MS = 200;
/** The same crash case run on this machine with other queues, as reported in the issue that asked for this. */
export const ELSEWHERE = [
  { system: 'Celery (acks_late)', repeats: 9, seconds: 7.5 },
  { system: 'BullMQ', repeats: 16, seconds: 61 },
];

export interface RealDrain {
  workers: number;
  transfers: number;
  transfersPerSecond: number;
  idealPerSecond: number;
  ofIdeal: number;
  /** Mean time a send took, by channel, as the workers measured it (notification_send_duration_seconds). */
  sendMs: Record<string, number>;
  /** CPU the workers and the provider stand-ins used per transfer. */
  workerCpuMs: number;
  providersCpuMs: number;
  /** Share of the machine's CPU time (all cores, every process) that was busy during the drain. */
  machineBusy: number;
}

/** Busy and total CPU time of the whole machine so far, from /proc/stat (Linux). */
function machineCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  // idle and iowait are the time nothing ran.
  return { busy: total - fields[3]! - fields[4]!, total };
}

/** Mean send time by channel across the workers' /metrics. */
async function meanSendMs(ports: number[]): Promise<Record<string, number>> {
  const sums = new Map<string, { sum: number; count: number }>();
  for (const port of ports) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const m of text.matchAll(/^notification_send_duration_seconds_(sum|count)\{channel="(\w+)",result="sent"\} ([\d.e+-]+)$/gm)) {
      const entry = sums.get(m[2]!) ?? { sum: 0, count: 0 };
      entry[m[1] as 'sum' | 'count'] += Number(m[3]);
      sums.set(m[2]!, entry);
    }
  }
  return Object.fromEntries([...sums].map(([channel, e]) => [channel, Math.round((e.sum / e.count) * 1000)]));
}

export interface CrashResult {
  transfers: number;
  killedAfterSent: number;
  inFlightAtKill: number;
  repeats: number;
  lost: number;
  killToAllSentMs: number;
  startToFirstSendMs: number;
  /** How long after the fresh worker could first record an outcome the in-flight snapshot was read: 0, or the count may be low. */
  snapshotLateMs: number;
}

const DEAD_WORKER_MARGIN_MS = 100;

export interface RealProviderDeps {
  prefetch: number;
  /** POSTs `count` transfers and waits until they are all in the work queue. */
  backlog: (count: number) => Promise<void>;
  purge: () => Promise<void>;
  /** Starts `count` worker processes with these settings (metrics on), once they consume. */
  startWorkers: (count: number, env: Record<string, string>) => Promise<{ workers: Service[]; ports: number[] }>;
  /** Deliveries acked with everything done, from the workers' /metrics. */
  completed: (ports: number[]) => Promise<number>;
  /** Each channel's recorded status, read through the API. */
  statuses: (transferId: string) => Promise<Record<string, string>>;
  startProviders: () => Promise<{ service: Service; smtpUrl: string; gatewayUrl: string; sendsUrl: string }>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Send = { key: string; at: number };

export async function measureRealProviders(deps: RealProviderDeps, sizes: { drain1: number; drain4: number; crash: number }) {
  const providers = await deps.startProviders();
  const env = {
    EMAIL_PROVIDER: 'smtp',
    SMTP_URL: providers.smtpUrl,
    SMS_PROVIDER: 'webhook',
    SMS_WEBHOOK_URL: providers.gatewayUrl,
    WORKER_PREFETCH: String(deps.prefetch),
  };
  const sends = async (): Promise<Send[]> => (await fetch(providers.sendsUrl)).json() as Promise<Send[]>;
  const reset = () => fetch(providers.sendsUrl.replace('/sends', '/reset'), { method: 'POST' });
  try {
    const drain: RealDrain[] = [];
    for (const [workers, transfers] of [
      [1, sizes.drain1],
      [4, sizes.drain4],
    ] as const) {
      await deps.purge();
      await deps.backlog(transfers);
      const { workers: running, ports } = await deps.startWorkers(workers, env);
      const cpu = () => ({ workers: running.reduce((sum, w) => sum + w.cpuSeconds(), 0), providers: providers.service.cpuSeconds() });
      const cpuBefore = cpu();
      const machineBefore = machineCpu();
      const samples: { t: number; done: number }[] = [];
      for (;;) {
        const done = await deps.completed(ports);
        samples.push({ t: performance.now(), done });
        if (done >= transfers) break;
        await sleep(100);
      }
      const at = (share: number) => samples.find((s) => s.done >= share * transfers)!.t;
      const transfersPerSecond = (0.8 * transfers) / ((at(0.9) - at(0.1)) / 1000);
      const idealPerSecond = (workers * deps.prefetch * 1000) / PROVIDER_MS;
      drain.push({
        workers,
        transfers,
        transfersPerSecond: Math.round(transfersPerSecond),
        idealPerSecond,
        ofIdeal: Math.round((transfersPerSecond / idealPerSecond) * 100) / 100,
        sendMs: await meanSendMs(ports),
        workerCpuMs: Math.round(((cpu().workers - cpuBefore.workers) * 1e4) / transfers) / 10,
        providersCpuMs: Math.round(((cpu().providers - cpuBefore.providers) * 1e4) / transfers) / 10,
        machineBusy: ((m) => Math.round(((m.busy - machineBefore.busy) / (m.total - machineBefore.total)) * 100) / 100)(machineCpu()),
      });
      await Promise.all(running.map((w) => w.stop()));
    }

    // The crash case.
    await deps.purge();
    await reset();
    await deps.backlog(sizes.crash);
    const killAfter = Math.round(sizes.crash * 0.4);
    const doomed = await deps.startWorkers(1, env);
    while ((await deps.completed(doomed.ports)) < killAfter) await sleep(5);
    const killedAfterSent = await deps.completed(doomed.ports);
    doomed.workers[0]!.kill('SIGKILL');
    const killedAt = Date.now();
    await doomed.workers[0]!.exited;
    // In flight at the kill: sends that reached a provider from the dead worker (bytes already on
    // their way included) whose outcome it did not record. Its records are read while the fresh
    // worker starts, and must be read before that worker records anything (checked below), or a
    // repeat it records as sent would hide a send that was in flight.
    const startedAt = Date.now();
    const snapshot = (async () => {
      const ids = [...new Set((await sends()).map((s) => s.key.split(':')[0]!))];
      const recorded = new Map(await Promise.all(ids.map(async (id) => [id, await deps.statuses(id)] as const)));
      return { recorded, readBy: Date.now() };
    })();
    const [{ recorded, readBy }, fresh] = await Promise.all([snapshot, deps.startWorkers(1, env)]);
    const expected = sizes.crash * 2;
    let all: Send[] = [];
    for (const deadline = Date.now() + 120_000; ; ) {
      all = await sends();
      if (new Set(all.map((s) => s.key)).size >= expected) break;
      if (Date.now() > deadline) break;
      await sleep(20);
    }
    const firstAt = new Map<string, number>();
    for (const s of all) if (!firstAt.has(s.key)) firstAt.set(s.key, s.at);
    const transferIds = new Set([...firstAt.keys()].map((k) => k.split(':')[0]!));
    let lost = expected - firstAt.size;
    // Every notification reached its provider; the store must say so too once the queue is drained.
    for (const id of transferIds) {
      for (let tries = 0; ; tries++) {
        const s = await deps.statuses(id);
        if (s.email === 'sent' && s.sms === 'sent') break;
        if (tries > 100) {
          lost++;
          break;
        }
        await sleep(50);
      }
    }
    // The dead worker's sends: those that arrived before the fresh worker could send anything
    // (it takes hundreds of ms to start; a dead worker's last bytes arrive within a few).
    const deadBefore = startedAt + DEAD_WORKER_MARGIN_MS;
    const freshFirst = Math.min(...all.filter((s) => s.at >= deadBefore).map((s) => s.at));
    const deadKeys = new Set(all.filter((s) => s.at < deadBefore).map((s) => s.key));
    // One that arrived after the snapshot's read has no record of it: the dead worker never got its answer.
    const inFlightAtKill = [...deadKeys].filter((key) => {
      const [transferId, channel] = key.split(':') as [string, string];
      return recorded.get(transferId)?.[channel] !== 'sent';
    }).length;
    const crash: CrashResult = {
      transfers: sizes.crash,
      killedAfterSent,
      inFlightAtKill,
      repeats: all.length - firstAt.size,
      lost,
      killToAllSentMs: Math.max(...firstAt.values()) - killedAt,
      startToFirstSendMs: freshFirst - startedAt,
      // The fresh worker records nothing before its first send has taken PROVIDER_MS at the
      // provider, so a snapshot read before then saw only the dead worker's records.
      snapshotLateMs: Math.max(0, readBy - (freshFirst + PROVIDER_MS)),
    };
    await Promise.all(fresh.workers.map((w) => w.stop()));
    return { providerMs: PROVIDER_MS, drain, crash };
  } finally {
    await providers.service.stop();
  }
}

export function realProviderRows(r: Awaited<ReturnType<typeof measureRealProviders>>): string[] {
  const c = r.crash;
  return [
    ...r.drain.map(
      (d) =>
        `| Drain ${d.workers} worker${d.workers > 1 ? 's' : ''}, real SMTP + HTTP providers (${r.providerMs} ms) | ${d.transfersPerSecond} transfers/s (ideal ${d.idealPerSecond}, ${Math.round(d.ofIdeal * 100)}%); a send took ${Object.entries(d.sendMs).map(([c, ms]) => `${c} ${ms} ms`).join(', ')}; CPU per transfer: workers ${d.workerCpuMs} ms, providers ${d.providersCpuMs} ms; machine CPU ${Math.round(d.machineBusy * 100)}% busy (${cpus().length} cores) |`,
    ),
    `| Crash: ${c.transfers} queued, worker killed -9 after ${c.killedAfterSent} sent, fresh worker started | ${c.lost} lost, ${c.repeats} repeated sends (${c.inFlightAtKill} in flight at the kill${c.snapshotLateMs > 0 ? `, read ${c.snapshotLateMs} ms late: may be low` : ''}), ${(c.killToAllSentMs / 1000).toFixed(1)} s from kill to all sent, first send ${c.startToFirstSendMs} ms after the fresh worker's start |`,
    ...ELSEWHERE.map((e) => `| Same crash case, ${e.system} (reported on this machine's kind) | ${e.repeats} repeated sends, ${e.seconds} s from kill to all sent |`),
  ];
}
