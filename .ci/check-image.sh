#!/usr/bin/env bash
# No Docker engine here, so rebuild what the Dockerfile's runtime stage holds in a
# scratch directory (the files its COPY lines take, compiled, devDependencies and, as in
# the default lean image, better-sqlite3 pruned) and prove that tree runs: on PostgreSQL
# the API answers and a transfer ends notified by the worker; SQLite is refused with a
# clear message; the tools' usage texts name commands that work as written.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
prefix="ci-image-$$"
pg_admin=${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db="ci_image_$$"
admin() { # run one SQL statement as the PostgreSQL admin, with pg from the pruned tree
  (cd "$work" && PG_ADMIN="$pg_admin" SQL="$1" node --input-type=module -e '
    import pg from "pg";
    const c = new pg.Client({ connectionString: process.env.PG_ADMIN });
    await c.connect(); try { await c.query(process.env.SQL); } finally { await c.end(); }')
}
cleanup() {
  kill "${api_pid:-}" "${worker_pid:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "${db_created:-}" ] && admin "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" || true
  rm -rf "$work"
}
trap cleanup EXIT

cp -r "$root/package.json" "$root/package-lock.json" "$root/tsconfig.json" "$root/tsconfig.build.json" \
  "$root/api" "$root/worker" "$root/shared" "$work/"
# Reuse the installed modules instead of a second npm ci; prune removes what the image drops.
cp -r "$root/node_modules" "$work/"
cd "$work"
npm run -s build
# The Dockerfile's lean default (WITH_SQLITE=false): better-sqlite3 goes with the dev dependencies.
npm pkg delete dependencies.better-sqlite3
npm prune --omit=dev --no-audit --no-fund >/dev/null
rm -rf api worker shared tsconfig*.json
for gone in typescript tsx mocha better-sqlite3; do
  [ ! -e "node_modules/$gone" ] || { echo "image check: node_modules/$gone should not be in the runtime tree"; exit 1; }
done
native=$(find node_modules -name '*.node' -type f | head -5)
[ -z "$native" ] || { echo "image check: native addons left in the lean tree: $native"; exit 1; }

# SQLite asked of an image without it: exit 1 with a message that says what to do.
set +e
sqlite_out=$(DATABASE_URL="sqlite:$work/data/bank.db" AMQP_PREFIX="$prefix" node dist/api/main.js 2>&1)
sqlite_code=$?
set -e
echo "SQLite asked of the lean tree, as expected refused: $sqlite_out"
[ "$sqlite_code" = 1 ] && grep -q 'better-sqlite3 is not installed here' <<<"$sqlite_out" && grep -q 'WITH_SQLITE=true' <<<"$sqlite_out" \
  || { echo "image check: a sqlite: DATABASE_URL should stop with a clear message (exit $sqlite_code): $sqlite_out"; exit 1; }

admin "CREATE DATABASE \"$db\""
db_created=1
db_url=$(node -e 'const u = new URL(process.argv[1]); u.pathname = "/" + process.argv[2]; console.log(u.toString())' "$pg_admin" "$db")
export AMQP_PREFIX="$prefix" DATABASE_URL="$db_url" PORT=3999 NOTIFY_LATENCY_MS=0 LOG_LEVEL=warn
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

# Each tool's usage names its command as it works here (node dist/...); run that, as written.
for tool in dist/api/keys-cli.js dist/worker/dlq-cli.js; do
  usage=$(node "$tool" --help)
  line=$(grep -m1 ' list ' <<<"$usage" | sed 's/^usage://')
  command=${line%% list *}
  command=$(echo $command)   # trim
  [ "$command" = "node $tool" ] || { echo "image check: $tool's usage names '$command', not 'node $tool':"; echo "$usage"; exit 1; }
  sh -c "$command list" >/dev/null || { echo "image check: '$command list' (from the usage text) failed"; exit 1; }
done

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
echo "image check passed: the lean production tree (no better-sqlite3, no native addon) runs the API and the worker on PostgreSQL (transfer $id notified), refuses SQLite clearly, and its tools' usage commands run"
