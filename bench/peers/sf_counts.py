"""Sums the record counts of the `sf data upsert bulk --json` answers in a file.

Usage: sf_counts.py OUT [TOTAL_ROWS FILES]

The answers of the parallel invocations follow each other in one file (each
is written whole); prints "successful failed" over every answer that has them.
A job with failed rows answers with an error (FailedRecordDetailsError, exit
code 1) that says only how many rows failed; when every one of FILES
invocations answered, the successful rows are then TOTAL_ROWS less the
failed ones.
"""
import json
import re
import sys

text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
total = int(sys.argv[2]) if len(sys.argv) > 3 else None
files = int(sys.argv[3]) if len(sys.argv) > 3 else None
decoder = json.JSONDecoder()
ok = failed = answers = partial = 0
i = 0
while (j := text.find("{", i)) >= 0:
    try:
        obj, i = decoder.raw_decode(text, j)
    except ValueError:
        i = j + 1
        continue
    if not isinstance(obj, dict):
        continue
    if obj.get("name") == "FailedRecordDetailsError":
        # {"name": ..., "message": "... failed to process 54 records.", "data": {"state": "JobComplete"}}
        m = re.search(r"failed to process (\d+) records", obj.get("message") or "")
        if m and (obj.get("data") or {}).get("state") == "JobComplete":
            failed += int(m.group(1))
            partial += 1
            answers += 1
        continue
    result = obj.get("result")
    if not isinstance(result, dict):
        continue
    job = result.get("jobInfo")
    if isinstance(job, dict) and "numberRecordsProcessed" in job:
        # {"result": {"jobInfo": {...}}}: the job as the API answers it.
        bad = job.get("numberRecordsFailed") or 0
        ok += (job.get("numberRecordsProcessed") or 0) - bad
        failed += bad
        answers += 1
    elif "successfulRecords" in result:
        ok += result.get("successfulRecords") or 0
        failed += result.get("failedRecords") or 0
        answers += 1
if answers == 0:
    sys.exit("no sf answer with record counts")
if partial:
    if total is None or answers != files:
        sys.exit(f"{partial} answers give only their failed rows, and {answers} of {files} files answered")
    ok = total - failed
print(ok, failed)
