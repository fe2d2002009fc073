#!/usr/bin/env bash
# tidemark against pg_recvlogical, side by side in one run, on one throwaway PostgreSQL 15.
#
# Both read the same WAL through their own slot on one publication: pg_recvlogical writes the
# raw pgoutput stream to /dev/null, tidemark decodes it into Debezium events in the jsonl sink
# (fsync'd). The ratio pg_recvlogical time / tidemark time says how close tidemark gets to
# the server's own decoding speed (1.0: the server is the bottleneck). Runs are ordered
# recvlogical, tidemark, tidemark, recvlogical so drift in machine load cancels out.
#
#   bench/run.sh path/to/tidemark [TXNS] [ROWS_PER_TXN] [BIG_TXN_ROWS]
set -euo pipefail

tidemark=$(realpath "${1:?usage: bench/run.sh path/to/tidemark}")
txns=${2:-1000}
rows=${3:-1000}
big=${4:-1000000}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/tidemark-bench.XXXXXX)
chmod 755 "$work"
pgdir="$work/pg"
trap 'bash "$here/../scripts/pg-throwaway.sh" stop "$pgdir"; rm -rf "$work"' EXIT

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
CREATE PUBLICATION bench_pub FOR TABLE orders;
SQL

lsn() { psql_ -At -c "SELECT pg_current_wal_lsn()" bench; }
create_slots() {  # names...
  for s in "$@"; do
    psql_ -At -c "SELECT lsn FROM pg_create_logical_replication_slot('$s', 'pgoutput')" bench >/dev/null
  done
}

# Prints "seconds peak_rss_kib" for a command.
measure() {
  /usr/bin/time -f "%e %M" -o "$work/time.out" "$@" >"$work/cmd.out" 2>"$work/cmd.err" || {
    echo "command failed: $*" >&2; cat "$work/cmd.err" >&2; exit 1; }
  cat "$work/time.out" | tail -1
}

run_recvlogical() {  # slot endpos
  measure pg_recvlogical -h 127.0.0.1 -p "$port" -U postgres -d bench -S "$1" --start \
    --endpos="$2" -o proto_version=1 -o publication_names=bench_pub -f /dev/null --no-loop
}

run_tidemark() {  # slot endpos
  local dir="$work/tm-$1"
  mkdir -p "$dir"
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
sinks:
  - name: files
    kind: jsonl
    path: $dir/out
YAML
  local result
  result=$(measure "$tidemark" run -c "$dir/pipeline.yaml" --until-lsn "$2")
  local events
  events=$(wc -l <"$dir/out/bench.public.orders.jsonl")
  rm -rf "$dir/out"
  echo "$result $events"
}

phase() {  # title, then the SQL load is already written; slots r1 t1 t2 r2 exist
  local title=$1 endpos=$2 expected=$3
  local r1 t1 t2 r2
  r1=$(run_recvlogical "${4}_r1" "$endpos")
  t1=$(run_tidemark "${4}_t1" "$endpos")
  t2=$(run_tidemark "${4}_t2" "$endpos")
  r2=$(run_recvlogical "${4}_r2" "$endpos")
  python3 - "$title" "$expected" "$r1" "$t1" "$t2" "$r2" <<'PY'
import sys
title, expected = sys.argv[1], int(sys.argv[2])
r1, t1, t2, r2 = (a.split() for a in sys.argv[3:7])
rt = (float(r1[0]) + float(r2[0])) / 2
tt = (float(t1[0]) + float(t2[0])) / 2
events = int(t1[2])
assert events == expected and int(t2[2]) == expected, f"tidemark wrote {t1[2]}/{t2[2]} events, expected {expected}"
rss = max(int(t1[1]), int(t2[1])) / 1024
print(f"## {title}")
print(f"pg_recvlogical: {rt:.2f} s (runs {r1[0]} s, {r2[0]} s)")
print(f"tidemark:       {tt:.2f} s (runs {t1[0]} s, {t2[0]} s), {events / tt:,.0f} events/s, peak RSS {rss:.1f} MiB")
print(f"ratio (pg_recvlogical / tidemark): {rt / tt:.2f}   target >= 0.80, peak RSS target <= 64 MiB")
print()
PY
}

echo "# tidemark benchmark: $txns transactions x $rows rows, then one transaction of $big rows"
echo

create_slots many_r1 many_t1 many_t2 many_r2
for ((i = 0; i < txns; i++)); do
  echo "INSERT INTO orders (customer_id, amount, status, note) SELECT g % 5000, (g % 100000) / 100.0, 'paid', 'order note ' || g FROM generate_series(1, $rows) g;"
done | psql_ bench
phase "$txns transactions of $rows rows" "$(lsn)" $((txns * rows)) many

create_slots big_r1 big_t1 big_t2 big_r2
psql_ -c "INSERT INTO orders (customer_id, amount, status, note) SELECT g % 5000, (g % 100000) / 100.0, 'paid', 'order note ' || g FROM generate_series(1, $big) g" bench
phase "one transaction of $big rows" "$(lsn)" "$big" big
