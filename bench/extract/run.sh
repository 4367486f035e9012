#!/usr/bin/env bash
# Extraction speed and memory of the extract package, measured side by side
# with the C tools (README.md has the results and the profile).
#
#   bench/extract/run.sh          # speed (1 M rows, RUNS runs each, median), then memory (1 M and 5 M rows)
#   bench/extract/run.sh speed    # only the speed comparison
#   bench/extract/run.sh memory   # only rows/s and peak RSS at MEM_ROWS
#   RUNS=7 ROWS=1000000 MEM_ROWS="1000000 5000000" BATCH=10000 bench/extract/run.sh
#
# Speed: sqlite3 -csv (one file) vs our extraction to batch files of BATCH
# rows; psql "\copy (query) to file csv" vs the same from PostgreSQL. Runs
# are interleaved (tool, ours, tool, ours, ...) so that load from other
# processes hits both alike; the ratio is tool median / ours median (> 1:
# ours is faster).
#
# PostgreSQL: AIRFLOW_CONN_POSTGRES_TEST when set (a table
# sfm_bench_products is created and dropped there), else a throwaway
# cluster started like scripts/test does; SKIP_PG=1 skips PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-5}
ROWS=${ROWS:-1000000}
MEM_ROWS=${MEM_ROWS:-"1000000 5000000"}
BATCH=${BATCH:-10000}
what=${1:-all}

work=$(mktemp -d /tmp/sfm-extract-bench.XXXXXX)
pg_stop() { :; }
cleanup() {
  if [[ -n "${PGURL:-}" ]]; then psql -X -q "$PGURL" -c "DROP TABLE IF EXISTS sfm_bench_products" >/dev/null 2>&1 || true; fi
  pg_stop
  rm -rf "$work"
}
trap cleanup EXIT

echo "building bench/extract ..."
go build -o "$work/extract-bench" ./bench/extract

COLS="id, ext_id, name, description, price, quantity, active, launch_date, updated_at, ratio, category, notes"

# timed CMD...: run CMD and print "wall user sys maxrss_kb".
timed() {
  if ! /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$@" >"$work/stdout" 2>"$work/stderr"; then
    cat "$work/stderr" >&2
    return 1
  fi
  cat "$work/time"
}

# median of the first column of stdin.
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

sqlite_db() { # rows -> path of a database with that many rows
  local db="$work/bench-$1.db"
  if [[ ! -f $db ]]; then
    echo "generating SQLite table, $1 rows ..." >&2
    sed "s/@ROWS@/$1/" bench/extract/sqlite.sql | sqlite3 "$db" >/dev/null
  fi
  echo "$db"
}

PGURL=""
pg_rows=0
pg_setup() {
  if [[ "${SKIP_PG:-}" == 1 ]]; then return 1; fi
  if [[ -z "$PGURL" ]]; then
    if [[ -n "${AIRFLOW_CONN_POSTGRES_TEST:-}" ]]; then
      PGURL=$AIRFLOW_CONN_POSTGRES_TEST
    else
      local port
      pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
      [[ -n "$pgbin" && -x "$pgbin/initdb" ]] || { echo "no PostgreSQL server binaries: skipping PostgreSQL" >&2; SKIP_PG=1; return 1; }
      # Its own directory: the postgres user cannot enter $work (mode 0700).
      pgdir=$(mktemp -d /tmp/sfm-extract-bench-pg.XXXXXX)
      as_pg=()
      if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$pgdir"
        as_pg=(runuser -u postgres --)
      fi
      port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
      "${as_pg[@]}" "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 --no-locale >"$pgdir/initdb.log" 2>&1 \
        || { cat "$pgdir/initdb.log" >&2; exit 1; }
      "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w \
        -o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB" start >/dev/null \
        || { cat "$pgdir/server.log" >&2; exit 1; }
      pg_stop() { "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$pgdir"; }
      PGURL="postgres://postgres@127.0.0.1:$port/postgres"
      echo "started PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
    fi
  fi
  if [[ $pg_rows != "$1" ]]; then
    echo "generating PostgreSQL table, $1 rows ..." >&2
    sed "s/@ROWS@/$1/" bench/extract/postgres.sql | psql -X -q -v ON_ERROR_STOP=1 "$PGURL" >/dev/null || exit 1
    pg_rows=$1
  fi
}

# ours ARGS...: run the Go extraction into a fresh directory; prints "wall user sys maxrss rows/s".
ours() {
  rm -rf "$work/out"
  local t
  t=$(timed "$work/extract-bench" -dir "$work/out" -batch-size "$BATCH" "$@")
  local rows
  rows=$(sed -n 's/.*rows=\([0-9]*\) .*/\1/p' "$work/stdout")
  [[ $rows == "$want_rows" ]] || { echo "extracted $rows rows, want $want_rows" >&2; return 1; }
  echo "$t $(sed -n 's/.*rows_per_s=\([0-9]*\).*/\1/p' "$work/stdout")"
  rm -rf "$work/out"
}

report() { # name tool-times-file ours-times-file
  local tw ow
  tw=$(median <"$2"); ow=$(median <"$3")
  printf "%-10s %-22s median %7.3f s   (runs: %s)\n" "$1" "$4" "$tw" "$(cut -d' ' -f1 "$2" | tr '\n' ' ')"
  printf "%-10s %-22s median %7.3f s   (runs: %s)  cpu %.2f s, peak RSS %s KB\n" "$1" "sfmigrate extract" "$ow" \
    "$(cut -d' ' -f1 "$3" | tr '\n' ' ')" "$(awk '{print $2+$3}' "$3" | median)" "$(cut -d' ' -f4 "$3" | sort -n | tail -1)"
  printf "%-10s ratio %.2fx (tool median / ours median; >= 1 means ours is at least as fast)\n\n" "$1" "$(echo "$tw $ow" | awk '{print $1/$2}')"
}

speed() {
  local db q
  want_rows=$ROWS
  db=$(sqlite_db "$ROWS")
  q="SELECT $COLS FROM products ORDER BY id"
  : >"$work/sqlite3.t"; : >"$work/ours-sqlite.t"
  have_pg=0
  if pg_setup "$ROWS"; then have_pg=1; : >"$work/psql.t"; : >"$work/ours-pg.t"; fi
  echo "speed: $ROWS rows x 12 columns, $RUNS runs each, batch files of $BATCH rows" >&2
  for ((i = 1; i <= RUNS; i++)); do
    timed sh -c 'sqlite3 -csv "$1" "$2" >"$3"' _ "$db" "$q" "$work/sqlite3.csv" >>"$work/sqlite3.t"
    rm -f "$work/sqlite3.csv"
    ours -conn "sqlite://${db//\//%2F}" >>"$work/ours-sqlite.t"
    if ((have_pg)); then
      timed psql -X -q "$PGURL" -c "\\copy (SELECT $COLS FROM sfm_bench_products ORDER BY id) to '$work/psql.csv' csv" >>"$work/psql.t"
      rm -f "$work/psql.csv"
      ours -conn "$PGURL" -table sfm_bench_products >>"$work/ours-pg.t"
    fi
    echo "  run $i/$RUNS done" >&2
  done
  echo
  echo "== speed: $ROWS rows x 12 mixed columns, median of $RUNS runs, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) =="
  report sqlite "$work/sqlite3.t" "$work/ours-sqlite.t" "sqlite3 -csv (1 file)"
  if ((have_pg)); then report postgres "$work/psql.t" "$work/ours-pg.t" "psql \\copy csv"; fi
}

memory() {
  echo "== memory: rows/s and peak RSS by table size (batch files of $BATCH rows) =="
  for rows in $MEM_ROWS; do
    want_rows=$rows
    local db r
    db=$(sqlite_db "$rows")
    r=$(ours -conn "sqlite://${db//\//%2F}")
    printf "sqlite   %9d rows: %8d rows/s  wall %6.2f s  peak RSS %6d KB\n" "$rows" "$(echo "$r" | cut -d' ' -f5)" "$(echo "$r" | cut -d' ' -f1)" "$(echo "$r" | cut -d' ' -f4)"
    rm -f "$db"
    if pg_setup "$rows"; then
      r=$(ours -conn "$PGURL" -table sfm_bench_products)
      printf "postgres %9d rows: %8d rows/s  wall %6.2f s  peak RSS %6d KB\n" "$rows" "$(echo "$r" | cut -d' ' -f5)" "$(echo "$r" | cut -d' ' -f1)" "$(echo "$r" | cut -d' ' -f4)"
    fi
  done
}

case $what in
  speed) speed ;;
  memory) memory ;;
  all) speed; memory ;;
  *) echo "usage: $0 [speed|memory|all]" >&2; exit 2 ;;
esac
