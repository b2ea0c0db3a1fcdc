import { expect } from 'chai';
import { DEMO_API_KEYS } from '../shared/domain/demo-accounts.js';
import { TestNamespace } from './support/namespace.js';
import { processesPerTest, type ServiceProcess } from './support/processes.js';
import { waitFor } from './support/wait.js';

const AUTH = { Authorization: `Bearer ${DEMO_API_KEYS['user-A']}` };

async function post(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/transfer`, {
    method: 'POST',
    headers: { ...AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ fromAccount: 'user-A', toAccount: 'user-B', amount: '0.10' }),
  });
  expect(res.status).to.equal(202);
  return ((await res.json()) as { transferId: string }).transferId;
}

async function status(port: number, id: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/transfers/${id}`, { headers: AUTH });
  return ((await res.json()) as { status: string }).status;
}

/** The pids the supervisor started, once every process listens. */
async function started(api: ServiceProcess): Promise<number[]> {
  const line = await api.waitForLog('that its processes started', (l) => l.message === 'API processes started', 60_000);
  return line.pids as number[];
}

describe('[postgres] API_PROCESSES=2: several API processes on one port', function () {
  this.timeout(90_000);
  const spawnService = processesPerTest();
  let ns: TestNamespace;
  beforeEach(async () => {
    ns = new TestNamespace('postgres');
    await ns.prepare();
  });
  afterEach(async () => ns.cleanup());

  it('When API_PROCESSES=2, then both processes serve one port and take transfers, every transfer ends notified, and SIGTERM stops both cleanly', async () => {
    const env = ns.env({ API_PROCESSES: '2', LOG_LEVEL: 'info' });
    const api = spawnService('api', env);
    spawnService('worker', env);
    const pids = await started(api);
    expect(new Set(pids).size).to.equal(2);
    const listening = api.logs.filter((l) => l.message === 'API listening');
    expect(listening.map((l) => l.pid).sort()).to.deep.equal([...pids].sort());
    const port = listening[0]!.port as number;
    expect(listening[1]!.port, 'one port').to.equal(port);

    // Concurrent requests open several connections, which the supervisor hands out in turn.
    const ids = (await Promise.all(Array.from({ length: 5 }, () => Promise.all(Array.from({ length: 8 }, () => post(port)))))).flat();
    const acceptedBy = new Set(api.logs.filter((l) => l.message === 'transfer accepted').map((l) => l.pid));
    expect([...acceptedBy].sort(), 'both processes took transfers').to.deep.equal([...pids].sort());
    for (const id of ids) await waitFor(`transfer ${id} to be notified`, async () => (await status(port, id)) === 'notified');

    api.kill('SIGTERM');
    expect((await api.exited).code).to.equal(0);
    const stopped = api.logs.filter((l) => l.message === 'stopped');
    // Each API process ran its own ordered shutdown, then the supervisor.
    expect(stopped.filter((l) => l.pid !== undefined).map((l) => [l.pid, l.clean]).sort()).to.deep.equal(pids.sort().map((pid) => [pid, true]));
    expect(stopped.at(-1)).to.include({ clean: true });
    expect(stopped.at(-1)).to.not.have.property('pid');
  });

  it('When one API process is killed -9, then the supervisor starts another and the port keeps answering', async () => {
    const env = ns.env({ API_PROCESSES: '2', LOG_LEVEL: 'info' });
    const api = spawnService('api', env);
    const [victim] = await started(api);
    const port = await api.port();
    process.kill(victim!, 'SIGKILL');
    const replaced = await api.waitForLog('a replacement', (l) => l.message === 'an API process died; starting another');
    expect(replaced).to.include({ pid: victim });
    await waitFor('a third process to listen', () => api.logs.filter((l) => l.message === 'API listening').length === 3);
    for (let i = 0; i < 6; i++) await post(port);
  });

  it('When the API processes cannot start (the database is unreachable), then the supervisor stops and exits 1', async () => {
    const api = spawnService('api', ns.env({ API_PROCESSES: '2', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nothing', LOG_LEVEL: 'info' }));
    expect((await api.exited).code).to.equal(1);
    expect(api.logs.some((l) => l.message === 'failed to start' && l.pid === undefined)).to.equal(true);
  });
});
