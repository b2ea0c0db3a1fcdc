"""Checks the resolved compose file (`docker-compose config` output on stdin) for what the README promises:
every service there, healthchecks gating start-up, volumes, and a worker that `--scale worker=N` can multiply."""
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


def published(service):
    return {str(p.get("target") if isinstance(p, dict) else str(p).split(":")[-1]) for p in service.get("ports", [])}


need("management" in rabbit["image"], "rabbitmq must use a -management image (the UI)")
need({"5672", "15672"} <= published(rabbit), "rabbitmq must publish 5672 and 15672")
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

# What --scale worker=N needs: no fixed name, no host port, the same image as the API.
need("container_name" not in worker, "worker must not set container_name (it would block --scale)")
need(not worker.get("ports"), "worker must not publish host ports (replicas would collide)")
need(worker.get("image") == api.get("image"), "api and worker must run the same image")

if problems:
    sys.exit("compose check failed:\n  " + "\n  ".join(problems))
print(f"compose check passed: {', '.join(sorted(services))}; worker is scalable")
