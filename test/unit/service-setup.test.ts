import { expect } from 'chai';
import { SetupError, clusterOnPort, isLocal, prepareServices, type Probe, type Service } from '../support/service-setup.js';

/** A service whose state the test scripts: down until `upAfter` probes after its start commands ran. */
function fakeService(options: { name?: string; up?: boolean; refused?: boolean; commands?: string[][] | null; upAfterStartProbes?: number } = {}) {
  const state = { started: false, probes: 0, probesSinceStart: 0 };
  const service: Service = {
    name: options.name ?? 'RabbitMQ',
    where: 'amqp://127.0.0.1:5672',
    async probe(): Promise<Probe> {
      state.probes++;
      if (options.up) return { up: true };
      if (state.started && ++state.probesSinceStart >= (options.upAfterStartProbes ?? 1)) return { up: true };
      return { up: false, reason: 'connect ECONNREFUSED 127.0.0.1:5672', refused: options.refused ?? true };
    },
    startCommands: async () => (options.commands === undefined ? [['rabbitmq-server', '-detached'], ['rabbitmqctl', 'await_startup']] : options.commands),
    fix: 'rabbitmq-server -detached && rabbitmqctl await_startup',
    readyWithinMs: 300,
  };
  return { service, state };
}

/** Runs nothing: records each command, and `onRun` plays what it does to the fakes. */
function recorder(options: { failing?: string; onRun?: (argv: string[]) => void } = {}) {
  const ran: string[] = [];
  const said: string[] = [];
  return {
    ran,
    said,
    deps: {
      run: async (argv: string[]) => {
        ran.push(argv.join(' '));
        if (argv[0] === options.failing) throw new Error(`${argv[0]}: command failed\nmore detail`);
        options.onRun?.(argv);
      },
      say: (line: string) => said.push(line),
      pollMs: 5,
    },
  };
}

const failure = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(SetupError);
    return (error as Error).message;
  }
  throw new Error('setup went on');
};

describe('test setup (test/support/service-setup.ts) deciding what to start', () => {
  it('When every service answers, then setup runs nothing and says nothing', async () => {
    const rec = recorder();
    const services = [fakeService({ up: true }), fakeService({ name: 'PostgreSQL', up: true })];
    await prepareServices(services.map((s) => s.service), rec.deps);
    expect(rec.ran).to.deep.equal([]);
    expect(rec.said).to.deep.equal([]);
    expect(services.map((s) => s.state.probes)).to.deep.equal([1, 1]);
  });

  it('When a local service refuses connections and is installed, then its start commands run in order and setup waits until it answers', async () => {
    const rabbit = fakeService({ upAfterStartProbes: 3 });
    const rec = recorder({ onRun: (argv) => (rabbit.state.started ||= argv[0] === 'rabbitmq-server') });
    await prepareServices([rabbit.service], rec.deps);
    expect(rec.ran).to.deep.equal(['rabbitmq-server -detached', 'rabbitmqctl await_startup']);
    expect(rabbit.state.probesSinceStart).to.equal(3);
    expect(rec.said.at(-1)).to.equal('test setup: RabbitMQ is up');
  });

  it('When the management plugin is off, then it is enabled and the next service is probed only after the API answers', async () => {
    const management = fakeService({ name: "RabbitMQ's management HTTP API", commands: [['rabbitmq-plugins', 'enable', 'rabbitmq_management']], upAfterStartProbes: 2 });
    const postgres = fakeService({ name: 'PostgreSQL', up: true });
    const rec = recorder({ onRun: () => (management.state.started = true) });
    await prepareServices([management.service, postgres.service], rec.deps);
    expect(rec.ran).to.deep.equal(['rabbitmq-plugins enable rabbitmq_management']);
    expect(management.state.probesSinceStart).to.equal(2);
    expect(postgres.state.probes).to.equal(1);
  });

  it('When a stopped service cannot be started from here, then setup stops with one line naming the fix', async () => {
    const rec = recorder();
    const message = await failure(prepareServices([fakeService({ commands: null }).service, fakeService({ name: 'PostgreSQL', up: true }).service], rec.deps));
    expect(message).to.equal('npm test needs RabbitMQ at amqp://127.0.0.1:5672 (connect ECONNREFUSED 127.0.0.1:5672); fix: rabbitmq-server -detached && rabbitmqctl await_startup');
    expect(message).to.not.contain('\n');
    expect(rec.ran).to.deep.equal([]);
  });

  it('When a service answers but not as it should (not "refused"), then setup starts nothing and names the fix', async () => {
    const rec = recorder();
    await failure(prepareServices([fakeService({ refused: false }).service], rec.deps));
    expect(rec.ran).to.deep.equal([]);
  });

  it('When a start command fails, then setup stops with one line naming that command and its first line of output', async () => {
    const rec = recorder({ failing: 'rabbitmq-server' });
    const message = await failure(prepareServices([fakeService().service], rec.deps));
    expect(message).to.match(/\(`rabbitmq-server -detached` failed: rabbitmq-server: command failed\); fix: rabbitmq-server -detached/);
    expect(message).to.not.contain('\n');
    expect(rec.ran).to.deep.equal(['rabbitmq-server -detached']);
  });

  it('When a started service never answers, then setup stops after its wait with one line', async () => {
    const rec = recorder();
    const message = await failure(prepareServices([fakeService().service], rec.deps));
    expect(message).to.match(/started, but no answer within 0.3 s: connect ECONNREFUSED/);
  });

  it('When PostgreSQL clusters are listed, then the one on the URL’s port is the one to start', () => {
    const listing = '15 main    5432 down   postgres /var/lib/postgresql/15/main    /var/log/postgresql/postgresql-15-main.log\n15 scratch 5499 online postgres /var/lib/postgresql/15/scratch /var/log/x.log\n';
    expect(clusterOnPort(listing, 5432)).to.deep.equal({ version: '15', name: 'main' });
    expect(clusterOnPort(listing, 5499)).to.deep.equal({ version: '15', name: 'scratch' });
    expect(clusterOnPort(listing, 6543)).to.equal(null);
    expect(clusterOnPort('', 5432)).to.equal(null);
  });

  it('When a URL names another machine, then setup will not try to start anything for it', () => {
    expect(['amqp://guest:guest@localhost:5672', 'postgres://postgres@127.0.0.1:5432/postgres', 'http://[::1]:15672'].map(isLocal)).to.deep.equal([true, true, true]);
    expect(['amqp://rabbit.internal:5672', 'postgres://db:5432/x'].map(isLocal)).to.deep.equal([false, false]);
  });
});
