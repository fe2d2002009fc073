#!/usr/bin/env bash
# The initial snapshot of one table, in one run, on one throwaway PostgreSQL 15:
#   copy      psql's \copy of the table to /dev/null: the server reading it and printing it
#             as text, the floor any reader stands on
#   tidemark_1t, tidemark_2t
#             source.snapshot.mode initial_only with max_threads 1 and 2: read events into
#             its fsync'd jsonl sink, exiting once the sink has them all
#   debezium  Debezium's PostgreSQL connector, snapshot.mode initial (bench/peers/debezium),
#             stopped after the table's last row
# ordered copy, tidemark_1t, tidemark_2t, debezium, tidemark_2t, tidemark_1t, copy, so drift
# in machine load cancels out for the ones measured twice. Then
#   incremental  tidemark streaming while pgbench updates the table at 1,000 transactions/s,
#             and `tidemark snapshot` of the whole table: seconds from the request to "done"
# Prints a table and the ratios, and writes them as JSON to bench/results/<date>-snapshot.json.
#
#   bench/snapshot.sh path/to/tidemark [rows]
set -euo pipefail

tidemark=$(realpath "${1:?usage: bench/snapshot.sh path/to/tidemark [rows]}")
rows=${2:-1000000}
readers=${BENCH_READERS:-copy tidemark debezium incremental}
update_rate=${BENCH_UPDATE_RATE:-1000}
here=$(cd "$(dirname "$0")" && pwd)
results="$here/results"
work=$(mktemp -d /tmp/tidemark-bench-snapshot.XXXXXX)
chmod 755 "$work"
pgdir="$work/pg"
trap 'bash "$here/../scripts/pg-throwaway.sh" stop "$pgdir"; rm -rf "$work"' EXIT

has_reader() { [[ " $readers " == *" $1 "* ]]; }

jar=
if has_reader debezium; then
  jar=$(bash "$here/../scripts/debezium-peer.sh" build)
fi

port=$(bash "$here/../scripts/pg-throwaway.sh" start "$pgdir")
psql_() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"; }
psql_ -c "CREATE DATABASE bench" postgres
psql_ bench <<SQL
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id integer NOT NULL,
  amount numeric(12,2) NOT NULL,
  status text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  note text
);
INSERT INTO orders (customer_id, amount, status, note)
  SELECT g % 5000, (g % 100000) / 100.0, 'paid', 'order note ' || g FROM generate_series(1, $rows) g;
VACUUM ANALYZE orders;
CREATE PUBLICATION bench_pub FOR TABLE orders;
SQL

measure() {  # name watch-path [--count-lines] -- command...
  local name=$1 watch=$2
  shift 2
  (cd "$work" && python3 "$here/measure.py" --name "$name" --watch "$watch" "$@")
}

run_copy() {  # name
  measure "$1" "$work/$1.none" -- psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d bench \
    -c "\\copy orders to '/dev/null'"
}

write_config() {  # name dir mode threads
  local dir=$2
  mkdir -p "$dir/out"
  cat >"$dir/pipeline.yaml" <<YAML
name: bench
state_dir: $dir/state
log_level: warn
source:
  kind: postgres
  dsn: "host=127.0.0.1 port=$port dbname=bench user=postgres"
  slot: $1
  publication: bench_pub
  create_publication: false
  tables: [public.orders]
  snapshot:
    mode: $3
    max_threads: $4
sinks:
  - name: files
    kind: jsonl
    path: $dir/out
YAML
}

run_tidemark() {  # name threads
  local dir="$work/$1"
  write_config "$1" "$dir" initial_only "$2"
  measure "$1" "$dir/out" --count-lines -- "$tidemark" run -c "$dir/pipeline.yaml"
  psql_ -c "SELECT pg_drop_replication_slot('$1')" bench >/dev/null
  rm -rf "$dir"
}

run_debezium() {  # name
  local dir="$work/$1"
  mkdir -p "$dir/out"
  # shellcheck disable=SC2086  # options are words
  measure "$1" "$dir/out" --count-lines -- java ${DEBEZIUM_JAVA_OPTS:-} -jar "$jar" \
    --out "$dir/out" --stop-after "$rows" --timeout 3600 \
    database.hostname=127.0.0.1 database.port="$port" database.user=postgres \
    database.dbname=bench topic.prefix=bench slot.name="$1" publication.name=bench_pub \
    table.include.list=public.orders snapshot.mode=initial
  psql_ -c "SELECT pg_drop_replication_slot('$1')" bench >/dev/null 2>&1 || true
  rm -rf "$dir"
}

# Streaming while pgbench updates random rows at $update_rate transactions/s, an incremental
# snapshot of the whole table: seconds from the request to its "done" line.
run_incremental() {  # name
  local dir="$work/$1"
  write_config "$1" "$dir" never 1
  sed -i 's/^log_level: warn/log_level: info/' "$dir/pipeline.yaml"
  "$tidemark" run -c "$dir/pipeline.yaml" 2>"$dir/run.err" &
  local run=$!
  for _ in $(seq 600); do grep -q "streaming from" "$dir/run.err" && break; sleep 0.1; done
  printf '\\set id random(1, %s)\nUPDATE orders SET amount = amount + 1 WHERE id = :id;\n' "$rows" >"$dir/update.sql"
  PGPASSWORD= pgbench -n -h 127.0.0.1 -p "$port" -U postgres -c 4 -j 2 -R "$update_rate" -T 3600 \
    -f "$dir/update.sql" bench >"$dir/pgbench.out" 2>&1 &
  local load=$!
  sleep 2
  local t0 t1 u0 u1
  u0=$(psql_ -At -c "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'orders'" bench)
  t0=$(date +%s.%N)
  "$tidemark" snapshot -c "$dir/pipeline.yaml" public.orders >/dev/null
  for _ in $(seq 36000); do grep -q "incremental snapshot .* done$" "$dir/run.err" && break; sleep 0.1; done
  t1=$(date +%s.%N)
  u1=$(psql_ -At -c "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'orders'" bench)
  kill -TERM "$load"; wait "$load" || true
  kill -TERM "$run"; wait "$run" || true
  psql_ -c "SELECT pg_drop_replication_slot('$1')" bench >/dev/null
  local read tps
  read=$(grep -o "public.orders done, [0-9]* row" "$dir/run.err" | grep -o "[0-9]*" | tail -1)
  tps=$(python3 -c 'import sys; print(round((int(sys.argv[2]) - int(sys.argv[1])) / (float(sys.argv[4]) - float(sys.argv[3]))))' \
    "$u0" "$u1" "$t0" "$t1")
  grep -q "incremental snapshot .* done$" "$dir/run.err" || { tail -20 "$dir/run.err" >&2; exit 1; }
  python3 -c 'import json,sys; t=float(sys.argv[2])-float(sys.argv[1]); print(json.dumps({"name": sys.argv[3], "wall_s": round(t, 2), "events": int(sys.argv[4] or 0), "updates_per_s": float(sys.argv[5] or 0), "user_s": 0, "sys_s": 0, "peak_rss_kib": 0}))' \
    "$t0" "$t1" "$1" "$read" "$tps"
  rm -rf "$dir"
}

figures="$work/figures.jsonl"
: >"$figures"
record() {  # reader run-figures
  python3 -c 'import json,sys; f=json.loads(sys.argv[2]); f.update(reader=sys.argv[1]); print(json.dumps(f))' \
    "$1" "$2" >>"$figures"
}
echo "# snapshot benchmark: one table of $rows rows" >&2
if has_reader copy; then record copy "$(run_copy copy_1)"; fi
if has_reader tidemark; then record tidemark_1t "$(run_tidemark tm_snap_1t_a 1)"; fi
if has_reader tidemark; then record tidemark_2t "$(run_tidemark tm_snap_2t_a 2)"; fi
if has_reader debezium; then record debezium "$(run_debezium dz_snap_1)"; fi
if has_reader tidemark; then record tidemark_2t "$(run_tidemark tm_snap_2t_b 2)"; fi
if has_reader tidemark; then record tidemark_1t "$(run_tidemark tm_snap_1t_b 1)"; fi
if has_reader copy; then record copy "$(run_copy copy_2)"; fi
if has_reader incremental; then record incremental "$(run_incremental tm_incremental)"; fi

mkdir -p "$results"
python3 - "$figures" "$results" "$rows" <<'PY'
import datetime, json, os, platform, sys

figures, results_dir, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = [json.loads(line) for line in open(figures)]
for r in runs:
    # An incremental read leaves out the rows the stream changed while their chunk was open.
    if r["reader"] not in ("copy", "incremental") and r["events"] is not None and r["events"] < rows:
        sys.exit(f"{r['reader']} wrote {r['events']} events, expected {rows}")

def mean(xs):
    return sum(xs) / len(xs)

table = {}
for reader in ("copy", "tidemark_1t", "tidemark_2t", "debezium", "incremental"):
    rs = [r for r in runs if r["reader"] == reader]
    if not rs:
        continue
    wall = mean([r["wall_s"] for r in rs])
    cpu = mean([r["user_s"] + r["sys_s"] for r in rs])
    table[reader] = {"runs": len(rs), "wall_s": round(wall, 2), "rows_per_s": round(rows / wall),
                     "cpu_s": round(cpu, 2), "peak_rss_mib": round(max(r["peak_rss_kib"] for r in rs) / 1024, 1)}
    if reader == "incremental":
        table[reader].update(cpu_s=None, peak_rss_mib=None, updates_per_s=rs[0].get("updates_per_s"))

ratios = {}
for tm in ("tidemark_1t", "tidemark_2t"):
    if "copy" in table and tm in table:
        ratios[f"copy_wall_over_{tm}_wall"] = round(table["copy"]["wall_s"] / table[tm]["wall_s"], 2)
    if "debezium" in table and tm in table:
        ratios[f"debezium_wall_over_{tm}_wall"] = round(table["debezium"]["wall_s"] / table[tm]["wall_s"], 2)
        ratios[f"{tm}_rss_over_debezium_rss"] = round(table[tm]["peak_rss_mib"] / table["debezium"]["peak_rss_mib"], 3)
if "incremental" in table and "tidemark_1t" in table:
    ratios["incremental_rows_per_s_over_tidemark_1t"] = round(
        table["incremental"]["rows_per_s"] / table["tidemark_1t"]["rows_per_s"], 2)

def show(v, fmt):
    return format(v, fmt) if v is not None else format("-", ">8")

print()
print(f"{'reader':<16} {'wall s':>8} {'rows/s':>10} {'CPU s':>8} {'RSS MiB':>8}")
for reader, t in table.items():
    print(f"{reader + (' x' + str(t['runs']) if t['runs'] > 1 else ''):<16} {t['wall_s']:>8.2f} "
          f"{t['rows_per_s']:>10,} {show(t['cpu_s'], '>8.2f')} {show(t['peak_rss_mib'], '>8.1f')}")
if "incremental" in table:
    print(f"(incremental: while pgbench ran {table['incremental']['updates_per_s']} updates/s)")
print()
for k, v in ratios.items():
    print(f"{k}: {v}" + ("  (goal >= 0.9)" if k.startswith("copy_wall_over_tidemark_1t") else ""))

stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
path = os.path.join(results_dir, f"{stamp}-snapshot.json")
with open(path, "w") as fh:
    json.dump({"date": stamp, "host": platform.node(), "cpus": os.cpu_count(), "rows": rows,
               "readers": table, "ratios": ratios, "runs": runs}, fh, indent=2)
print(f"\nwritten to {path}")
PY
