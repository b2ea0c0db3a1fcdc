import { waitFor } from './wait.js';

/**
 * What `npm test` needs running, and how to bring each up when it is installed
 * here but stopped: the decisions only. The probes and commands are passed in
 * (test/support/services.ts gives the real ones; the unit tests give fakes).
 */
export type Probe = { up: true } | { up: false; reason: string; /** Nothing listens: starting it may help. */ refused: boolean };

export interface Service {
  name: string;
  /** Where the suite looks for it, for the message. */
  where: string;
  probe(): Promise<Probe>;
  /**
   * The commands that bring it up on this machine, in order; null when it cannot
   * be done from here (not on this machine, or not installed).
   */
  startCommands(): Promise<string[][] | null>;
  /** The command a person runs when setup cannot (one line). */
  fix: string;
  /** How long it may take to answer once started. */
  readyWithinMs: number;
}

export interface SetupDeps {
  run(argv: string[]): Promise<void>;
  /** A line for the person running the tests, only when setup does something. */
  say(line: string): void;
  pollMs?: number;
}

/** Setup could not prepare a service; the message is the one line to show. */
export class SetupError extends Error {
  override name = 'SetupError';
}

/** Probes each service in order; starts what is stopped and installed; throws SetupError naming the fix otherwise. */
export async function prepareServices(services: readonly Service[], deps: SetupDeps): Promise<void> {
  for (const service of services) {
    const first = await service.probe();
    if (first.up) continue;
    const cannot = (why: string) => new SetupError(`npm test needs ${service.name} at ${service.where} (${why}); fix: ${service.fix}`);
    const commands = first.refused ? await service.startCommands() : null;
    if (!commands) throw cannot(first.reason);

    for (const argv of commands) {
      deps.say(`test setup: ${service.name} is not running; ${argv.join(' ')}`);
      try {
        await deps.run(argv);
      } catch (error) {
        throw cannot(`\`${argv.join(' ')}\` failed: ${firstLine(error)}`);
      }
    }
    let last: Probe = first;
    try {
      await waitFor(
        `${service.name} to answer`,
        async () => {
          last = await service.probe();
          return last.up;
        },
        { timeoutMs: service.readyWithinMs, intervalMs: deps.pollMs ?? 500 },
      );
    } catch {
      throw cannot(`started, but no answer within ${service.readyWithinMs / 1000} s: ${last.up ? 'up' : last.reason}`);
    }
    deps.say(`test setup: ${service.name} is up`);
  }
}

const firstLine = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown error';

/** Whether a URL names this machine, the only place setup may start anything. */
export function isLocal(url: string): boolean {
  return ['localhost', '127.0.0.1', '[::1]', '::1'].includes(new URL(url).hostname);
}

/**
 * The PostgreSQL cluster listening on `port`, from `pg_lsclusters --no-header`
 * ("15 main 5432 down postgres /var/lib/postgresql/15/main …"), or null.
 */
export function clusterOnPort(listing: string, port: number): { version: string; name: string } | null {
  for (const line of listing.split('\n')) {
    const [version, name, clusterPort] = line.trim().split(/\s+/);
    if (version && name && Number(clusterPort) === port) return { version, name };
  }
  return null;
}
