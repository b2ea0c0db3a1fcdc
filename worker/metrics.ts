import client from 'prom-client';
import type { Channel } from '../shared/domain/notifications.js';

/** How a delivery ended: acked with everything done, with retries, deferrals or dead letters spawned, or handed back. */
export type MessageOutcome = 'completed' | 'retry_scheduled' | 'deferred' | 'dead_lettered' | 'requeued' | 'returned';

/**
 * The worker's Prometheus metrics (prom-client), counted always and served at
 * /metrics on WORKER_METRICS_PORT when that is set.
 */
export class WorkerMetrics {
  readonly registry = new client.Registry();
  readonly messages = new client.Counter({
    name: 'worker_messages_total',
    help: 'Deliveries handled, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly sendDuration = new client.Histogram({
    name: 'notification_send_duration_seconds',
    help: 'Time a provider took to accept (or fail) a send, by channel and result',
    labelNames: ['channel', 'result'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly retries = new client.Counter({
    name: 'notification_retries_total',
    help: 'Sends scheduled for another attempt through a delay queue, by channel',
    labelNames: ['channel'] as const,
    registers: [this.registry],
  });
  readonly deadLettered = new client.Counter({
    name: 'notifications_dead_lettered_total',
    help: 'Notifications parked in the dead-letter queue, by channel ("all" for a whole message)',
    labelNames: ['channel'] as const,
    registers: [this.registry],
  });

  readonly inFlight = new client.Gauge({
    name: 'worker_in_flight',
    help: 'Deliveries this worker holds right now (at most WORKER_PREFETCH)',
    registers: [this.registry],
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry });
  }

  observeSend(channel: Channel, result: 'sent' | 'failed', seconds: number): void {
    this.sendDuration.observe({ channel, result }, seconds);
  }
}
