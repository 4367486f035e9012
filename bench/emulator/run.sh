#!/usr/bin/env bash
# Emulator bulk-upsert benchmark: 1,000,000 Product2 records over real HTTP
# (see docs/emulator.md). Runs BenchmarkBulkUpsert COUNT times (default 5)
# and prints, per shape, the best and the median records/s, the CPU seconds
# per million records, the highest peak RSS of a run and the Go heap the
# emulator holds once the jobs are done, with the load average around the run
# (other work on the machine lowers the wall-clock figures, not the CPU ones).
#
#   bench/emulator/run.sh [COUNT]
set -euo pipefail
cd "$(dirname "$0")/../../sfemu"
count=${1:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
go test -run '^$' -bench BulkUpsert -benchtime 1x -count "$count" -timeout 60m | tee "$out" | grep '^Benchmark' || true
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"
awk '
function sortn(a, n,    i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t } }
/^BenchmarkBulkUpsert/ {
  name = $1
  for (i = 2; i < NF; i++) {
    if ($(i+1) == "records/s")   rs[name] = rs[name] " " $i
    if ($(i+1) == "cpu-s/Mrec")  cpu[name] = cpu[name] " " $i
    if ($(i+1) == "peak-RSS-MB" && $i > rss[name]) rss[name] = $i
    if ($(i+1) == "held-heap-MB") held[name] = $i
  }
}
END {
  for (n in rs) {
    k = split(rs[n], v, " "); sortn(v, k)
    split(cpu[n], c, " "); sortn(c, k)
    printf "%s: best %d records/s, median %d records/s, median %.2f CPU-s per 1M records, highest peak RSS %d MB, heap held after the jobs %d MB (%d runs)\n", n, v[k], v[int((k+1)/2)], c[int((k+1)/2)], rss[n], held[n], k
  }
}' "$out"
