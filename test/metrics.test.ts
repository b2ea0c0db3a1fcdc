import { expect } from 'chai';
import request from 'supertest';
import { TestSystem } from './support/system.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { waitFor } from './support/wait.js';

/** The value of one sample, e.g. metric(text, 'transfers_total{outcome="accepted"}'). */
function metric(text: string, sample: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

describe('metrics', function () {
  this.timeout(30_000);

  it('When transfers are answered, then the API’s /metrics counts them by outcome and times requests by route', async () => {
    const system = await TestSystem.start();
    try {
      const ok = await system.post({ fromAccount: 'user-A', toAccount: 'user-B', amount: 1 }).expect(202);
      await system.post({ fromAccount: 'user-A', toAccount: 'user-B', amount: -1 }).expect(400);
      await system.http().get(`/transfers/${ok.body.transferId}`).set(await system.auth('user-A')).expect(200);
      const text = (await system.http().get('/metrics').expect(200)).text;
      expect(metric(text, 'transfers_total{outcome="accepted"}')).to.equal(1);
      expect(metric(text, 'transfers_total{outcome="invalid_body"}')).to.equal(1);
      expect(metric(text, 'http_request_duration_seconds_count{method="POST",route="/transfer",status="202"}')).to.equal(1);
      expect(metric(text, 'http_request_duration_seconds_count{method="GET",route="/transfers/{id}",status="200"}')).to.equal(1);
      expect(text).to.match(/^process_resident_memory_bytes \d+/m);
      await waitFor('the event to be published', async () =>
        metric((await system.http().get('/metrics')).text, 'outbox_backlog') === 0,
      );
    } finally {
      await system.stop();
    }
  });

  it('When the broker is away, then the outbox backlog and the age of its oldest event rise, and fall once it is back', async () => {
    const proxy = await new TcpProxy(5672).start();
    const system = await TestSystem.start({ env: { AMQP_URL: proxy.url } });
    try {
      await proxy.cut();
      await waitFor('the API to notice', () => !system.api.broker.isConnected);
      for (let i = 0; i < 3; i++) await system.post({ fromAccount: 'user-A', toAccount: 'user-B', amount: 1 }).expect(202);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const during = (await system.http().get('/metrics')).text;
      expect(metric(during, 'outbox_backlog')).to.equal(3);
      expect(metric(during, 'outbox_oldest_age_seconds')).to.be.greaterThan(1);
      await proxy.restore();
      await waitFor('the backlog to drain', async () => metric((await system.http().get('/metrics')).text, 'outbox_backlog') === 0, { timeoutMs: 20_000 });
      expect(metric((await system.http().get('/metrics')).text, 'outbox_oldest_age_seconds')).to.equal(0);
    } finally {
      await system.stop();
      await proxy.stop();
    }
  });

  it('When WORKER_METRICS_PORT is set, then the worker serves sends, retries, dead letters and outcomes at /metrics', async () => {
    const system = await TestSystem.start({
      worker: true,
      env: { WORKER_METRICS_PORT: '0', NOTIFY_FAILURE_RATE: '1', MAX_ATTEMPTS: '2', RETRY_DELAYS_MS: '100' },
    });
    try {
      const worker = request(`http://127.0.0.1:${system.worker!.metricsPort}`);
      const res = await system.post({ fromAccount: 'user-A', toAccount: 'user-B', amount: 1 }).expect(202);
      await waitFor('both channels to give up', async () => (await system.transfer(res.body.transferId)).status === 'notification_failed');
      // The counters move once the broker confirmed the dead letters, just after the outcome is recorded.
      const text = await waitFor('the dead letters to be counted', async () => {
        const t = (await worker.get('/metrics').expect(200)).text;
        return metric(t, 'notifications_dead_lettered_total{channel="sms"}') === 1 && metric(t, 'notifications_dead_lettered_total{channel="email"}') === 1 ? t : undefined;
      });
      expect(metric(text, 'notification_retries_total{channel="email"}')).to.equal(1);
      expect(metric(text, 'notification_retries_total{channel="sms"}')).to.equal(1);
      expect(metric(text, 'notifications_dead_lettered_total{channel="email"}')).to.equal(1);
      expect(metric(text, 'notification_send_duration_seconds_count{channel="sms",result="failed"}')).to.equal(2);
      expect(metric(text, 'worker_messages_total{outcome="retry_scheduled"}')).to.equal(1);
      expect(metric(text, 'worker_messages_total{outcome="dead_lettered"}')).to.be.at.least(1);
      expect(metric(text, 'worker_in_flight')).to.equal(0);
      await worker.get('/other').expect(404);
    } finally {
      await system.stop();
    }
  });
});
