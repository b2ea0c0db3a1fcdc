import FakeTimers, { type Clock } from '@sinonjs/fake-timers';
import { expect } from 'chai';
import { OutboxRelay } from '../../api/outbox-relay.js';
import { FakePublisher, MemoryOutbox } from './fakes.js';

/**
 * The relay's own decisions, on a fake clock: when it publishes, how it backs
 * off, how it keeps and loses leases. The real path (a real broker, both real
 * stores, processes killed) is in test/outages.test.ts and test/processes.test.ts.
 */
describe('outbox relay (api/outbox-relay.ts) with a fake broker and outbox table', () => {
  const LEASE_MS = 10_000;
  const SWEEP_MS = 1000;
  let clock: Clock;
  let outbox: MemoryOutbox;
  let broker: FakePublisher;
  /** False while the broker is away: the relay has no channel to publish on. */
  let connected: boolean;
  let relay: OutboxRelay;

  const newRelay = (options: { batchSize?: number; maxInMemory?: number } = {}) =>
    new OutboxRelay({
      store: outbox.store(),
      publisher: () => (connected ? broker.asPublisher() : null),
      exchange: 'bank.transfers',
      leaseMs: LEASE_MS,
      sweepIntervalMs: SWEEP_MS,
      ...options,
    });
  /** Lets every promise the relay chained settle, without moving the clock. */
  const settle = () => clock.tickAsync(0);
  /** An event the API just committed, leased to the relay, and handed to it. */
  const commit = () => {
    const event = outbox.add(relay.lease.owner, LEASE_MS);
    relay.enqueue(event);
    return event;
  };

  beforeEach(() => {
    clock = FakeTimers.install({ now: 1_000_000, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    outbox = new MemoryOutbox();
    broker = new FakePublisher();
    connected = true;
    relay = newRelay();
  });
  afterEach(async () => {
    const stopping = relay.stop();
    await clock.runAllAsync();
    await stopping;
    clock.uninstall();
  });

  it('When the API hands over a committed event and the broker confirms it, then it is marked published and leaves memory', async () => {
    relay.start();
    const event = commit();
    await settle();
    expect(broker.confirmed).to.deep.equal([event.id]);
    expect(outbox.unpublished).to.deep.equal([]);
    expect(relay.backlog).to.equal(0);
    expect(outbox.calls.filter((c) => c === 'claimOutbox'), 'no query to find it: the API handed it over').to.have.length(1);
  });

  it('When the broker refuses publishes, then the relay retries after 200, 400, 800 ms …, doubling up to 10 s, and publishes once it takes them', async () => {
    relay.start();
    broker.refusing = true;
    const event = commit();
    await settle();
    await clock.tickAsync(200 + 400 + 800 + 1600 + 3200 + 6400 + 10_000 + 10_000);
    const gaps = broker.attempts.slice(1).map((t, i) => t - broker.attempts[i]!);
    expect(gaps).to.deep.equal([200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]);
    expect(outbox.unpublished, 'nothing is marked before a confirm').to.deep.equal([event.id]);

    broker.refusing = false;
    await clock.tickAsync(10_000);
    expect(broker.confirmed).to.deep.equal([event.id]);
    expect(outbox.unpublished).to.deep.equal([]);
  });

  it('When the broker comes back during a long backoff, then the waiting events go out at once', async () => {
    relay.start();
    broker.refusing = true;
    const event = commit();
    await clock.tickAsync(200 + 400 + 800 + 1600 + 3200); // the next retry would be 6.4 s away
    const tried = broker.attempts.length;
    broker.refusing = false;
    relay.brokerConnected();
    await settle();
    expect(broker.attempts).to.have.length(tried + 1);
    expect(broker.confirmed).to.deep.equal([event.id]);
  });

  it('When the broker is away, then events wait in memory without a publish attempt, and go out when it connects', async () => {
    connected = false;
    relay.start();
    const events = [commit(), commit()];
    await clock.tickAsync(5 * SWEEP_MS);
    expect(broker.attempts).to.deep.equal([]);
    expect(relay.backlog).to.equal(2);

    connected = true;
    relay.brokerConnected();
    await settle();
    expect(broker.confirmed).to.deep.equal(events.map((e) => e.id));
  });

  it('When marking fails after the broker confirmed, then the event is marked on a later try and never published again', async () => {
    relay.start();
    outbox.failing.add('markPublished');
    const event = commit();
    await settle();
    expect(broker.confirmed).to.deep.equal([event.id]);
    expect(outbox.unpublished).to.deep.equal([event.id]);

    outbox.failing.delete('markPublished');
    await clock.tickAsync(200);
    expect(outbox.unpublished).to.deep.equal([]);
    expect(broker.confirmed, 'published once').to.deep.equal([event.id]);
  });

  it('When the relay holds events past half their lease, then a sweep renews them (not every sweep), so no other relay can claim them', async () => {
    connected = false;
    relay.start();
    commit();
    await clock.tickAsync(20_000);
    // Renewed at the sweeps at 6 s, 12 s and 18 s: each time the lease was past half its life.
    expect(outbox.calls.filter((c) => c === 'renewLeases')).to.have.length(3);
    const other = await outbox.store().claimOutbox({ owner: 'relay-other', leaseMs: LEASE_MS }, 10, 0);
    expect(other, 'the lease is still held').to.deep.equal([]);
  });

  it('When another relay took an event over (this one was paused past its lease), then this relay drops it and never publishes it', async () => {
    connected = false;
    relay.start();
    const event = commit();
    // Its lease ran out while this process was paused, and another relay claimed it.
    Object.assign(outbox.rows[0]!, { leaseOwner: 'relay-other', leaseUntil: Date.now() + 60_000 });
    await clock.tickAsync(6 * SWEEP_MS);
    expect(relay.backlog).to.equal(0);

    connected = true;
    relay.brokerConnected();
    await clock.tickAsync(SWEEP_MS);
    expect(broker.attempts).to.deep.equal([]);
    expect(outbox.rows[0]).to.include({ id: event.id, leaseOwner: 'relay-other' });
  });

  it('When a crashed relay left events behind, then a sweep claims them page by page in commit order and publishes each once', async () => {
    relay = newRelay({ batchSize: 3 });
    const left = Array.from({ length: 7 }, () => outbox.add());
    relay.start();
    await settle();
    expect(outbox.calls.filter((c) => c === 'claimOutbox'), 'pages of 3, 3 and 1').to.have.length(3);
    expect(broker.confirmed).to.deep.equal(left.map((e) => e.id));
    expect(outbox.unpublished).to.deep.equal([]);
  });

  it('When more events wait than the relay may hold in memory, then it takes them in turns and still publishes each once', async () => {
    relay = newRelay({ batchSize: 3, maxInMemory: 4 });
    const left = Array.from({ length: 10 }, () => outbox.add());
    relay.start();
    await settle();
    expect(broker.confirmed).to.deep.equal(left.slice(0, 4).map((e) => e.id));
    await clock.tickAsync(2 * SWEEP_MS);
    expect(broker.confirmed).to.deep.equal(left.map((e) => e.id));
  });

  it('When the relay stops holding unpublished events, then it hands them back, so the next relay takes them without waiting out the lease', async () => {
    connected = false;
    relay.start();
    const event = commit();
    await relay.stop();
    const next = await outbox.store().claimOutbox({ owner: 'relay-next', leaseMs: LEASE_MS }, 10, 0);
    expect(next.map((e) => e.id)).to.deep.equal([event.id]);
  });
});
