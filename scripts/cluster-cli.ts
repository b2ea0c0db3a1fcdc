import { CLUSTER_AMQP_URL, clusterDown, clusterStatus, clusterUp, killNode, NODES, runningMembers, startNode, STATE_DIR } from './local-cluster.js';

const USAGE = `usage: npm run cluster -- up|down|status|kill N|start N

up      start three RabbitMQ nodes on this machine and join them in one cluster
        (nothing to do if it is up; what an earlier run left is removed first)
down    stop the nodes and remove their data (${STATE_DIR})
status  which nodes run, and the cluster's running members
kill N  kill -9 node N (1-3), as a crash would
start N start node N again on its data; it rejoins the cluster

The main broker on 5672 is not touched. Run as root or as the rabbitmq user.`;

const log = (line: string) => process.stdout.write(`${line}\n`);

async function main(args: string[]): Promise<number> {
  const [command, arg] = args;
  const index = Number(arg);
  switch (command) {
    case 'up':
      await clusterUp(log);
      return 0;
    case 'down':
      await clusterDown(log);
      log('cluster down');
      return 0;
    case 'kill':
    case 'start':
      if (!NODES.some((n) => n.index === index)) break;
      await (command === 'kill' ? killNode : startNode)(index, log);
      return 0;
    case 'status': {
      for (const s of await clusterStatus()) {
        const n = s.node;
        log(`${n.name}  ${s.running ? `running (pid ${s.pid})` : 'down'}  amqp ${n.amqpPort}  dist ${n.distPort}  management http://127.0.0.1:${n.managementPort}`);
      }
      const members = await runningMembers();
      log(`running members: ${members.join(', ') || 'none'}`);
      log(`AMQP_URL=${CLUSTER_AMQP_URL}`);
      return 0;
    }
    case undefined:
      break;
  }
  process.stderr.write(`${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`cluster: ${error.message}\n`);
    process.exit(1);
  },
);
