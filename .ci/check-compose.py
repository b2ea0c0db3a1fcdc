"""Checks the resolved compose file (`docker-compose config` output on stdin) for what the README promises:
every service there, healthchecks gating start-up, volumes, a worker that `--scale worker=N` can multiply,
and host ports that are published on 127.0.0.1 only, each configurable, clear of a RabbitMQ already on
the host (5672, 15672, 25672), with AMQP published only by the opt-in docker-compose.amqp.yml; and the
cluster variant (docker-compose.cluster.yml over the base file): three nodes with one cookie, one config
listing them, a volume each, and the API and the workers given all three and waiting for them."""
import os
import re
import shutil
import subprocess
import sys

import yaml  # ships with Debian's docker-compose

config = yaml.safe_load(sys.stdin)
services = config["services"]
problems = []


def need(condition, message):
    if not condition:
        problems.append(message)


for name in ["rabbitmq", "postgres", "mailpit", "api", "worker"]:
    need(name in services, f"service {name} is missing")
if problems:
    sys.exit("\n".join(problems))

rabbit, pg, mailpit, api, worker = (services[n] for n in ["rabbitmq", "postgres", "mailpit", "api", "worker"])


def ports(service):
    """Each published port as (host address, host port, container port), in either syntax docker-compose prints."""
    result = []
    for p in service.get("ports", []):
        if isinstance(p, dict):
            result.append((p.get("host_ip", ""), str(p.get("published", "")), str(p.get("target"))))
        else:
            parts = str(p).split(":")
            ip = parts[0] if len(parts) == 3 else ""
            result.append((ip, parts[-2] if len(parts) >= 2 else "", parts[-1].split("/")[0]))
    return result


def published(service):
    return {target for _, _, target in ports(service)}


def resolved(*files, env=None):
    """`docker-compose config` of these files, with these variables set; None when docker-compose is not here."""
    if not shutil.which("docker-compose"):
        return None
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    args = ["docker-compose"] + [a for f in files for a in ("-f", f)] + ["config"]
    out = subprocess.run(args, cwd=root, env={**os.environ, **(env or {})}, check=True, capture_output=True, text=True).stdout
    return yaml.safe_load(out)["services"]


need("management" in rabbit["image"], "rabbitmq must use a -management image (the UI)")
need("15672" in published(rabbit), "rabbitmq must publish its management UI (15672)")
need("5672" not in published(rabbit), "rabbitmq must not publish AMQP by default (docker-compose.amqp.yml adds it)")
need("healthcheck" in rabbit, "rabbitmq needs a healthcheck")
need(any("/var/lib/rabbitmq" in str(v) for v in rabbit.get("volumes", [])), "rabbitmq needs a volume for /var/lib/rabbitmq")
need("hostname" in rabbit, "rabbitmq needs a fixed hostname so its volume is reused after a restart")
need("healthcheck" in pg, "postgres needs a healthcheck")
need(any("/var/lib/postgresql" in str(v) for v in pg.get("volumes", [])), "postgres needs a data volume")
need("8025" in published(mailpit), "mailpit must publish its web UI (8025)")
need("3000" in published(api), "api must publish port 3000")

for name, svc in [("api", api), ("worker", worker)]:
    deps = svc.get("depends_on", {})
    for dep in ["rabbitmq", "postgres"]:
        need(isinstance(deps, dict) and deps.get(dep, {}).get("condition") == "service_healthy", f"{name} must wait for a healthy {dep}")
    need(svc.get("restart") in ("always", "unless-stopped", "on-failure"), f"{name} needs a restart policy")
    need(str(svc.get("environment", {}).get("DATABASE_URL", "")).startswith("postgres"), f"{name} must share PostgreSQL")

# Nothing open to the network by accident, and nothing in the way of a RabbitMQ already on the host.
HOST_RABBITMQ = {"5672", "15672", "25672"}


def check_ports(services, where=""):
    for name, svc in services.items():
        for ip, host, target in ports(svc):
            need(ip == "127.0.0.1", f"{where}{name} publishes {target} on {ip or 'every address'}; bind it to 127.0.0.1")
            need(host not in HOST_RABBITMQ, f"{where}{name} publishes {target} on host port {host}, which a local RabbitMQ uses")
            need(host != "", f"{where}{name} publishes {target} on a random host port; name one")


check_ports(services)

# Each host port is a variable: set it and the published port follows.
moved = resolved("docker-compose.yml", env={"API_PORT": "13001", "RABBITMQ_UI_PORT": "13002", "MAILPIT_PORT": "13003"})
if moved is not None:
    for name, variable, port in [("api", "API_PORT", "13001"), ("rabbitmq", "RABBITMQ_UI_PORT", "13002"), ("mailpit", "MAILPIT_PORT", "13003")]:
        need(port in {host for _, host, _ in ports(moved[name])}, f"{variable} must move {name}'s host port")
    # The opt-in AMQP override adds AMQP on 127.0.0.1, clear of the host's 5672, and keeps the UI.
    with_amqp = resolved("docker-compose.yml", "docker-compose.amqp.yml")
    amqp_ports = [(ip, host) for ip, host, target in ports(with_amqp["rabbitmq"]) if target == "5672"]
    need(len(amqp_ports) == 1 and amqp_ports[0][0] == "127.0.0.1" and amqp_ports[0][1] not in HOST_RABBITMQ,
         f"docker-compose.amqp.yml must publish AMQP once on 127.0.0.1, off the host RabbitMQ's ports: {amqp_ports}")
    need("15672" in published(with_amqp["rabbitmq"]), "docker-compose.amqp.yml must add to rabbitmq's ports, not replace them")
    amqp_moved = resolved("docker-compose.yml", "docker-compose.amqp.yml", env={"AMQP_PORT": "13004"})
    need("13004" in {host for _, host, target in ports(amqp_moved["rabbitmq"]) if target == "5672"}, "AMQP_PORT must move the AMQP host port")



def mounts(service):
    """Each mount as (source, target, read-only), in either syntax docker-compose prints."""
    result = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            result.append((str(v.get("source", "")), str(v.get("target", "")), bool(v.get("read_only"))))
        else:
            parts = str(v).split(":")
            result.append((parts[0], parts[1] if len(parts) > 1 else parts[0], len(parts) > 2 and "ro" in parts[2].split(",")))
    return result


# The cluster variant: docker-compose.cluster.yml over the base file.
cluster = resolved("docker-compose.yml", "docker-compose.cluster.yml")
if cluster is not None:
    where = "cluster variant: "
    node_names = ["rabbitmq", "rabbitmq-2", "rabbitmq-3"]
    brokers = sorted(n for n, svc in cluster.items() if str(svc.get("image", "")).startswith("rabbitmq"))
    need(brokers == node_names, f"{where}the RabbitMQ services must be {node_names}, not {brokers}")
    nodes = {n: cluster[n] for n in node_names if n in cluster}
    cookies, data_volumes, conf_files = set(), set(), set()
    for name, svc in nodes.items():
        env = svc.get("environment", {})
        entrypoint = " ".join(map(str, svc.get("entrypoint") or []))
        need(svc.get("hostname") == name, f"{where}{name} needs hostname {name} (its node name is rabbit@{name})")
        need("healthcheck" in svc, f"{where}{name} needs a healthcheck")
        need(svc.get("restart") in ("always", "unless-stopped", "on-failure"), f"{where}{name} needs a restart policy")
        need(".erlang.cookie" in entrypoint and "RABBITMQ_CLUSTER_COOKIE" in entrypoint,
             f"{where}{name} must write RABBITMQ_CLUSTER_COOKIE to its .erlang.cookie")
        need(str(env.get("RABBITMQ_CLUSTER_COOKIE", "")) != "", f"{where}{name} has no RABBITMQ_CLUSTER_COOKIE")
        cookies.add(str(env.get("RABBITMQ_CLUSTER_COOKIE", "")))
        data = [source for source, target, _ in mounts(svc) if target == "/var/lib/rabbitmq"]
        need(len(data) == 1 and data[0] != "rabbitmq-data", f"{where}{name} needs a data volume of its own, not rabbitmq-data: {data}")
        data_volumes.update(data)
        conf = [(source, ro) for source, target, ro in mounts(svc) if target == env.get("RABBITMQ_CONFIG_FILE")]
        need(len(conf) == 1 and conf[0][1], f"{where}{name} must mount its RABBITMQ_CONFIG_FILE read-only")
        conf_files.update(os.path.basename(source) for source, _ in conf)
    need(len(cookies) == 1, f"{where}the nodes must share one cookie")
    need(len(data_volumes) == len(nodes), f"{where}each node needs its own data volume: {sorted(data_volumes)}")
    need(conf_files == {"rabbitmq-cluster.conf"}, f"{where}every node must mount rabbitmq-cluster.conf: {sorted(conf_files)}")
    conf_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "rabbitmq-cluster.conf")
    settings = {}
    for line in open(conf_path, encoding="utf-8"):
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = (part.strip() for part in line.split("=", 1))
            settings[key] = value
    need(settings.get("cluster_formation.peer_discovery_backend") in ("classic_config", "rabbit_peer_discovery_classic_config"),
         f"{where}rabbitmq-cluster.conf must use classic_config peer discovery")
    listed = sorted(v for k, v in settings.items() if re.fullmatch(r"cluster_formation\.classic_config\.nodes\.\d+", k))
    need(listed == sorted(f"rabbit@{n}" for n in node_names), f"{where}rabbitmq-cluster.conf must list the three nodes: {listed}")
    need(settings.get("loopback_users.guest") == "false" or settings.get("loopback_users") == "none",
         f"{where}rabbitmq-cluster.conf must let guest log in from other containers (loopback_users.guest = false)")
    for name in ["api", "worker"]:
        svc = cluster[name]
        hosts = re.findall(r"amqps?://(?:[^@,/]*@)?([^:/,]+)", str(svc.get("environment", {}).get("AMQP_URL", "")))
        need(sorted(hosts) == node_names, f"{where}{name}'s AMQP_URL must list the three nodes, not {hosts}")
        deps = svc.get("depends_on", {})
        for node in node_names:
            need(isinstance(deps, dict) and deps.get(node, {}).get("condition") == "service_healthy",
                 f"{where}{name} must wait for a healthy {node}")
    need({n for n in node_names if ports(cluster.get(n, {}))} == {"rabbitmq"}, f"{where}only node 1 (rabbitmq) may publish a port")
    need("15672" in published(cluster["rabbitmq"]), f"{where}node 1 must keep the management UI")
    check_ports(cluster, where)
    need(not cluster["worker"].get("ports") and "container_name" not in cluster["worker"], f"{where}worker must stay scalable")

# What --scale worker=N needs: no fixed name, no host port, the same image as the API.
need("container_name" not in worker, "worker must not set container_name (it would block --scale)")
need(not worker.get("ports"), "worker must not publish host ports (replicas would collide)")
need(worker.get("image") == api.get("image"), "api and worker must run the same image")

if problems:
    sys.exit("compose check failed:\n  " + "\n  ".join(problems))
variables = "each set by its variable, AMQP only with docker-compose.amqp.yml" if moved is not None else "(variables not checked: no docker-compose)"
clustered = "; cluster variant: three nodes, one cookie, all three in AMQP_URL" if cluster is not None else ""
print(f"compose check passed: {', '.join(sorted(services))}; worker is scalable; host ports on 127.0.0.1 off RabbitMQ's, {variables}{clustered}")
