import cluster from 'node:cluster';
import { logger } from './logger.js';

type Disposer = () => Promise<void> | void;

/**
 * Ordered start-up, reverse shutdown. Each step that starts something registers
 * how to stop it; stopping runs them last-first under one hard deadline, so a
 * hung dependency cannot keep a process from exiting.
 */
export class Lifecycle {
  private readonly disposers: { name: string; dispose: Disposer }[] = [];
  private stopping: Promise<boolean> | null = null;

  onStop(name: string, dispose: Disposer): void {
    this.disposers.push({ name, dispose });
  }

  /** Safe to call more than once; every caller waits for the same stop. Resolves false if the deadline passed. */
  stop(timeoutMs: number): Promise<boolean> {
    this.stopping ??= this.runDisposers(timeoutMs);
    return this.stopping;
  }

  private async runDisposers(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    const disposeAll = (async () => {
      for (const { name, dispose } of [...this.disposers].reverse()) {
        try {
          await dispose();
        } catch (error) {
          logger.error('error while stopping', { component: name, error });
        }
      }
      return true as const;
    })();
    const finished = await Promise.race([disposeAll, deadline]);
    clearTimeout(timer);
    if (!finished) logger.error('shutdown deadline passed, exiting anyway', { timeoutMs });
    return finished;
  }
}

/**
 * SIGTERM/SIGINT stop the process through `stop`; a second signal exits at once,
 * for the operator who really means it. One of several API processes
 * (API_PROCESSES) leaves SIGINT to its supervisor: Ctrl-C reaches the whole group,
 * and the supervisor's SIGTERM on top would count as a second signal.
 */
export function exitOnSignals(stop: () => Promise<boolean>): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      logger.warn('second signal, exiting now', { signal });
      process.exit(1);
    }
    signalled = true;
    logger.info('stopping', { signal });
    stop().then(
      (clean) => {
        logger.info('stopped', { clean });
        process.exit(clean ? 0 : 1);
      },
      (error) => {
        logger.error('stop failed', { error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', cluster.isWorker ? () => undefined : onSignal);
}
