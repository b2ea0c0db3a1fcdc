import { randomUUID } from 'node:crypto';
import type { ConfirmPublisher } from '../shared/broker/publisher.js';
import { logger } from '../shared/runtime/logger.js';
import type { OutboxEvent, OutboxLease, Store } from '../shared/store/store.js';

export interface RelayOptions {
  store: Store;
  /** The current confirm-channel publisher, or null while the broker is away. */
  publisher: () => ConfirmPublisher | null;
  exchange: string;
  leaseMs: number;
  sweepIntervalMs: number;
  batchSize?: number;
  /** Events held in memory at most; the rest wait in the table for the next sweep. */
  maxInMemory?: number;
}

interface Entry {
  event: OutboxEvent;
  /** Confirmed by the broker but not yet marked in the table: mark it, never publish it again. */
  confirmed: boolean;
  /** When this relay's lease on it was last taken or renewed (ms). */
  leasedAt: number;
}

const MAX_BACKOFF_MS = 10_000;
/** How long a stopping relay waits for publishes in flight before handing their events back. */
const STOP_DRAIN_MS = 2000;
/** Ids of events this relay published lately, so a sweep racing a mark never publishes one again. */
const RECENT_IDS = 10_000;

/**
 * Moves committed outbox events to the broker. The API hands it each event it
 * commits (already leased to this relay), so publishing costs no extra query.
 * A periodic sweep renews the leases of the events it holds (so no other relay
 * takes them while, say, the broker is away) and picks up events whose lease ran
 * out: left by a crashed process, released at a shutdown, or committed while this
 * relay's memory was full. An event is marked published only after the broker's confirm.
 */
export class OutboxRelay {
  readonly lease: OutboxLease;
  private readonly entries = new Map<string, Entry>();
  private readonly batchSize: number;
  private readonly maxInMemory: number;
  private draining: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> | null = null;
  private failures = 0;
  private stopped = false;
  private readonly recent = new Set<string>();

  constructor(private readonly options: RelayOptions) {
    this.lease = { owner: `relay-${randomUUID()}`, leaseMs: options.leaseMs };
    // Small enough that publishing a batch never holds the event loop long enough to show in request latency.
    this.batchSize = options.batchSize ?? 128;
    this.maxInMemory = options.maxInMemory ?? 20_000;
  }

  start(): void {
    void this.sweep();
    this.sweepTimer = setInterval(() => void this.sweep(), this.options.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** A freshly committed event. If memory is full it waits in the table until its lease runs out and a sweep takes it. */
  enqueue(event: OutboxEvent): void {
    if (!this.entries.has(event.id) && this.entries.size < this.maxInMemory) {
      this.entries.set(event.id, { event, confirmed: false, leasedAt: Date.now() });
    }
    this.wake();
  }

  /** The broker is (back) up: publish what waited, without sitting out a backoff meant for the outage. */
  brokerConnected(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.failures = 0;
    void this.sweep();
  }

  /** Drain now, unless a drain runs, a backoff is pending, or there is nowhere to publish. */
  wake(): void {
    if (this.stopped || this.draining || this.retryTimer || this.entries.size === 0 || !this.options.publisher()) return;
    this.draining = this.drain().finally(() => {
      this.draining = null;
      // Work that arrived while the last drain was finishing.
      this.wake();
    });
  }

  /** Renews the leases it holds, then claims what nobody holds. One sweep at a time; a call during one waits for it. */
  sweep(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.sweeping ??= this.sweepOnce().finally(() => {
      this.sweeping = null;
      this.wake();
    });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    try {
      await this.renewLeases();
      let added = 0;
      let afterSeq = 0;
      while (!this.stopped && this.entries.size < this.maxInMemory) {
        const limit = Math.min(this.batchSize, this.maxInMemory - this.entries.size);
        const events = await this.options.store.claimOutbox(this.lease, limit, afterSeq);
        const now = Date.now();
        for (const { seq, ...event } of events) {
          afterSeq = seq;
          if (!this.entries.has(event.id) && !this.recent.has(event.id)) {
            this.entries.set(event.id, { event, confirmed: false, leasedAt: now });
            added++;
          }
        }
        if (events.length < limit) break;
      }
      if (added > 0) logger.info('outbox sweep picked up unpublished events', { count: added });
    } catch (error) {
      logger.warn('outbox sweep failed, will retry', { error: (error as Error).message });
    }
  }

  /** Only leases past half their life, so a long outage costs a renewal now and then, not a rewrite per sweep. */
  private async renewLeases(): Promise<void> {
    const due = Date.now() - this.lease.leaseMs / 2;
    const stale = [...this.entries.values()].filter((e) => e.leasedAt < due);
    for (let i = 0; i < stale.length; i += 500) {
      const chunk = stale.slice(i, i + 500);
      const renewed = new Set(await this.options.store.renewLeases(this.lease, chunk.map((e) => e.event.id)));
      const now = Date.now();
      for (const e of chunk) {
        if (renewed.has(e.event.id)) e.leasedAt = now;
        // Lost (another relay took it after all, or it is published): not ours to publish any more.
        else this.entries.delete(e.event.id);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    // A claim landing after the release below would leave events leased to a relay that is gone.
    await this.sweeping;
    // Publishes wait for their confirms as long as the channel lives, and a broker that blocks
    // the connection may hold them a long time: do not wait for ever. What is not confirmed
    // stays unpublished in the outbox, and the connection closing next sends nothing more.
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      (this.draining ?? Promise.resolve()).then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), STOP_DRAIN_MS))),
    ]);
    clearTimeout(timer);
    if (!waited) logger.warn('publishes still wait for the broker at stop; their events stay in the outbox for the next relay', { inMemory: this.entries.size });
    // Hand unpublished events back so the next relay publishes them without waiting out the lease.
    await this.options.store.releaseOutbox(this.lease.owner).catch((error: Error) =>
      logger.warn('could not release outbox leases; they expire on their own', { error: error.message }),
    );
  }

  get backlog(): number {
    return this.entries.size;
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.entries.size > 0) {
      const publisher = this.options.publisher();
      if (!publisher) return; // brokerConnected() wakes us
      const batch = take(this.entries.values(), this.batchSize);
      const toPublish = batch.filter((e) => !e.confirmed);
      const results = await Promise.allSettled(toPublish.map((e) => this.publish(publisher, e.event)));
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') toPublish[i]!.confirmed = true;
      });
      const confirmed = batch.filter((e) => e.confirmed);
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (confirmed.length > 0) {
        try {
          await this.options.store.markPublished(confirmed.map((e) => e.event.id));
          for (const e of confirmed) {
            this.entries.delete(e.event.id);
            this.remember(e.event.id);
          }
        } catch (error) {
          logger.warn('could not mark published events; will retry marking them', {
            count: confirmed.length,
            error: (error as Error).message,
          });
          return this.backOff();
        }
      }
      if (failed.length > 0) {
        logger.warn('publishing outbox events failed; will retry', { count: failed.length, error: String(failed[0]!.reason?.message ?? failed[0]!.reason) });
        return this.backOff();
      }
      this.failures = 0;
    }
  }

  private publish(publisher: ConfirmPublisher, event: OutboxEvent): Promise<void> {
    return publisher.publish(this.options.exchange, event.type, Buffer.from(event.payload), {
      messageId: event.id,
      correlationId: event.transferId,
      type: event.type,
      timestamp: Math.floor(Date.parse(event.createdAt) / 1000),
      contentType: 'application/json',
      appId: 'async-transfers-api',
    });
  }

  private remember(id: string): void {
    this.recent.add(id);
    if (this.recent.size > RECENT_IDS) this.recent.delete(this.recent.values().next().value!);
  }

  private backOff(): void {
    this.failures++;
    const delay = Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(this.failures, 10));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.wake();
    }, delay);
    this.retryTimer.unref();
  }
}

/** The first n of an iterator, without copying a map that may hold thousands of events. */
function take<T>(values: Iterable<T>, n: number): T[] {
  const out: T[] = [];
  for (const value of values) {
    if (out.length === n) break;
    out.push(value);
  }
  return out;
}
