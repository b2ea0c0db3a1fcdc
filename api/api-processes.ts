import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../shared/runtime/config.js';
import { logger } from '../shared/runtime/logger.js';

/**
 * API_PROCESSES=N: this process becomes a supervisor that forks N API processes
 * (node:cluster), so one machine's cores all take requests on one port. Each
 * process is a whole API (its own store pool, broker connection and outbox relay:
 * the relays already split the outbox through leases). The supervisor itself
 * opens nothing.
 *
 * - Start: the first process alone (it creates the schema and the demo accounts,
 *   which concurrent first starts would race on), then the others.
 *   A process that exits before it listens is a boot failure that a restart will
 *   not cure: the supervisor stops the rest and exits 1, as a single process would.
 * - A process that dies later (a crash, an OOM kill) is replaced at once; its
 *   leased outbox events go to any relay once OUTBOX_LEASE_MS has passed. More
 *   than CRASH_LIMIT crashes within CRASH_WINDOW_MS is a crash loop: stop, exit 1.
 * - Stop (SIGTERM/SIGINT to the supervisor): SIGTERM to every process, each runs
 *   its ordered shutdown; clean only if all exit 0 in time.
 */
const CRASH_LIMIT = 3;
const CRASH_WINDOW_MS = 60_000;

export interface Supervisor {
  stop(): Promise<boolean>;
}

export async function superviseApiProcesses(config: Config): Promise<Supervisor> {
  const supervisor = new ApiSupervisor(config);
  try {
    await supervisor.start();
  } catch (error) {
    await supervisor.stop();
    throw error;
  }
  return supervisor;
}

class ApiSupervisor implements Supervisor {
  private readonly workers = new Set<Worker>();
  private readonly crashes: number[] = [];
  private stopping: Promise<boolean> | null = null;
  /** Rejects the start, or (once started) stops everything, when the group cannot go on. */
  private fail: (error: Error) => void = () => undefined;

  constructor(private readonly config: Config) {}

  async start(): Promise<void> {
    const failed = new Promise<never>((_, reject) => {
      this.fail = reject;
    });
    failed.catch(() => undefined);
    await Promise.race([this.fork(), failed]);
    await Promise.race([Promise.all(Array.from({ length: this.config.apiProcesses - 1 }, () => this.fork())), failed]);
    logger.info('API processes started', { processes: this.config.apiProcesses, pids: [...this.workers].map((w) => w.process.pid) });
    // From now on a failure stops the group and exits 1.
    this.fail = (error) => {
      logger.error('stopping every API process', { error: error.message });
      void this.stop().then(() => process.exit(1));
    };
  }

  /** Forks one API process; resolves when it listens. */
  private fork(): Promise<void> {
    const worker = cluster.fork();
    this.workers.add(worker);
    let listening = false;
    worker.on('exit', (code, signal) => {
      this.workers.delete(worker);
      if (this.stopping) return;
      const how = signal ? `signal ${signal}` : `code ${code}`;
      if (!listening) {
        this.fail(new Error(`an API process (pid ${worker.process.pid}) exited with ${how} before it listened`));
        return;
      }
      const now = Date.now();
      this.crashes.push(now);
      while (this.crashes[0]! < now - CRASH_WINDOW_MS) this.crashes.shift();
      if (this.crashes.length > CRASH_LIMIT) {
        this.fail(new Error(`${this.crashes.length} API processes died within ${CRASH_WINDOW_MS / 1000} s`));
        return;
      }
      logger.error('an API process died; starting another', { pid: worker.process.pid, exit: how });
      this.fork().catch((error: Error) => this.fail(error));
    });
    return new Promise((resolve) => {
      worker.once('listening', () => {
        listening = true;
        resolve();
      });
    });
  }

  stop(): Promise<boolean> {
    this.stopping ??= (async () => {
      const exits = [...this.workers].map(
        (w) =>
          new Promise<boolean>((resolve) => {
            if (w.isDead()) return resolve(w.process.exitCode === 0);
            w.once('exit', (code) => resolve(code === 0));
            w.process.kill('SIGTERM');
          }),
      );
      // Each process keeps to SHUTDOWN_TIMEOUT_MS itself; the margin covers its exit.
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), this.config.shutdownTimeoutMs + 2000);
      });
      const result = await Promise.race([Promise.all(exits), deadline]);
      clearTimeout(timer);
      if (result === 'late') {
        for (const w of this.workers) w.process.kill('SIGKILL');
        logger.error('API processes still running at the shutdown deadline were killed', { pids: [...this.workers].map((w) => w.process.pid) });
        return false;
      }
      return result.every(Boolean);
    })();
    return this.stopping;
  }
}
