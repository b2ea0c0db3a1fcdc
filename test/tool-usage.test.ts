import { spawn } from 'node:child_process';
import path from 'node:path';
import { expect } from 'chai';
import { toolCommand, type Invocation } from '../shared/runtime/cli-usage.js';
import { inheritedEnv } from '../shared/runtime/config.js';
import { testStores, type EnvOverrides } from './support/namespace.js';
import { TestSystem } from './support/system.js';

const ROOT = process.cwd();
const at = (over: Partial<Invocation>): Invocation => ({ argv: ['/usr/bin/node', `${ROOT}/api/keys-cli.ts`], execArgv: [], cwd: ROOT, npm: null, ...over });

describe('the CLI tools name the command that started them', () => {
  it('When npm runs the tool’s own script, then the usage says `npm run <script> --`', () => {
    const npm = { event: 'keys', script: 'node --import tsx api/keys-cli.ts' };
    expect(toolCommand(at({ execArgv: ['--import', 'tsx'], npm }))).to.equal('npm run keys --');
  });

  it('When npm runs another script that spawns the tool (npm test), then the usage gives the node command instead', () => {
    const npm = { event: 'test', script: "mocha 'test/**/*.test.ts'" };
    expect(toolCommand(at({ execArgv: ['--import', 'tsx'], npm }))).to.equal('node --import tsx api/keys-cli.ts');
  });

  it('When node runs the compiled tool, as in the image, then the usage says node and the script relative to the working directory', () => {
    expect(toolCommand(at({ argv: ['/usr/local/bin/node', '/app/dist/worker/dlq-cli.js'], cwd: '/app' }))).to.equal('node dist/worker/dlq-cli.js');
    expect(toolCommand(at({ argv: ['node', '/app/dist/worker/dlq-cli.js'], cwd: '/app/dist' }))).to.equal('node worker/dlq-cli.js');
    expect(toolCommand(at({ argv: ['node', '/srv/my app/dist/api/keys-cli.js'], cwd: '/srv/my app' }))).to.equal('node dist/api/keys-cli.js');
    expect(toolCommand(at({ argv: ['node', '/srv/my app/dist/api/keys-cli.js'], cwd: '/tmp' }))).to.equal(`node '../srv/my app/dist/api/keys-cli.js'`);
  });
});

/** Runs a command line through the shell, the way a person pastes it. */
function shell(line: string, env: EnvOverrides, cwd = ROOT): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', line], { cwd, env: inheritedEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The command the usage text gives for `<sub>` (the text before " <sub> "). */
function commandIn(usage: string, sub: string): string {
  const line = usage.split('\n').find((l) => l.includes(` ${sub} `));
  expect(line, `a "${sub}" line in:\n${usage}`).to.be.a('string');
  return line!.replace(/^usage:/, '').trim().split(` ${sub} `)[0]!;
}

describe(`[${testStores()[0]}] the commands the usage texts give work as written`, function () {
  this.timeout(60_000);
  let system: TestSystem;
  let env: EnvOverrides;
  before(async () => {
    system = await TestSystem.start({ db: testStores()[0] });
    env = system.ns.env();
  });
  after(async () => system?.stop());

  const forms = [
    { how: 'npm run keys -- --help', expected: 'npm run keys --', sub: 'list', works: /^\d+ key\(s\)$/m },
    { how: 'node --import tsx api/keys-cli.ts --help', expected: 'node --import tsx api/keys-cli.ts', sub: 'list', works: /^\d+ key\(s\)$/m },
    { how: 'npm run dlq -- --help', expected: 'npm run dlq --', sub: 'list', works: /\.dead: 0 parked$/m },
    { how: 'node --import tsx worker/dlq-cli.ts --help', expected: 'node --import tsx worker/dlq-cli.ts', sub: 'list', works: /\.dead: 0 parked$/m },
  ];
  for (const form of forms) {
    it(`When started as \`${form.how}\`, then its usage names \`${form.expected}\` and that command runs`, async () => {
      const help = await shell(form.how, env);
      expect(help.code, help.stderr).to.equal(0);
      const command = commandIn(help.stdout, form.sub);
      expect(command).to.equal(form.expected);
      const run = await shell(`${command} ${form.sub}`, env);
      expect(run.code, run.stderr).to.equal(0);
      expect(run.stdout).to.match(form.works);
    });
  }

  it('When started from another directory, then the usage gives the path from there, and it runs from there', async () => {
    const help = await shell('node --import tsx ../api/keys-cli.ts --help', env, path.join(ROOT, 'worker'));
    const command = commandIn(help.stdout, 'list');
    expect(command).to.equal('node --import tsx ../api/keys-cli.ts');
    const run = await shell(`${command} list`, env, path.join(ROOT, 'worker'));
    expect(run.code, run.stderr).to.equal(0);
  });
});
