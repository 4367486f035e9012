#!/usr/bin/env bash
# Third-party client check: starts `sfmigrate emulator` on a free port and
# drives it with unmodified public Salesforce clients (see docs/emulator.md).
#
#   third_party_clients/run.sh            # jsforce (npm), simple-salesforce (PyPI), the sf CLI
#   third_party_clients/run.sh jsforce    # only one of them (jsforce, simple-salesforce, sf)
#   SFEMU_FLAGS=--gzip-results third_party_clients/run.sh   # extra emulator flags
#
# Needs network access to the npm registry / PyPI for the first install; the
# clients are installed into this folder (node_modules/, .venv/, both ignored).
# The Salesforce CLI is not installed here: sf/check.sh uses SF_CLI or the copy
# bench/peers/run.sh caches, and skips with a message when there is none.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
which=${1:-all}

work=$(mktemp -d)
emu_pid=""
cleanup() {
  if [[ -n "$emu_pid" ]]; then kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/sfmigrate" ../cmd/sfmigrate
# SFEMU_FLAGS adds emulator flags, e.g. SFEMU_FLAGS=--gzip-results
# shellcheck disable=SC2086
# simple-salesforce only speaks https, so the emulator serves TLS for it.
tls=""
[[ "$which" == jsforce || "$which" == sf ]] || tls=--tls
"$work/sfmigrate" emulator --listen 127.0.0.1:0 --processing-delay 300ms $tls ${SFEMU_FLAGS:-} >"$work/out" 2>"$work/err" &
emu_pid=$!
for _ in $(seq 50); do [[ -s "$work/out" ]] && break; sleep 0.1; done
url=$(head -n 1 "$work/out" | sed 's/^sfemu listening on //')
[[ "$url" == http* ]] || { echo "emulator did not start:"; cat "$work/err"; exit 1; }
echo "run.sh: emulator at $url"

status=0
if [[ "$which" == all || "$which" == jsforce ]]; then
  # jsforce talks to the https emulator too when both run (Node: skip verification of the self-signed certificate).
  (cd "$here/jsforce" && { [[ -d node_modules ]] || npm ci --no-audit --no-fund; } && SFEMU_URL="$url" NODE_TLS_REJECT_UNAUTHORIZED=0 node check.mjs) || status=1
fi
if [[ ( "$which" == all && -f "$here/simple_salesforce/check.py" ) || "$which" == simple-salesforce ]]; then
  (cd "$here/simple_salesforce" && { [[ -d .venv ]] || { python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt; }; } && SFEMU_URL="$url" .venv/bin/python check.py) || status=1
fi
if [[ "$which" == all || "$which" == sf ]]; then
  # The Salesforce CLI is used where it is installed (SF_CLI, or the cache of
  # bench/peers/run.sh); sf/check.sh says SKIPPED otherwise.
  (cd "$here/sf" && SFEMU_URL="$url" NODE_TLS_REJECT_UNAUTHORIZED=0 ./check.sh) || status=1
fi
if grep -q "no route\|panic" "$work/err"; then
  echo "run.sh: the emulator logged requests it could not serve:"; grep "no route\|panic" "$work/err"; status=1
fi
exit $status
