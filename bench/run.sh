#!/usr/bin/env bash
# tidemark beside pg_recvlogical and Debezium, in one run, on one throwaway PostgreSQL 15.
#
# Each reader takes the same WAL through a slot of its own on one publication:
#   pg_recvlogical  the raw pgoutput stream into a file: the server's own decoding speed
#   tidemark        Debezium events in its jsonl sink (fsync'd)
#   debezium        Debezium 3.6.1.Final's PostgreSQL connector in its embedded engine, JSON
#                   converter, schemas off (bench/peers/debezium), one file per topic
# Workloads: TXNS transactions of ROWS rows, one transaction of BIG rows, and WIDE rows of a
# 30-column table of mixed types in transactions of 10,000. Per reader: wall time, events/s,
# CPU seconds (user + sys of its process), peak RSS, time from start to first output. Runs are
# ordered recvlogical, tidemark, debezium, tidemark, recvlogical, so drift in machine load
# cancels out for the two measured twice. First, the change log's own write and read rates
# beside SQLite's (log_bench, next to the tidemark binary). The table goes to stdout and, as
# JSON, to bench/results/<date>.json.
#
#   bench/run.sh path/to/tidemark [TXNS] [ROWS_PER_TXN] [BIG_TXN_ROWS] [WIDE_ROWS]
#   BENCH_READERS="recvlogical tidemark"   leave a reader out (default: all three)
set -euo pipefail

tidemark=$(realpath "${1:?usage: bench/run.sh path/to/tidemark}")
txns=${2:-1000}
rows=${3:-1000}
big=${4:-1000000}
wide=${5:-200000}
readers=${BENCH_READERS:-recvlogical tidemark debezium}
here=$(cd "$(dirname "$0")" && pwd)
results="$here/results"
work=$(mktemp -d /tmp/tidemark-bench.XXXXXX)
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
psql_ bench <<'SQL'
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  customer_id integer NOT NULL,
  amount numeric(12,2) NOT NULL,
  status text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  note text
);
-- 30 columns of the types a real schema mixes.
CREATE TABLE wide (
  id bigserial PRIMARY KEY,
  c_int int, c_bigint bigint, c_smallint smallint, c_bool boolean,
  c_numeric numeric(14,4), c_numeric_free numeric, c_real real, c_double double precision,
  c_text text, c_varchar varchar(64), c_char char(8),
  c_date date, c_timestamp timestamp, c_timestamptz timestamptz, c_time time, c_interval interval,
  c_uuid uuid, c_jsonb jsonb, c_json json, c_bytea bytea,
  c_int_array int[], c_text_array text[],
  c_inet inet, c_macaddr macaddr, c_int4range int4range,
  c_timestamp_3 timestamp(3), c_timetz timetz, c_nullable text, c_enumlike text
);
CREATE PUBLICATION bench_pub FOR TABLE orders, wide;
SQL

lsn() { psql_ -At -c "SELECT pg_current_wal_lsn()" bench; }
create_slot() { psql_ -At -c "SELECT lsn FROM pg_create_logical_replication_slot('$1', 'pgoutput')" bench >/dev/null; }

measure() {  # name watch-path [--count-lines] -- command...
  local name=$1 watch=$2
  shift 2
  (cd "$work" && python3 "$here/measure.py" --name "$name" --watch "$watch" "$@")
}

run_recvlogical() {  # slot endpos
  measure "$1" "$work/$1.pgoutput" -- pg_recvlogical -h 127.0.0.1 -p "$port" -U postgres -d bench \
    -S "$1" --start --endpos="$2" -o proto_version=1 -o publication_names=bench_pub \
    -f "$work/$1.pgoutput" --no-loop
  rm -f "$work/$1.pgoutput"
}

run_tidemark() {  # slot endpos
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
  tables: [public.orders, public.wide]
sinks:
  - name: files
    kind: jsonl
    path: $dir/out
YAML
  measure "$1" "$dir/out" --count-lines -- "$tidemark" run -c "$dir/pipeline.yaml" --until-lsn "$2"
  rm -rf "$dir"
}

run_debezium() {  # slot events
  local dir="$work/$1"
  mkdir -p "$dir/out"
  # shellcheck disable=SC2086  # options are words
  measure "$1" "$dir/out" --count-lines -- java ${DEBEZIUM_JAVA_OPTS:-} -jar "$jar" \
    --out "$dir/out" --stop-after "$2" --timeout 3600 \
    database.hostname=127.0.0.1 database.port="$port" database.user=postgres \
    database.dbname=bench topic.prefix=bench slot.name="$1" publication.name=bench_pub \
    table.include.list=public.orders,public.wide
  rm -rf "$dir"
}

figures="$work/figures.jsonl"
: >"$figures"

phase() {  # key title expected-events; the load is committed, its slots exist
  local key=$1 title=$2 expected=$3 endpos
  endpos=$(lsn)
  echo "  $title: reading $expected events" >&2
  record() {  # reader run-figures
    python3 -c 'import json,sys; f=json.loads(sys.argv[4]); f.update(workload=sys.argv[1], title=sys.argv[2], reader=sys.argv[3], expected=int(sys.argv[5])); print(json.dumps(f))' \
      "$key" "$title" "$1" "$2" "$expected" >>"$figures"
  }
  if has_reader recvlogical; then record pg_recvlogical "$(run_recvlogical "${key}_r1" "$endpos")"; fi
  if has_reader tidemark; then record tidemark "$(run_tidemark "${key}_t1" "$endpos")"; fi
  if has_reader debezium; then record debezium "$(run_debezium "${key}_d1" "$expected")"; fi
  if has_reader tidemark; then record tidemark "$(run_tidemark "${key}_t2" "$endpos")"; fi
  if has_reader recvlogical; then record pg_recvlogical "$(run_recvlogical "${key}_r2" "$endpos")"; fi
}

slots() { for s in r1 t1 d1 t2 r2; do create_slot "${1}_$s"; done; }

echo "# tidemark benchmark: $txns x $rows rows, one transaction of $big rows, $wide wide rows" >&2

log_figures=null
if [ -x "$(dirname "$tidemark")/log_bench" ]; then
  echo "  the change log: 1,000,000 records of 500 bytes, 5,000 a commit" >&2
  log_figures=$("$(dirname "$tidemark")/log_bench" "$work/log_bench" 1000000 500 5000)
fi

slots many
for ((i = 0; i < txns; i++)); do
  echo "INSERT INTO orders (customer_id, amount, status, note) SELECT g % 5000, (g % 100000) / 100.0, 'paid', 'order note ' || g FROM generate_series(1, $rows) g;"
done | psql_ bench
phase many "$txns transactions of $rows rows" $((txns * rows))

slots big
psql_ -c "INSERT INTO orders (customer_id, amount, status, note) SELECT g % 5000, (g % 100000) / 100.0, 'paid', 'order note ' || g FROM generate_series(1, $big) g" bench
phase big "one transaction of $big rows" "$big"

slots wide
for ((done_rows = 0; done_rows < wide; done_rows += 10000)); do
  n=$((wide - done_rows < 10000 ? wide - done_rows : 10000))
  cat <<SQL
INSERT INTO wide (c_int, c_bigint, c_smallint, c_bool, c_numeric, c_numeric_free, c_real, c_double,
  c_text, c_varchar, c_char, c_date, c_timestamp, c_timestamptz, c_time, c_interval, c_uuid,
  c_jsonb, c_json, c_bytea, c_int_array, c_text_array, c_inet, c_macaddr, c_int4range,
  c_timestamp_3, c_timetz, c_nullable, c_enumlike)
SELECT g, g::bigint * 1000003, (g % 30000)::smallint, g % 2 = 0, (g % 1000000) / 7.0,
  g / 3.0, g / 11.0, g / 13.0,
  'text value number ' || g, 'varchar ' || g, 'c' || (g % 100), DATE '2020-01-01' + g % 3000,
  TIMESTAMP '2020-01-01' + g * INTERVAL '1 second', TIMESTAMPTZ '2020-01-01 00:00+00' + g * INTERVAL '1 ms',
  TIME '00:00' + (g % 86400) * INTERVAL '1 second', g * INTERVAL '1 minute',
  md5(g::text)::uuid, jsonb_build_object('id', g, 'tags', jsonb_build_array('a', 'b')),
  json_build_object('n', g), decode(md5(g::text), 'hex'), ARRAY[g, g + 1, g + 2],
  ARRAY['x' || g, 'y'], ('10.' || (g % 250) || '.0.1')::inet, '08:00:2b:01:02:03',
  int4range(g, g + 10), TIMESTAMP '2021-06-01' + g * INTERVAL '1 ms', TIME WITH TIME ZONE '12:00+02',
  CASE WHEN g % 3 = 0 THEN NULL ELSE 'sometimes' END, (ARRAY['new', 'paid', 'shipped'])[g % 3 + 1]
FROM generate_series($done_rows + 1, $done_rows + $n) g;
SQL
done | psql_ bench
phase wide "$wide rows of 30 columns" "$wide"

mkdir -p "$results"
python3 - "$figures" "$results" "$txns" "$rows" "$big" "$wide" "$log_figures" <<'PY'
import datetime, json, os, platform, sys

figures, results_dir = sys.argv[1], sys.argv[2]
change_log = json.loads(sys.argv[7])
runs = [json.loads(line) for line in open(figures)]
for r in runs:
    if r["events"] is not None and r["events"] != r["expected"]:
        sys.exit(f"{r['reader']} wrote {r['events']} events in {r['title']}, expected {r['expected']}")

def mean(xs):
    return sum(xs) / len(xs)

table = []
order = ["pg_recvlogical", "tidemark", "debezium"]
for key in dict.fromkeys(r["workload"] for r in runs):
    for reader in order:
        rs = [r for r in runs if r["workload"] == key and r["reader"] == reader]
        if not rs:
            continue
        wall = mean([r["wall_s"] for r in rs])
        cpu = mean([r["user_s"] + r["sys_s"] for r in rs])
        events = rs[0]["expected"]
        table.append({
            "workload": key, "title": rs[0]["title"], "reader": reader, "runs": len(rs),
            "events": events, "wall_s": round(wall, 2), "events_per_s": round(events / wall),
            "cpu_s": round(cpu, 2), "events_per_cpu_s": round(events / cpu) if cpu > 0 else None,
            "peak_rss_mib": round(max(r["peak_rss_kib"] for r in rs) / 1024, 1),
            "first_output_s": round(mean([r["first_output_s"] or 0 for r in rs]), 2),
        })

ratios = []
for key in dict.fromkeys(t["workload"] for t in table):
    row = {t["reader"]: t for t in table if t["workload"] == key}
    if "tidemark" in row and "debezium" in row:
        tm, dz = row["tidemark"], row["debezium"]
        ratios.append({
            "workload": key,
            "events_per_s": round(tm["events_per_s"] / dz["events_per_s"], 2),
            "events_per_cpu_s": round(tm["events_per_cpu_s"] / dz["events_per_cpu_s"], 2),
            "cpu_s": round(tm["cpu_s"] / dz["cpu_s"], 3),
            "peak_rss": round(tm["peak_rss_mib"] / dz["peak_rss_mib"], 3),
        })
    if "tidemark" in row and "pg_recvlogical" in row:
        for r in ratios:
            if r["workload"] == key:
                r["recvlogical_wall_over_tidemark_wall"] = round(
                    row["pg_recvlogical"]["wall_s"] / row["tidemark"]["wall_s"], 2)

print()
print(f"{'workload':<34} {'reader':<18} {'wall s':>8} {'events/s':>10} {'CPU s':>8} "
      f"{'ev/CPU s':>10} {'RSS MiB':>8} {'first s':>8}")
for t in table:
    print(f"{t['title']:<34} {t['reader'] + (' x' + str(t['runs']) if t['runs'] > 1 else ''):<18} "
          f"{t['wall_s']:>8.2f} {t['events_per_s']:>10,} {t['cpu_s']:>8.2f} "
          f"{t['events_per_cpu_s'] or 0:>10,} {t['peak_rss_mib']:>8.1f} {t['first_output_s']:>8.2f}")
if ratios:
    print()
    print("tidemark / debezium (goal: events per CPU second >= 3, RSS <= 0.05); "
          "pg_recvlogical wall / tidemark wall (1.0: the server is the bottleneck)")
    for r in ratios:
        extra = f", recvlogical/tidemark wall {r['recvlogical_wall_over_tidemark_wall']}" \
            if "recvlogical_wall_over_tidemark_wall" in r else ""
        print(f"  {r['workload']:<6} events/s {r['events_per_s']:.2f}x, events per CPU s "
              f"{r['events_per_cpu_s']:.2f}x, CPU s {r['cpu_s']:.3f}, RSS {r['peak_rss']:.3f}{extra}")

if change_log:
    print()
    print("the change log (fsync'd, group commit of {records_per_commit} records of {value_bytes} bytes):"
          .format(**change_log))
    for name in ("local_log", "sqlite"):
        f = change_log[name]
        print(f"  {name:<10} write {f['records_per_s']:>10,.0f} records/s {f['mib_per_s']:>7.1f} MiB/s"
              + (f", read {f['read_records_per_s']:,.0f} records/s" if "read_records_per_s" in f else ""))

stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
path = os.path.join(results_dir, f"{stamp}.json")
with open(path, "w") as fh:
    json.dump({"date": stamp, "host": platform.node(), "cpus": os.cpu_count(),
               "workloads": {"txns": int(sys.argv[3]), "rows_per_txn": int(sys.argv[4]),
                             "big_txn_rows": int(sys.argv[5]), "wide_rows": int(sys.argv[6])},
               "table": table, "ratios": ratios, "change_log": change_log, "runs": runs}, fh, indent=1)
print()
print(f"written to {os.path.relpath(path)}")
PY
