import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { inheritedEnv } from '../../shared/runtime/config.js';

/**
 * A process of the system (or a bench server) started as `npm run start:*` would,
 * with its stdout read only until it says it is ready: a benchmark must not pay
 * for parsing hundreds of thousands of log lines.
 */
export class Service {
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    entry: string,
    env: Record<string, string>,
  ) {
    // TypeScript (the bench's own servers) through tsx; compiled JavaScript as it is.
    this.child = spawn(process.execPath, entry.endsWith('.ts') ? ['--import', 'tsx', entry] : [entry], { env: inheritedEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    const reader = createInterface({ input: this.child.stdout! });
    reader.on('line', (line) => {
      if (this.lines.length < 200) this.lines.push(line);
    });
    this.child.stderr!.on('data', (c: Buffer) => {
      if (this.lines.length < 200) this.lines.push(`stderr: ${c.toString()}`);
    });
    this.exited = once(this.child, 'exit').then(([code]) => code as number | null);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Resolves with the first log line that contains `marker`, parsed. */
  async ready(marker: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.find((l) => l.includes(marker));
      if (line) return JSON.parse(line) as Record<string, unknown>;
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited (${this.child.exitCode}) before "${marker}": ${this.lines.slice(-5).join('\n')}`);
      if (Date.now() > deadline) throw new Error(`${this.name} never said "${marker}"`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Peak resident set size so far, from the kernel's own high-water mark (VmHWM). */
  peakRssBytes(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return Number(kb) * 1024;
  }

  /** CPU seconds used so far (user + system). */
  cpuSeconds(): number {
    const fields = readFileSync(`/proc/${this.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}
