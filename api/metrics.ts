import type { RequestHandler } from 'express';
import client from 'prom-client';
import type { Store } from '../shared/store/index.js';
import type { OutboxRelay } from './outbox-relay.js';

/** One route label per documented path ({id} matches any segment), so ids never become label values. */
function routeMatcher(paths: string[]): (path: string) => string {
  const patterns = paths.map((p) => ({ label: p, regex: new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/]+')}/?$`) }));
  return (path) => {
    if (path === '/docs' || path.startsWith('/docs/')) return '/docs';
    return patterns.find((p) => p.regex.test(path))?.label ?? 'unmatched';
  };
}

/**
 * The API's Prometheus metrics (prom-client), served at GET /metrics. A registry
 * of its own, so an API and a worker in one test process never collide.
 */
export class ApiMetrics {
  readonly registry = new client.Registry();
  private readonly requestDuration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  private readonly transfers = new client.Counter({
    name: 'transfers_total',
    help: 'POST /transfer answers by outcome: accepted, replayed, or the error code',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  constructor(deps: { store: Store; relay: OutboxRelay }) {
    client.collectDefaultMetrics({ register: this.registry });
    const { store, relay } = deps;
    // Read at scrape time, so the numbers are the table's, not a copy that could drift.
    let stats: Promise<{ unpublished: number; oldestCreatedAt: string | null }> | null = null;
    const outboxStats = () => (stats ??= store.outboxStats().finally(() => setImmediate(() => (stats = null))));
    new client.Gauge({
      name: 'outbox_backlog',
      help: 'Committed events not yet confirmed by the broker',
      registers: [this.registry],
      async collect() {
        this.set((await outboxStats()).unpublished);
      },
    });
    new client.Gauge({
      name: 'outbox_oldest_age_seconds',
      help: 'Age of the oldest unpublished outbox event (0 when none)',
      registers: [this.registry],
      async collect() {
        const { oldestCreatedAt } = await outboxStats();
        this.set(oldestCreatedAt ? (Date.now() - Date.parse(oldestCreatedAt)) / 1000 : 0);
      },
    });
    new client.Gauge({
      name: 'outbox_relay_in_memory',
      help: 'Events this API process holds to publish',
      registers: [this.registry],
      collect() {
        this.set(relay.backlog);
      },
    });
  }

  /** Times every request; POST /transfer also counts its outcome (res.locals.outcome, set by the handler or the error handler). */
  requests(documentedPaths: string[]): RequestHandler {
    const routeOf = routeMatcher(documentedPaths);
    return (req, res, next) => {
      const end = this.requestDuration.startTimer();
      res.on('finish', () => {
        const route = routeOf(req.path);
        end({ method: req.method, route, status: String(res.statusCode) });
        if (route === '/transfer' && req.method === 'POST') this.transfers.inc({ outcome: String(res.locals.outcome ?? res.statusCode) });
      });
      next();
    };
  }

  handler(): RequestHandler {
    return async (_req, res) => {
      res.setHeader('Content-Type', this.registry.contentType);
      res.end(await this.registry.metrics());
    };
  }
}
