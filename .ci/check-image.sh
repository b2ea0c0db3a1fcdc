#!/usr/bin/env bash
# No Docker engine here, so rebuild what the Dockerfile's runtime stage holds in a
# scratch directory (the files its COPY lines take, compiled, devDependencies pruned)
# and prove that tree runs: the API answers, a transfer ends notified by the worker.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
prefix="ci-image-$$"
cleanup() {
  kill "${api_pid:-}" "${worker_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cp -r "$root/package.json" "$root/package-lock.json" "$root/tsconfig.json" "$root/tsconfig.build.json" \
  "$root/api" "$root/worker" "$root/shared" "$work/"
# Reuse the installed (and natively built) modules instead of a second npm ci; prune removes what the image drops.
cp -r "$root/node_modules" "$work/"
cd "$work"
npm run -s build
npm prune --omit=dev --no-audit --no-fund >/dev/null
rm -rf api worker shared tsconfig*.json
test ! -e node_modules/typescript && test ! -e node_modules/tsx && test ! -e node_modules/mocha

export AMQP_PREFIX="$prefix" DATABASE_URL="sqlite:$work/data/bank.db" PORT=3999 NOTIFY_LATENCY_MS=0 LOG_LEVEL=warn
node dist/api/main.js 2>/dev/null & api_pid=$!
node dist/worker/main.js & worker_pid=$!
for _ in $(seq 1 100); do curl -fs localhost:3999/ready >/dev/null && break; sleep 0.2; done
curl -fs localhost:3999/ready
auth='Authorization: Bearer atk_demousera0_demo-key-for-user-A-not-a-secret'
id=$(curl -fs -X POST localhost:3999/transfer -H "$auth" -H 'content-type: application/json' \
  -d '{"fromAccount":"user-A","toAccount":"user-B","amount":"1.00"}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).transferId')
for _ in $(seq 1 100); do
  status=$(curl -fs -H "$auth" "localhost:3999/transfers/$id" | node -pe 'JSON.parse(require("fs").readFileSync(0)).status')
  [ "$status" = notified ] && break
  sleep 0.2
done
echo
[ "$status" = notified ] || { echo "image check: transfer $id ended $status"; exit 1; }
kill -TERM "$api_pid" "$worker_pid"
wait "$api_pid" "$worker_pid"
# Remove what this check created on the broker, named by the same topology code the processes use.
node --input-type=module -e '
  import amqp from "amqplib";
  import { loadConfig } from "./dist/shared/runtime/config.js";
  import { deleteTopology, topologyOf } from "./dist/shared/broker/topology.js";
  const config = loadConfig();
  const c = await amqp.connect(config.amqpNodes[0].url);
  await deleteTopology(c, topologyOf(config));
  await c.close();'
echo "image check passed: the pruned production tree runs the API and the worker (transfer $id notified)"
