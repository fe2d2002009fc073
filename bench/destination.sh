#!/usr/bin/env bash
# tidemark's PostgreSQL destination beside PostgreSQL's own logical replication, in one run.
#
# Three throwaway PostgreSQL 15 servers: the source, tidemark's destination (a postgres sink in
# upsert mode) and a subscriber (CREATE SUBSCRIPTION ... WITH (copy_data = false), PostgreSQL's
# defaults otherwise). Each workload is committed on the source first, with a slot for every
# run already made, so that each run catches up on the same WAL from the same place:
#   many  TXNS transactions of ROWS rows into orders
#   big   one transaction of BIG rows into orders
# and ends with one row in a marker table. A run ends once its destination holds the marker
# (tidemark: run --until-lsn, which returns once the destination committed it; the
# subscriber: the marker row there, polled every 20 ms). Runs are ordered subscription,
# tidemark, tidemark, subscription, so that drift in machine load cancels out. Per run: wall
# time (catch-up), rows/s; for tidemark its CPU and peak RSS (the subscriber's apply worker
# runs inside its server); and the CPU the servers spent meanwhile: the source's (its
# walsender, decoding) and the destination's (applying), read from each postmaster's
# children once their backends have exited. On a machine with few cores the sum of the three
# bounds the catch-up time. The table goes to stdout and, as JSON, to
# bench/results/<date>-destination.json.
#
# With APPLY_BENCH=path/to/apply_bench it first runs that on the destination server: the
# ways the sink can write a batch, by batch size (bench/apply_bench.cc); its table goes to
# stdout and to bench/results/<date>-apply.txt.
#
#   bench/destination.sh path/to/tidemark [TXNS] [ROWS_PER_TXN] [BIG_TXN_ROWS]
set -euo pipefail

tidemark=$(realpath "${1:?usage: bench/destination.sh path/to/tidemark}")
txns=${2:-1000}
rows=${3:-1000}
big=${4:-1000000}
here=$(cd "$(dirname "$0")" && pwd)
results="$here/results"
work=$(mktemp -d /tmp/tidemark-bench-dest.XXXXXX)
chmod 755 "$work"
throwaway="$here/../scripts/pg-throwaway.sh"
trap 'for s in src dst sub; do bash "$throwaway" stop "$work/$s" 2>/dev/null || true; done; rm -rf "$work"' EXIT

src=$(bash "$throwaway" start "$work/src")
dst=$(bash "$throwaway" start "$work/dst")
sub=$(bash "$throwaway" start "$work/sub")
psql_() {  # port db sql...
  local port=$1 db=$2
  shift 2
  psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

tables_sql='
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  customer_id integer NOT NULL,
  amount numeric(12,2) NOT NULL,
  status text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  note text
);
CREATE TABLE marker (id int PRIMARY KEY);'
psql_ "$src" postgres -c "CREATE DATABASE bench"
psql_ "$src" bench -c "$tables_sql" -c "CREATE PUBLICATION bench_pub FOR TABLE orders, marker"

# CPU seconds of a server's processes so far: its postmaster's own and its exited children's.
server_cpu() {  # dir
  local pid
  pid=$(head -1 "$1/data/postmaster.pid")
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f\n", ($14 + $15 + $16 + $17) / hz}' "/proc/$pid/stat"
}
# Waits until a server has no client backend, walsender or replication worker left but this
# one (their CPU is counted once they exit).
settled() {  # port
  until [ "$(psql_ "$1" postgres -c "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND \
      backend_type IN ('client backend', 'walsender', 'logical replication worker')")" = 0 ]; do sleep 0.05; done
}

figures="$work/figures.jsonl"
: >"$figures"
next_id=1

# A fresh destination database on both servers; the subscriber's needs the tables.
fresh_destinations() {
  psql_ "$dst" postgres -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
  psql_ "$sub" postgres -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
  psql_ "$sub" bench -c "$tables_sql"
}

run_subscription() {  # key title rows slot
  local key=$1 title=$2 n=$3 slot=$4 start end src0 sub0
  fresh_destinations
  src0=$(server_cpu "$work/src")
  sub0=$(server_cpu "$work/sub")
  start=$(date +%s.%N)
  psql_ "$sub" bench -c "CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1 port=$src user=postgres dbname=bench' \
    PUBLICATION bench_pub WITH (copy_data = false, create_slot = false, slot_name = '$slot')"
  until [ "$(psql_ "$sub" bench -c "SELECT count(*) FROM marker WHERE id = $marker")" = 1 ]; do sleep 0.02; done
  end=$(date +%s.%N)
  [ "$(psql_ "$sub" bench -c "SELECT count(*) FROM orders")" = "$expected_rows" ] \
    || { echo "the subscriber holds the wrong number of rows" >&2; exit 1; }
  psql_ "$sub" bench -c "ALTER SUBSCRIPTION s DISABLE" -c "ALTER SUBSCRIPTION s SET (slot_name = NONE)" \
    -c "DROP SUBSCRIPTION s"
  settled "$src"
  settled "$sub"
  python3 -c 'import json,sys; print(json.dumps({"workload": sys.argv[1], "title": sys.argv[2], "reader": "subscription", "rows": int(sys.argv[3]), "wall_s": float(sys.argv[5]) - float(sys.argv[4]), "cpu_s": None, "peak_rss_kib": None, "source_server_cpu_s": float(sys.argv[6]), "destination_server_cpu_s": float(sys.argv[7])}))' \
    "$key" "$title" "$n" "$start" "$end" "$(echo "$(server_cpu "$work/src") - $src0" | bc)" \
    "$(echo "$(server_cpu "$work/sub") - $sub0" | bc)" >>"$figures"
}

run_tidemark() {  # key title rows slot endpos
  local key=$1 title=$2 n=$3 slot=$4 endpos=$5 dir="$work/tm-$4"
  fresh_destinations
  mkdir -p "$dir"
  cat >"$dir/pipeline.yaml" <<YAML
name: bench
state_dir: $dir/state
log_level: warn
source:
  kind: postgres
  dsn: "host=127.0.0.1 port=$src dbname=bench user=postgres"
  slot: $slot
  publication: bench_pub
  create_publication: false
  tables: [public.orders, public.marker]
sinks:
  - name: replica
    kind: postgres
    dsn: "host=127.0.0.1 port=$dst dbname=bench user=postgres"
    mode: upsert
http:
  listen: "off"
heartbeat:
  mode: "off"
YAML
  local f src0 dst0
  src0=$(server_cpu "$work/src")
  dst0=$(server_cpu "$work/dst")
  f=$(cd "$work" && python3 "$here/measure.py" --name "$slot" --watch "$dir/state" -- \
    "$tidemark" run -c "$dir/pipeline.yaml" --until-lsn "$endpos")
  [ "$(psql_ "$dst" bench -c "SELECT count(*) FROM orders")" = "$expected_rows" ] \
    || { echo "tidemark's destination holds the wrong number of rows" >&2; exit 1; }
  [ "$(psql_ "$dst" bench -c "SELECT count(*) FROM marker WHERE id = $marker")" = 1 ] \
    || { echo "tidemark's destination lacks the marker" >&2; exit 1; }
  settled "$src"
  settled "$dst"
  python3 -c 'import json,sys; f=json.loads(sys.argv[4]); print(json.dumps({"workload": sys.argv[1], "title": sys.argv[2], "reader": "tidemark", "rows": int(sys.argv[3]), "wall_s": f["wall_s"], "cpu_s": f["user_s"] + f["sys_s"], "peak_rss_kib": f["peak_rss_kib"], "source_server_cpu_s": float(sys.argv[5]), "destination_server_cpu_s": float(sys.argv[6])}))' \
    "$key" "$title" "$n" "$f" "$(echo "$(server_cpu "$work/src") - $src0" | bc)" \
    "$(echo "$(server_cpu "$work/dst") - $dst0" | bc)" >>"$figures"
  rm -rf "$dir"
}

phase() {  # key title rows; the load and its marker are committed, its slots exist
  local key=$1 title=$2 n=$3 endpos
  endpos=$(psql_ "$src" bench -c "SELECT pg_current_wal_lsn()")
  echo "  $title: catching up on $n rows" >&2
  run_subscription "$key" "$title" "$n" "${key}_s1"
  run_tidemark "$key" "$title" "$n" "${key}_t1" "$endpos"
  run_tidemark "$key" "$title" "$n" "${key}_t2" "$endpos"
  run_subscription "$key" "$title" "$n" "${key}_s2"
}

slots() {
  for s in s1 t1 t2 s2; do
    psql_ "$src" bench -c "SELECT lsn FROM pg_create_logical_replication_slot('${1}_$s', 'pgoutput')" >/dev/null
  done
}

if [ -n "${APPLY_BENCH:-}" ]; then
  echo "# the ways the sink can write a batch, by batch size (apply_bench)" >&2
  psql_ "$dst" postgres -c "CREATE DATABASE apply_bench"
  mkdir -p "$results"
  "$APPLY_BENCH" "host=127.0.0.1 port=$dst dbname=apply_bench user=postgres" 2>/dev/null \
    | tee "$results/$(date -u +%Y-%m-%dT%H-%M-%SZ)-apply.txt"
  psql_ "$dst" postgres -c "DROP DATABASE apply_bench"
fi

echo "# tidemark's PostgreSQL destination beside CREATE SUBSCRIPTION: $txns x $rows rows, one transaction of $big rows" >&2

# Every run of a phase starts from an empty destination and reads the phase's WAL only, so the
# source table is emptied between phases (before the next phase's slots exist).
slots many
for ((i = 0; i < txns; i++)); do
  echo "INSERT INTO orders (id, customer_id, amount, status, note) SELECT $next_id + g, g % 5000, (g % 100000) / 100.0, 'paid', 'order note ' || g FROM generate_series(0, $((rows - 1))) g;"
  next_id=$((next_id + rows))
done | psql_ "$src" bench
next_id=$((next_id + txns * rows))
marker=1
psql_ "$src" bench -c "INSERT INTO marker VALUES ($marker)"
expected_rows=$((txns * rows))
phase many "$txns transactions of $rows rows" $((txns * rows))

psql_ "$src" bench -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots" >/dev/null
psql_ "$src" bench -c "TRUNCATE orders, marker"
slots big
psql_ "$src" bench -c "INSERT INTO orders (id, customer_id, amount, status, note) SELECT g, g % 5000, (g % 100000) / 100.0, 'paid', 'order note ' || g FROM generate_series(1, $big) g"
marker=2
psql_ "$src" bench -c "INSERT INTO marker VALUES ($marker)"
expected_rows=$big
phase big "one transaction of $big rows" "$big"

mkdir -p "$results"
python3 - "$figures" "$results" "$txns" "$rows" "$big" <<'PY'
import datetime, json, os, platform, sys

runs = [json.loads(line) for line in open(sys.argv[1])]
def mean(xs):
    return sum(xs) / len(xs)
table, ratios = [], []
for key in dict.fromkeys(r["workload"] for r in runs):
    row = {}
    for reader in ("subscription", "tidemark"):
        rs = [r for r in runs if r["workload"] == key and r["reader"] == reader]
        if not rs:
            continue
        wall = mean([r["wall_s"] for r in rs])
        t = {"workload": key, "title": rs[0]["title"], "reader": reader, "runs": len(rs), "rows": rs[0]["rows"],
             "wall_s": round(wall, 2), "rows_per_s": round(rs[0]["rows"] / wall),
             "walls_s": [round(r["wall_s"], 2) for r in rs],
             "source_server_cpu_s": round(mean([r["source_server_cpu_s"] for r in rs]), 2),
             "destination_server_cpu_s": round(mean([r["destination_server_cpu_s"] for r in rs]), 2)}
        if reader == "tidemark":
            t["cpu_s"] = round(mean([r["cpu_s"] for r in rs]), 2)
            t["peak_rss_mib"] = round(max(r["peak_rss_kib"] for r in rs) / 1024, 1)
        table.append(t)
        row[reader] = t
    ratios.append({"workload": key,
                   "subscription_wall_over_tidemark_wall": round(row["subscription"]["wall_s"] / row["tidemark"]["wall_s"], 2)})

print()
print(f"{'workload':<34} {'reader':<16} {'catch-up s':>11} {'rows/s':>10} {'CPU s':>7} {'RSS MiB':>8} "
      f"{'source CPU s':>13} {'dest CPU s':>11}")
for t in table:
    print(f"{t['title']:<34} {t['reader'] + ' x' + str(t['runs']):<16} {t['wall_s']:>11.2f} {t['rows_per_s']:>10,} "
          f"{t.get('cpu_s', float('nan')):>7.2f} {t.get('peak_rss_mib', float('nan')):>8.1f} "
          f"{t['source_server_cpu_s']:>13.2f} {t['destination_server_cpu_s']:>11.2f}")
print("(source CPU: the source server's, mostly its walsender decoding; dest CPU: the destination server's,")
print(" the subscriber's apply worker included)")
print()
print("subscription catch-up / tidemark catch-up (goal >= 1.5; tidemark's peak RSS <= 64 MiB)")
for r in ratios:
    print(f"  {r['workload']:<6} {r['subscription_wall_over_tidemark_wall']:.2f}x")
stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
path = os.path.join(sys.argv[2], f"{stamp}-destination.json")
with open(path, "w") as fh:
    json.dump({"date": stamp, "host": platform.node(), "cpus": os.cpu_count(),
               "workloads": {"txns": int(sys.argv[3]), "rows_per_txn": int(sys.argv[4]), "big_txn_rows": int(sys.argv[5])},
               "table": table, "ratios": ratios, "runs": runs}, fh, indent=1)
print()
print(f"written to {os.path.relpath(path)}")
PY
