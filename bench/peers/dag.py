"""The original Airflow DAG's approach, re-implemented the usual Python way.

authenticate (client credentials with requests) -> status tracker "In Progress"
-> extract (pandas.read_sql from SQLite in chunks of BATCH rows, one CSV file
per chunk) -> upload (a pool of 4 threads, one Bulk API 2.0 job per file:
create, PUT the CSV, close, poll until terminal) -> collect results (the three
result CSVs of every job saved to the logs dir) -> status tracker "Uploaded" or
"In Progress" (updateOnly=true). Prints one line: RESULT ok=N failed=M jobs=J.

Usage (bench/peers/run.sh runs it):
  python dag.py --url URL --db erp.db --out DIR [--batch 10000] [--poll 1.0]
                [--parallel 4] [--extract-only] [--verify-tls]
"""
import argparse
import concurrent.futures as cf
import os
import sqlite3
import sys
import time

import pandas as pd
import requests
import urllib3

# The peers read the same rows as sfmigrate's tables config maps them (the
# demo's PRODUCTS -> Product2), converted in SQL as a DAG author would:
# booleans as true/false, timestamps in ISO form, carriage returns dropped (an
# LF job refuses any CR, salesforce-api.md 2.11).
QUERY = """
SELECT PRODUCT_ID AS External_Id__c, NAME AS Name, PRODUCT_CODE AS ProductCode,
       replace(DESCRIPTION, char(13), '') AS Description, FAMILY AS Family,
       CASE WHEN ACTIVE IS NULL THEN NULL WHEN ACTIVE THEN 'true' ELSE 'false' END AS IsActive,
       LIST_PRICE AS Price__c, LAUNCH_DATE AS Launch_Date__c,
       replace(LAST_CHANGED, ' ', 'T') AS Last_Changed__c
FROM PRODUCTS ORDER BY PRODUCT_ID
"""

API = "/services/data/v66.0"


def extract(db, out, batch):
    """pandas.read_sql in chunks: one batch CSV file per chunk."""
    os.makedirs(out, exist_ok=True)
    files = []
    with sqlite3.connect(db) as conn:
        for n, df in enumerate(pd.read_sql(QUERY, conn, chunksize=batch), start=1):
            path = os.path.join(out, f"PRODUCTS_{n:05d}.csv")
            df.to_csv(path, index=False, lineterminator="\n")
            files.append(path)
    return files


class Bulk:
    def __init__(self, url, verify, poll):
        self.s = requests.Session()
        self.s.verify = verify
        self.s.trust_env = False
        self.poll = poll
        tok = self.s.post(url + "/services/oauth2/token", data={
            "grant_type": "client_credentials",
            "client_id": os.environ.get("SFEMU_CLIENT_ID", "sfemu-test-client"),
            "client_secret": os.environ.get("SFEMU_CLIENT_SECRET", "sfemu-test-secret"),
        })
        tok.raise_for_status()
        tok = tok.json()
        self.base = tok["instance_url"] + API
        self.s.headers["Authorization"] = "Bearer " + tok["access_token"]

    def status(self, ref, status, update_only=False):
        url = self.base + "/sobjects/Migration_Status__c/External_Ref__c/" + ref
        if update_only:
            url += "?updateOnly=true"
        r = self.s.patch(url, json={"Status__c": status})
        r.raise_for_status()

    def load(self, path, logs):
        r = self.s.post(self.base + "/jobs/ingest", json={
            "object": "Product2", "operation": "upsert", "externalIdFieldName": "External_Id__c",
            "contentType": "CSV", "lineEnding": "LF"})
        r.raise_for_status()
        job = r.json()["id"]
        with open(path, "rb") as f:
            r = self.s.put(f"{self.base}/jobs/ingest/{job}/batches", data=f,
                           headers={"Content-Type": "text/csv"})
        r.raise_for_status()
        self.s.patch(f"{self.base}/jobs/ingest/{job}", json={"state": "UploadComplete"}).raise_for_status()
        while True:
            time.sleep(self.poll)
            info = self.s.get(f"{self.base}/jobs/ingest/{job}").json()
            if info["state"] in ("JobComplete", "Failed", "Aborted"):
                break
        name = os.path.splitext(os.path.basename(path))[0]
        for kind in ("successfulResults", "failedResults", "unprocessedrecords"):
            r = self.s.get(f"{self.base}/jobs/ingest/{job}/{kind}")
            r.raise_for_status()
            with open(os.path.join(logs, f"{name}_{kind}.csv"), "wb") as f:
                f.write(r.content)
        return info.get("numberRecordsProcessed", 0) - info.get("numberRecordsFailed", 0), info.get("numberRecordsFailed", 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--db", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--poll", type=float, default=1.0)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--extract-only", action="store_true")
    ap.add_argument("--verify-tls", action="store_true")
    a = ap.parse_args()
    if a.extract_only:
        files = extract(a.db, os.path.join(a.out, "batches"), a.batch)
        print(f"extracted {len(files)} files")
        return
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    bulk = Bulk(a.url, a.verify_tls, a.poll)
    bulk.status("PRODUCTS", "In Progress")
    files = extract(a.db, os.path.join(a.out, "batches"), a.batch)
    logs = os.path.join(a.out, "logs")
    os.makedirs(logs, exist_ok=True)
    ok = failed = 0
    with cf.ThreadPoolExecutor(a.parallel) as pool:
        for o, f in pool.map(lambda p: bulk.load(p, logs), files):
            ok += o
            failed += f
    bulk.status("PRODUCTS", "Uploaded" if failed == 0 else "In Progress", update_only=True)
    print(f"RESULT ok={ok} failed={failed} jobs={len(files)}")


if __name__ == "__main__":
    sys.exit(main())
