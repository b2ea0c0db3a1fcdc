import { expect } from 'chai';
import { DEMO_API_KEYS } from '../shared/domain/demo-accounts.js';
import type { Store } from '../shared/store/index.js';
import { openStore } from '../shared/store/index.js';
import { startApi } from '../api/server.js';
import { allLogLines } from './support/log-capture.js';
import { testStores } from './support/namespace.js';
import { ServiceProcess, runKeys } from './support/processes.js';
import { issuedTokens } from './support/secrets.js';
import { TestSystem } from './support/system.js';

const A_TO_B = { fromAccount: 'user-A', toAccount: 'user-B', amount: '1.00' };
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

for (const store of testStores()) describe(`[${store}] authentication, authorization and rate limits`, function () {
  this.timeout(30_000);
  let system: TestSystem;
  before(async () => {
    system = await TestSystem.start({ db: store, env: { RATE_LIMIT_PER_KEY: '1000', RATE_LIMIT_PER_IP: '100000' } });
  });
  after(async () => system?.stop());

  /** Every way of asking for user-A's money and data, with the given headers. */
  const attempts = async (headers: Record<string, string>) => {
    const mine = await system.post({ fromAccount: 'user-A', toAccount: 'user-C', amount: '2.00' }).expect(202);
    const http = system.http();
    return {
      post: await http.post('/transfer').set(headers).send(A_TO_B),
      transfer: await http.get(`/transfers/${mine.body.transferId}`).set(headers),
      account: await http.get('/accounts/user-A').set(headers),
    };
  };

  it('When a request carries no key or a malformed one, then POST, GET transfer and GET account answer 401 with a Bearer challenge and nothing moves', async () => {
    for (const headers of [{}, { Authorization: 'Basic dXNlcjpwYXNz' }, { Authorization: 'Bearer' }, bearer('not-a-key'), bearer('atk_0000000000_unknownunknownunknownunknown')]) {
      const before = await system.balance('user-A');
      const r = await attempts(headers);
      for (const res of [r.post, r.transfer, r.account]) {
        expect(res.status, JSON.stringify(headers)).to.equal(401);
        expect(res.body.error.code).to.equal('unauthorized');
        expect(res.headers['www-authenticate']).to.match(/^Bearer realm="async-transfers"/);
      }
      expect(await system.balance('user-A')).to.equal((Number(before) - 2).toFixed(2));
    }
  });

  it('When a key made with `npm run keys` is revoked, then it is refused and moves nothing', async () => {
    const env = system.ns.env();
    const created = await runKeys(['create', '--accounts', 'user-A', '--label', 'revocation test'], env);
    expect(created.code, created.stderr).to.equal(0);
    const token = created.stdout.trim();
    issuedTokens.add(token);
    const id = /^atk_([a-z0-9]{10})_/.exec(token)![1]!;
    await system.http().post('/transfer').set(bearer(token)).send(A_TO_B).expect(202);

    const listed = await runKeys(['list'], env);
    expect(listed.stdout).to.match(new RegExp(`${id}\\s+active\\s+user-A`));
    expect(listed.stdout).to.not.contain(token.split('_').slice(2).join('_'));

    const revoked = await runKeys(['revoke', id], env);
    expect(revoked.code, revoked.stderr).to.equal(0);
    const before = await system.balance('user-A');
    const r = await attempts(bearer(token));
    for (const res of [r.post, r.transfer, r.account]) expect([res.status, res.body.error.code]).to.deep.equal([401, 'unauthorized']);
    expect(await system.balance('user-A')).to.equal((Number(before) - 2).toFixed(2));
    expect((await runKeys(['list'], env)).stdout).to.match(new RegExp(`${id}\\s+revoked`));
  });

  it('When a key of another account asks, then moving money is 403, and reading the transfer or account is 404 as if it did not exist', async () => {
    const before = await system.balance('user-A');
    const r = await attempts(bearer(DEMO_API_KEYS['user-B']!));
    expect([r.post.status, r.post.body.error.code]).to.deep.equal([403, 'forbidden']);
    expect([r.transfer.status, r.transfer.body.error.code]).to.deep.equal([404, 'transfer_not_found']);
    expect([r.account.status, r.account.body.error.code]).to.deep.equal([404, 'account_not_found']);
    const missing = await system.http().get('/accounts/nobody').set(bearer(DEMO_API_KEYS['user-B']!));
    expect(missing.body).to.deep.equal({ error: { code: 'account_not_found', message: 'account nobody does not exist' } });
    expect(r.account.body).to.deep.equal({ error: { code: 'account_not_found', message: 'account user-A does not exist' } });
    expect(await system.balance('user-A')).to.equal((Number(before) - 2).toFixed(2));
  });

  it('When the payee reads a transfer it received, then it sees it; a key bound to two accounts acts for both', async () => {
    const res = await system.post(A_TO_B).expect(202);
    await system.http().get(`/transfers/${res.body.transferId}`).set(bearer(DEMO_API_KEYS['user-B']!)).expect(200);
    const both = await system.keyFor('user-B', 'user-C');
    await system.http().post('/transfer').set(bearer(both)).send({ fromAccount: 'user-B', toAccount: 'user-A', amount: 1 }).expect(202);
    await system.http().post('/transfer').set(bearer(both)).send({ fromAccount: 'user-C', toAccount: 'user-A', amount: 1 }).expect(202);
  });

  it('When two keys use the same Idempotency-Key, then each gets its own transfer', async () => {
    const key = { 'Idempotency-Key': 'shared-client-key' };
    const a = await system.http().post('/transfer').set({ ...bearer(DEMO_API_KEYS['user-A']!), ...key }).send({ fromAccount: 'user-A', toAccount: 'user-C', amount: 1 }).expect(202);
    const b = await system.http().post('/transfer').set({ ...bearer(DEMO_API_KEYS['user-B']!), ...key }).send({ fromAccount: 'user-B', toAccount: 'user-C', amount: 1 }).expect(202);
    expect(a.body.transferId).to.not.equal(b.body.transferId);
  });

  it('When /health, /ready, /openapi.json and /docs are asked without a key, then they answer', async () => {
    for (const path of ['/health', '/ready', '/openapi.json', '/docs/']) await system.http().get(path).expect(200);
  });
});

describe('rate limits on POST /transfer', function () {
  this.timeout(30_000);

  it('When one key sends more than RATE_LIMIT_PER_KEY, then it gets 429 with Retry-After and RateLimit headers, and other keys are unaffected', async () => {
    const system = await TestSystem.start({ env: { RATE_LIMIT_PER_KEY: '5', RATE_LIMIT_PER_IP: '1000', RATE_LIMIT_WINDOW_MS: '60000' } });
    try {
      const before = await system.balance('user-A');
      const answers = [];
      for (let i = 0; i < 8; i++) answers.push(await system.post(A_TO_B));
      expect(answers.map((r) => r.status)).to.deep.equal([202, 202, 202, 202, 202, 429, 429, 429]);
      expect(answers[0]!.headers['ratelimit-limit']).to.equal('5');
      expect(answers[4]!.headers['ratelimit-remaining']).to.equal('0');
      const limited = answers[5]!;
      expect(limited.body.error.code).to.equal('rate_limited');
      expect(Number(limited.headers['retry-after'])).to.be.within(1, 60);
      expect(await system.balance('user-A')).to.equal((Number(before) - 5).toFixed(2));
      // Another key from the same address is not limited by user-A's hammering.
      await system.post({ fromAccount: 'user-B', toAccount: 'user-A', amount: 1 }).expect(202);
    } finally {
      await system.stop();
    }
  });

  it('When one address sends more than RATE_LIMIT_PER_IP, then it gets 429 even before authentication', async () => {
    const system = await TestSystem.start({ env: { RATE_LIMIT_PER_KEY: '1000', RATE_LIMIT_PER_IP: '3' } });
    try {
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await system.http().post('/transfer').send(A_TO_B)).status);
      const limited = await system.http().post('/transfer').send(A_TO_B);
      expect(statuses).to.deep.equal([401, 401, 401]);
      expect([limited.status, limited.body.error.code]).to.deep.equal([429, 'rate_limited']);
      expect(limited.headers['retry-after']).to.be.a('string');
      await system.http().get('/accounts/user-A').set(await system.auth('user-A')).expect(200);
    } finally {
      await system.stop();
    }
  });
});

describe('hardening', function () {
  this.timeout(30_000);
  let system: TestSystem;
  before(async () => {
    system = await TestSystem.start();
  });
  after(async () => system?.stop());

  it('When a JSON answer leaves, success or error, then it carries the API security headers and no X-Powered-By', async () => {
    const answers = [
      await system.http().get('/health').expect(200),
      await system.post({ fromAccount: 'user-A', toAccount: 'user-B', amount: 1 }).expect(202),
      await system.http().post('/transfer').send({}).expect(401),
      await system.http().get('/nowhere').expect(404),
    ];
    for (const res of answers) {
      expect(res.headers['x-powered-by']).to.equal(undefined);
      expect(res.headers['x-content-type-options']).to.equal('nosniff');
      expect(res.headers['content-security-policy']).to.equal("default-src 'none';frame-ancestors 'none'");
      expect(res.headers['strict-transport-security']).to.equal('max-age=31536000; includeSubDomains');
      expect(res.headers['x-frame-options']).to.equal('DENY');
      expect(res.headers['referrer-policy']).to.equal('no-referrer');
      expect(res.headers['cache-control']).to.equal('no-store');
    }
  });

  it('When the /docs page is served, then it gets helmet’s full browser set, with what Swagger UI needs', async () => {
    const res = await system.http().get('/docs/').expect(200);
    expect(res.headers['content-security-policy']).to.contain("style-src 'self' 'unsafe-inline'");
    expect(res.headers['x-frame-options']).to.equal('SAMEORIGIN');
    expect(res.headers['cross-origin-opener-policy']).to.equal('same-origin');
  });

  it('When a handler fails unexpectedly, then the 500 names no internal detail and the log has it with the request id', async () => {
    const config = system.ns.config();
    const real = await openStore(config);
    const broken: Store = new Proxy(real, {
      get(target, prop, receiver) {
        if (prop === 'findAccount') return async () => Promise.reject(new Error('invariant broken in /srv/secret/ledger.ts line 42'));
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const api = await startApi({ ...config, seedDemoAccounts: false }, { store: broken });
    try {
      const { default: request } = await import('supertest');
      const res = await request(api.url).get('/accounts/user-A').set(await system.auth('user-A')).expect(500);
      expect(res.body).to.deep.equal({ error: { code: 'internal_error', message: 'internal error' } });
      expect(res.text).to.not.contain('invariant');
      expect(res.text).to.not.contain('ledger.ts');
      const requestId = res.headers['x-request-id'] as string;
      const line = allLogLines.find((l) => l.includes('invariant broken') && l.includes(requestId));
      expect(line, 'the failure is logged with its request id').to.be.a('string');
    } finally {
      await api.stop();
      await real.close();
    }
  });

  it('When AUTH_DISABLED=true, then no key is needed and the process warns loudly', async () => {
    const open = await TestSystem.start({ env: { AUTH_DISABLED: 'true' } });
    try {
      await open.http().post('/transfer').send(A_TO_B).expect(202);
      expect(allLogLines.some((l) => l.includes('"level":"warn"') && l.includes('AUTH_DISABLED=true'))).to.equal(true);
    } finally {
      await open.stop();
    }
  });

  it('When the API starts on a fresh database with demo accounts, then it prints the demo keys once, and not on the next start', async () => {
    const fresh = await TestSystem.start({ worker: false });
    try {
      const freshEnv = fresh.ns.env({ LOG_LEVEL: 'info' });
      // The in-process API seeded this namespace already; a database of its own shows a first start.
      const first = new ServiceProcess('api', { ...freshEnv, DATABASE_URL: `sqlite:${fresh.ns.dbFile}.banner` });
      await first.port();
      first.kill('SIGTERM');
      await first.exited;
      expect(first.stderr.join('\n')).to.contain(DEMO_API_KEYS['user-A']);
      const second = new ServiceProcess('api', { ...freshEnv, DATABASE_URL: `sqlite:${fresh.ns.dbFile}.banner` });
      await second.port();
      second.kill('SIGTERM');
      await second.exited;
      expect(second.stderr.join('\n')).to.not.contain(DEMO_API_KEYS['user-A']);
    } finally {
      await fresh.stop();
      const { rmSync } = await import('node:fs');
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${fresh.ns.dbFile}.banner${suffix}`, { force: true });
    }
  });
});
