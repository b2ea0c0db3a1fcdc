import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { inheritedEnv } from '../../shared/runtime/config.js';
import { recordLine } from './log-capture.js';
import type { EnvOverrides } from './namespace.js';
import { waitFor } from './wait.js';

export type LogLine = Record<string, unknown> & { message?: string; level?: string };

const ENTRY = { api: 'api/main.ts', worker: 'worker/main.ts' } as const;

/** A real API or worker process, as `npm run start:api|start:worker` runs it, with its JSON log lines captured. */
/** Every service process still running, so a namespace can end its own before it is removed. */
const live = new Set<ServiceProcess>();

/**
 * Ends every process started with this AMQP_PREFIX. A namespace's cleanup calls it
 * first: a worker still running when its queues are deleted sees its consumer
 * cancelled, reconnects and declares them again, leaving them behind.
 */
export async function endProcessesUsing(prefix: string): Promise<void> {
  await Promise.all([...live].filter((p) => p.prefix === prefix).map((p) => p.dispose()));
}

export class ServiceProcess {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  readonly prefix: string | undefined;

  constructor(readonly kind: keyof typeof ENTRY, env: EnvOverrides) {
    this.prefix = env.AMQP_PREFIX;
    this.child = spawn(process.execPath, ['--import', 'tsx', ENTRY[kind]], {
      env: inheritedEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      recordLine(line);
      try {
        this.logs.push(JSON.parse(line) as LogLine);
      } catch {
        this.logs.push({ message: line, level: 'raw' });
      }
    });
    // stderr carries the demo-key banner and boot errors: output for a human, not log lines.
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.stderr.push(line));
    this.exited = once(this.child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
    live.add(this);
    void this.exited.then(() => live.delete(this));
  }

  get pid(): number {
    return this.child.pid!;
  }

  waitForLog(what: string, predicate: (line: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    return waitFor(`${this.kind} to log ${what}`, () => this.logs.find(predicate), { timeoutMs });
  }

  /** The port an API process listens on, once it says so. */
  async port(): Promise<number> {
    const line = await this.waitForLog('that it listens', (l) => l.message === 'API listening');
    return line.port as number;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Ends the process whatever state it is in; for test teardown. */
  async dispose(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** Runs `npm run dlq -- <args>` the way an operator would, and returns what it printed. */
export function runDlq(args: string[], env: EnvOverrides): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runTool('worker/dlq-cli.ts', args, env);
}

function runTool(entry: string, args: string[], env: EnvOverrides): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { env: inheritedEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs `npm run keys -- <args>` the way an operator would. */
export function runKeys(args: string[], env: EnvOverrides): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runTool('api/keys-cli.ts', args, env);
}

/**
 * For a describe block: a spawn function whose processes are all ended after each
 * test, whatever state the test left them in.
 */
export function processesPerTest(): (kind: 'api' | 'worker', env: EnvOverrides) => ServiceProcess {
  const running: ServiceProcess[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.dispose()));
  });
  return (kind, env) => {
    const p = new ServiceProcess(kind, env);
    running.push(p);
    return p;
  };
}
