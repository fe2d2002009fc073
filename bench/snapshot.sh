#!/usr/bin/env bash
# The initial snapshot of one table, in one run, on one throwaway PostgreSQL 15:
#   copy      psql's \copy of the table to /dev/null: the server reading it and printing it
#             as text, the floor any reader stands on
#   tidemark  source.snapshot.mode initial_only, one thread: read events into its fsync'd
#             jsonl sink, exiting once the sink has them all
#   debezium  Debezium's PostgreSQL connector, snapshot.mode initial (bench/peers/debezium),
#             stopped after the table's last row
# ordered copy, tidemark, debezium, tidemark, copy, so drift in machine load cancels out for
# the two measured twice. Prints a table and the ratios, and writes them as JSON to
# bench/results/<date>-snapshot.json.
#
#   bench/snapshot.sh path/to/tidemark [rows]
set -euo pipefail

tidemark=$(realpath "${1:?usage: bench/snapshot.sh path/to/tidemark [rows]}")
rows=${2:-1000000}
readers=${BENCH_READERS:-copy tidemark debezium}
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

run_tidemark() {  # name
  local dir="$work/$1"
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
    mode: initial_only
sinks:
  - name: files
    kind: jsonl
    path: $dir/out
YAML
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

figures="$work/figures.jsonl"
: >"$figures"
record() {  # reader run-figures
  python3 -c 'import json,sys; f=json.loads(sys.argv[2]); f.update(reader=sys.argv[1]); print(json.dumps(f))' \
    "$1" "$2" >>"$figures"
}
echo "# snapshot benchmark: one table of $rows rows" >&2
if has_reader copy; then record copy "$(run_copy copy_1)"; fi
if has_reader tidemark; then record tidemark "$(run_tidemark tm_snap_1)"; fi
if has_reader debezium; then record debezium "$(run_debezium dz_snap_1)"; fi
if has_reader tidemark; then record tidemark "$(run_tidemark tm_snap_2)"; fi
if has_reader copy; then record copy "$(run_copy copy_2)"; fi

mkdir -p "$results"
python3 - "$figures" "$results" "$rows" <<'PY'
import datetime, json, os, platform, sys

figures, results_dir, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
runs = [json.loads(line) for line in open(figures)]
for r in runs:
    if r["reader"] != "copy" and r["events"] is not None and r["events"] < rows:
        sys.exit(f"{r['reader']} wrote {r['events']} events, expected {rows}")

def mean(xs):
    return sum(xs) / len(xs)

table = {}
for reader in ("copy", "tidemark", "debezium"):
    rs = [r for r in runs if r["reader"] == reader]
    if not rs:
        continue
    wall = mean([r["wall_s"] for r in rs])
    cpu = mean([r["user_s"] + r["sys_s"] for r in rs])
    table[reader] = {"runs": len(rs), "wall_s": round(wall, 2), "rows_per_s": round(rows / wall),
                     "cpu_s": round(cpu, 2), "peak_rss_mib": round(max(r["peak_rss_kib"] for r in rs) / 1024, 1)}

ratios = {}
if "copy" in table and "tidemark" in table:
    ratios["copy_wall_over_tidemark_wall"] = round(table["copy"]["wall_s"] / table["tidemark"]["wall_s"], 2)
if "debezium" in table and "tidemark" in table:
    ratios["debezium_wall_over_tidemark_wall"] = round(table["debezium"]["wall_s"] / table["tidemark"]["wall_s"], 2)
    ratios["tidemark_rss_over_debezium_rss"] = round(table["tidemark"]["peak_rss_mib"] / table["debezium"]["peak_rss_mib"], 3)

print()
print(f"{'reader':<14} {'wall s':>8} {'rows/s':>10} {'CPU s':>8} {'RSS MiB':>8}")
for reader, t in table.items():
    print(f"{reader + (' x' + str(t['runs']) if t['runs'] > 1 else ''):<14} {t['wall_s']:>8.2f} "
          f"{t['rows_per_s']:>10,} {t['cpu_s']:>8.2f} {t['peak_rss_mib']:>8.1f}")
print()
print("copy wall / tidemark wall (goal >= 0.9): {}".format(ratios.get("copy_wall_over_tidemark_wall")))
if "debezium_wall_over_tidemark_wall" in ratios:
    print("debezium wall / tidemark wall: {}, tidemark RSS / debezium RSS: {}".format(
        ratios["debezium_wall_over_tidemark_wall"], ratios["tidemark_rss_over_debezium_rss"]))

stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
path = os.path.join(results_dir, f"{stamp}-snapshot.json")
with open(path, "w") as fh:
    json.dump({"date": stamp, "host": platform.node(), "cpus": os.cpu_count(), "rows": rows,
               "readers": table, "ratios": ratios, "runs": runs}, fh, indent=2)
print(f"\nwritten to {path}")
PY
