#!/usr/bin/env bash
# make demo: a live pipeline on a throwaway local PostgreSQL 15.
# Starts the server, creates a small shop schema, runs `tidemark run` on it with a writer making
# changes, and shows the events as they arrive. Ctrl-C stops everything and removes the
# cluster; the events stay in demo-run/out. DEMO_SECONDS=N stops by itself after N seconds.
set -euo pipefail

tidemark=$(realpath "${1:?usage: demo.sh path/to/tidemark}")
root=$(cd "$(dirname "$0")/.." && pwd)
run="$root/demo-run"
pgdir="$(mktemp -d /tmp/tidemark-demo.XXXXXX)"
chmod 755 "$pgdir"
rm -rf "$run"
mkdir -p "$run"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bash "$root/scripts/pg-throwaway.sh" stop "$pgdir/pg"
  rm -rf "$pgdir"
  echo "throwaway PostgreSQL removed. Events kept in $run/out, tidemark's log in $run/tidemark.log"
}
# Ctrl-C is how the demo ends: a clean stop, exit 0.
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

echo "starting a throwaway PostgreSQL 15 (wal_level=logical)..."
port=$(bash "$root/scripts/pg-throwaway.sh" start "$pgdir/pg")
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }
psql_ -c "CREATE DATABASE shop" postgres
psql_ shop <<'SQL'
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text, created_at timestamptz DEFAULT now());
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id integer REFERENCES customers,
  amount numeric(12,2) NOT NULL,
  status text NOT NULL DEFAULT 'new',
  items jsonb,
  created_at timestamptz DEFAULT now()
);
INSERT INTO customers (name, email) VALUES ('Ada', 'ada@example.com'), ('Grace', 'grace@example.com');
SQL

cat >"$run/pipeline.yaml" <<YAML
name: shop
source:
  kind: postgres
  dsn: "host=127.0.0.1 port=$port dbname=shop user=postgres"
  slot: tidemark_slot
  publication: tidemark_pub
  tables: [public.customers, public.orders]
sinks:
  - name: files
    kind: jsonl
    path: ./out
delivery:
  flush_interval: 200ms
YAML

echo "PostgreSQL on 127.0.0.1:$port, database shop"
echo "pipeline: $run/pipeline.yaml"
echo "events:   $run/out/<topic>.jsonl"
echo "state:    $run/shop.state"
echo "status:   http://127.0.0.1:7070/ (page and /metrics), or $tidemark status -c $run/pipeline.yaml"
echo
"$tidemark" run -c "$run/pipeline.yaml" >"$run/tidemark.log" 2>&1 &
pids+=($!)

# The writer: an order every half second, paid a moment later, now and then a new customer.
(
  i=0
  while :; do
    i=$((i + 1))
    psql_ shop -c "INSERT INTO orders (customer_id, amount, items) VALUES (1 + $i % 2, round((random() * 100)::numeric, 2), '{\"sku\": \"A-$i\", \"qty\": $((i % 3 + 1))}')" 2>/dev/null || exit 0
    sleep 0.5
    psql_ shop -c "UPDATE orders SET status = 'paid' WHERE id = (SELECT max(id) FROM orders)" 2>/dev/null || exit 0
    if ((i % 5 == 0)); then
      psql_ shop -c "INSERT INTO customers (name, email) VALUES ('customer $i', 'c$i@example.com')" 2>/dev/null || exit 0
    fi
  done
) &
pids+=($!)

echo "events as they arrive (Ctrl-C to stop):"
mkdir -p "$run/out"
# One line per event: table, operation, and the row after.
tail -q -n +1 -F "$run/out/shop.public.customers.jsonl" "$run/out/shop.public.orders.jsonl" 2>/dev/null |
  sed -u -E 's/^\{"before":.*,"after":(.*),"source":\{.*"table":"([a-z_]+)".*"op":"(.)".*/\2 \3 \1/' &
pids+=($!)

if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
else
  wait "${pids[0]}"
fi
