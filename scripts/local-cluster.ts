import { spawn } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inheritedEnv } from '../shared/runtime/config.js';

/**
 * A three-node RabbitMQ cluster on this machine, next to the main broker (which
 * stays untouched on 5672), for development and the cluster test. Each node has
 * its own node name, AMQP, distribution and management ports, config file, data
 * and log directories under one state directory, and runs as the `rabbitmq` user
 * so that all of them share its Erlang cookie (which is what lets them cluster and
 * lets rabbitmqctl talk to them). `npm run cluster -- up|down|kill N|start N|status`
 * (scripts/cluster-cli.ts) drives it; the cluster test calls the same functions.
 */

export const STATE_DIR = path.join(tmpdir(), 'async-transfers-cluster');
const HOST = 'localhost';
const USER = 'rabbitmq';
/** Debian's package puts the real scripts here (its /usr/sbin wrappers su to rabbitmq and redirect output); elsewhere use PATH. */
const SBIN = existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server') ? '/usr/lib/rabbitmq/bin/' : '';
/** Starting three nodes and joining them takes about 40 s on two busy cores; a node alone 10-15 s. */
const STARTUP_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 20_000;

export interface ClusterNode {
  /** 1, 2 or 3. */
  index: number;
  /** Erlang node name, e.g. c1@localhost. */
  name: string;
  amqpPort: number;
  distPort: number;
  managementPort: number;
  dir: string;
  pidFile: string;
  /** guest may connect: the nodes listen on loopback only. */
  url: string;
  managementUrl: string;
}

export const NODES: readonly ClusterNode[] = [1, 2, 3].map((index) => {
  const dir = path.join(STATE_DIR, `c${index}`);
  return {
    index,
    name: `c${index}@${HOST}`,
    amqpPort: 5680 + index,
    distPort: 25680 + index,
    managementPort: 15680 + index,
    dir,
    pidFile: path.join(dir, 'pid'),
    url: `amqp://guest:guest@127.0.0.1:${5680 + index}`,
    managementUrl: `http://guest:guest@127.0.0.1:${15680 + index}`,
  };
});

/** AMQP_URL for the whole cluster, nodes in order. */
export const CLUSTER_AMQP_URL = NODES.map((n) => n.url).join(',');

export type Log = (line: string) => void;

export function node(index: number): ClusterNode {
  const found = NODES.find((n) => n.index === index);
  if (!found) throw new Error(`there is no node ${index}; the nodes are ${NODES.map((n) => n.index).join(', ')}`);
  return found;
}

/**
 * Brings the cluster up: nothing to do if its three nodes already run as one
 * cluster; otherwise whatever is left of an earlier run (nodes, data) is removed
 * and three fresh nodes are started and joined to the first.
 */
export async function clusterUp(log: Log = () => undefined): Promise<void> {
  const status = await clusterStatus();
  if (status.every((s) => s.running) && (await runningMembers()).length === NODES.length) {
    log(`the cluster is already up: ${NODES.map((n) => n.name).join(', ')}`);
    return;
  }
  if (status.some((s) => s.running || existsSync(s.node.dir))) {
    log('removing what is left of an earlier cluster');
    await clusterDown(log);
  }
  const started = Date.now();
  mkdirSync(STATE_DIR, { recursive: true });
  await Promise.all(NODES.map((n) => launch(n, { fresh: true })));
  for (const n of NODES) await awaitStartup(n);
  log(`3 nodes started in ${seconds(started)}`);
  const [first, ...others] = NODES;
  // Joining is one node at a time (each changes the cluster's membership); stopping and starting are not.
  await Promise.all(others.map((n) => ctl(n, ['stop_app'])));
  for (const n of others) await ctl(n, ['join_cluster', first!.name]);
  await Promise.all(others.map((n) => ctl(n, ['start_app'])));
  log(`${others.map((n) => n.name).join(' and ')} joined ${first!.name} (${seconds(started)})`);
  const members = await runningMembers();
  if (members.length !== NODES.length) throw new Error(`the cluster formed with ${members.join(', ') || 'no nodes'} running, not all of ${NODES.length}`);
  log(`cluster up in ${seconds(started)}: AMQP_URL=${CLUSTER_AMQP_URL}`);
}

/** Stops every node by its pid file (or by name if the pid file is gone) and removes the state directory. */
export async function clusterDown(log: Log = () => undefined): Promise<void> {
  await Promise.all(
    NODES.map(async (n) => {
      const pid = livePid(n);
      if (pid !== null) {
        process.kill(pid, 'SIGTERM');
        if (!(await waitGone(pid, STOP_TIMEOUT_MS))) {
          process.kill(pid, 'SIGKILL');
          await waitGone(pid, STOP_TIMEOUT_MS);
        }
        log(`${n.name} stopped (pid ${pid})`);
      } else if (await listening(n.distPort)) {
        // A node whose pid file was removed under it: ask it by name.
        await ctl(n, ['stop']).catch((error: Error) => log(`${n.name}: ${error.message}`));
        log(`${n.name} stopped by name`);
      }
    }),
  );
  rmSync(STATE_DIR, { recursive: true, force: true });
}

/** kill -9 one node: a crash, not a shutdown. */
export async function killNode(index: number, log: Log = () => undefined): Promise<void> {
  const n = node(index);
  const pid = livePid(n);
  if (pid === null) throw new Error(`${n.name} is not running`);
  process.kill(pid, 'SIGKILL');
  await waitGone(pid, STOP_TIMEOUT_MS);
  log(`${n.name} killed (pid ${pid})`);
}

/** Starts a stopped or killed node on its own data; it rejoins the cluster it belongs to. */
export async function startNode(index: number, log: Log = () => undefined): Promise<void> {
  const n = node(index);
  if (!existsSync(n.dir)) throw new Error(`${n.name} was never set up: npm run cluster -- up`);
  if (livePid(n) !== null) {
    log(`${n.name} is already running`);
    return;
  }
  const started = Date.now();
  await launch(n, { fresh: false });
  await awaitStartup(n);
  log(`${n.name} started in ${seconds(started)}`);
}

/**
 * Raises or clears a memory alarm on a node: the broker then blocks every publishing
 * connection of the cluster (connection.blocked), as it does when it runs short of memory.
 */
export async function memoryAlarm(index: number, on: boolean): Promise<void> {
  await ctl(node(index), on ? ['set_vm_memory_high_watermark', 'absolute', '1'] : ['set_vm_memory_high_watermark', '0.4']);
}

export interface NodeStatus {
  node: ClusterNode;
  pid: number | null;
  running: boolean;
}

export async function clusterStatus(): Promise<NodeStatus[]> {
  return Promise.all(
    NODES.map(async (n) => {
      const pid = livePid(n);
      return { node: n, pid, running: pid !== null && (await listening(n.amqpPort)) };
    }),
  );
}

/** The nodes the cluster reports running, asked through the first live node; empty if none answers. */
export async function runningMembers(): Promise<string[]> {
  for (const s of await clusterStatus()) {
    if (!s.running) continue;
    try {
      const { stdout } = await ctl(s.node, ['cluster_status', '--formatter', 'json']);
      return (JSON.parse(stdout) as { running_nodes: string[] }).running_nodes.sort();
    } catch {
      // Try the next node.
    }
  }
  return [];
}

// --- running the node and rabbitmqctl as the rabbitmq user

function configFile(n: ClusterNode): string {
  return [
    `listeners.tcp.default = 127.0.0.1:${n.amqpPort}`,
    `management.tcp.port = ${n.managementPort}`,
    'management.tcp.ip = 127.0.0.1',
    // The listeners are on loopback only; this lets guest in through any of them.
    'loopback_users = none',
    '',
  ].join('\n');
}

function nodeEnv(n: ClusterNode): Record<string, string | undefined> {
  return {
    ...inheritedEnv(),
    ...asUser().env,
    RABBITMQ_NODENAME: n.name,
    RABBITMQ_NODE_PORT: String(n.amqpPort),
    RABBITMQ_DIST_PORT: String(n.distPort),
    RABBITMQ_CONFIG_FILE: path.join(n.dir, 'rabbitmq.conf'),
    // Not the machine's /etc/rabbitmq ones: the main broker's plugins and advanced config stay its own.
    RABBITMQ_ADVANCED_CONFIG_FILE: path.join(n.dir, 'advanced.config'),
    RABBITMQ_ENABLED_PLUGINS_FILE: path.join(n.dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: path.join(n.dir, 'mnesia'),
    RABBITMQ_LOG_BASE: path.join(n.dir, 'log'),
    RABBITMQ_PID_FILE: n.pidFile,
  };
}

async function launch(n: ClusterNode, { fresh }: { fresh: boolean }): Promise<void> {
  const user = asUser();
  if (fresh) {
    rmSync(n.dir, { recursive: true, force: true });
    for (const dir of [n.dir, path.join(n.dir, 'mnesia'), path.join(n.dir, 'log')]) mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(n.dir, 'rabbitmq.conf'), configFile(n));
    writeFileSync(path.join(n.dir, 'enabled_plugins'), '[rabbitmq_management].\n');
    if (user.uid !== undefined) {
      for (const p of [STATE_DIR, n.dir, ...['mnesia', 'log', 'rabbitmq.conf', 'enabled_plugins'].map((f) => path.join(n.dir, f))]) chownSync(p, user.uid, user.gid!);
    }
  }
  rmSync(n.pidFile, { force: true });
  // -detached returns once the VM is forked, before the node has registered: awaitStartup waits for it.
  const out = openSync(path.join(n.dir, 'startup.log'), 'a');
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(`${SBIN}rabbitmq-server`, ['-detached'], { cwd: n.dir, env: nodeEnv(n), uid: user.uid, gid: user.gid, stdio: ['ignore', out, out] });
      child.on('error', reject);
      child.on('exit', resolve);
    });
    if (code !== 0) throw new Error(`rabbitmq-server -detached for ${n.name} exited ${code}; see ${path.join(n.dir, 'startup.log')}`);
  } finally {
    closeSync(out);
  }
}

/**
 * Waits for the node to boot. rabbitmqctl await_startup fails at once while the
 * node has not registered yet, and each rabbitmqctl call is an Erlang VM of its
 * own (about 1.5 s of CPU), so first wait cheaply for the node's distribution
 * port, then let one await_startup block until the boot is done.
 */
async function awaitStartup(n: ClusterNode): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let last = 'its distribution port never opened';
  while (Date.now() < deadline) {
    if (!(await listening(n.distPort))) {
      await sleep(200);
      continue;
    }
    try {
      await ctl(n, ['await_startup', '--timeout', String(Math.max(1, Math.ceil((deadline - Date.now()) / 1000)))]);
      return;
    } catch (error) {
      last = (error as Error).message;
      await sleep(500);
    }
  }
  throw new Error(`${n.name} did not start within ${STARTUP_TIMEOUT_MS / 1000} s (${last}); see ${path.join(n.dir, 'log')}`);
}

function ctl(n: ClusterNode, args: string[]): Promise<{ stdout: string }> {
  const user = asUser();
  return new Promise((resolve, reject) => {
    const child = spawn(`${SBIN}rabbitmqctl`, ['-n', n.name, ...args], {
      env: { ...inheritedEnv(), ...user.env },
      uid: user.uid,
      gid: user.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout });
      else reject(new Error(`rabbitmqctl -n ${n.name} ${args.join(' ')} exited ${code}: ${(stderr || stdout).trim().split('\n').slice(-3).join(' ')}`));
    });
  });
}

let user: { uid?: number; gid?: number; env: Record<string, string> } | null = null;

/**
 * How to run as the rabbitmq user: as root, switch to it; as rabbitmq, stay.
 * HOME is its home, where its Erlang cookie lives.
 */
function asUser(): { uid?: number; gid?: number; env: Record<string, string> } {
  if (user) return user;
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === USER);
  if (!entry) throw new Error(`there is no ${USER} user: install RabbitMQ's package first`);
  const [uid, gid, home] = [Number(entry[2]), Number(entry[3]), entry[5]!];
  const me = process.getuid?.();
  if (me === uid) user = { env: { HOME: home } };
  else if (me === 0) user = { uid, gid, env: { HOME: home } };
  else throw new Error(`run this as root or as ${USER}: the nodes run as ${USER} to share its Erlang cookie`);
  return user;
}

// --- processes and ports

/** The node's pid from its pid file, if that process is alive (a zombie is not). */
function livePid(n: ClusterNode): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(n.pidFile, 'utf8').trim());
  } catch {
    return null;
  }
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : null;
}

/** Alive and an Erlang VM (a pid file can outlive its process, and the pid be reused). */
function alive(pid: number): boolean {
  if (existsSync('/proc/self')) {
    try {
      // A killed node stays a zombie until its parent (init) reaps it: dead all the same.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.includes('(beam') && !/\) Z /.test(stat);
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}
