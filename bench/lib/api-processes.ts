import { load, type LoadResult } from './load.js';
import type { Service } from './services.js';

/**
 * POST /transfer with API_PROCESSES=1 and =2 under the same load: what a second
 * core's worth of API buys. Measured on PostgreSQL only, the store several
 * processes are meant to share (SQLite takes one writer at a time).
 */
export interface ApiProcessesResult extends LoadResult {
  processes: number;
}

export interface ApiProcessesOptions {
  start: (name: string, entry: string, overrides: Record<string, string>) => Service;
  request: () => { body: unknown; headers?: Record<string, string> };
  connections: number;
  warmupS: number;
  durationS: number;
  /** Empties the work queue between runs (no worker runs here). */
  purge: () => Promise<void>;
}

export async function measureApiProcesses(options: ApiProcessesOptions, counts: readonly number[] = [1, 2]): Promise<ApiProcessesResult[]> {
  const results: ApiProcessesResult[] = [];
  for (const processes of counts) {
    const service = options.start(`api-x${processes}`, 'dist/api/main.js', { API_PROCESSES: String(processes) });
    try {
      const { port } = (await service.ready('API listening')) as { port: number };
      if (processes > 1) await service.ready('"API processes started"', 60_000);
      const url = `http://127.0.0.1:${port}/transfer`;
      for (let i = 0; i < 100 && (await fetch(`http://127.0.0.1:${port}/ready`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
      await load({ url, connections: options.connections, durationS: options.warmupS, request: options.request });
      results.push({ processes, ...(await load({ url, connections: options.connections, durationS: options.durationS, request: options.request })) });
    } finally {
      await service.stop();
      await options.purge();
    }
  }
  return results;
}

/** The benchmark table's rows for these runs. */
export function apiProcessesRows(results: readonly ApiProcessesResult[], connections: number): string[] {
  const one = results.find((r) => r.processes === 1);
  return results.map((r) => {
    const vsOne = one && r !== one ? `, ${Math.round((r.requestsPerSecond / one.requestsPerSecond) * 100) / 100}× one process` : '';
    return `| POST /transfer, API_PROCESSES=${r.processes}, ${connections} connections (PostgreSQL) | ${Math.round(r.requestsPerSecond).toLocaleString('en-US')} req/s${vsOne}, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.non2xx} non-2xx |`;
  });
}
