"""Sums the record counts of the `sf data upsert bulk --json` answers in a file.

The answers of the parallel invocations follow each other in one file (each
is written whole); prints "successful failed" over every answer that has them.
"""
import json
import sys

text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
decoder = json.JSONDecoder()
ok = failed = answers = 0
i = 0
while (j := text.find("{", i)) >= 0:
    try:
        obj, i = decoder.raw_decode(text, j)
    except ValueError:
        i = j + 1
        continue
    result = obj.get("result") if isinstance(obj, dict) else None
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
print(ok, failed)
