"""simple-salesforce bulk2 upsert: the same extraction as dag.py (pandas ->
batch files), then sf.bulk2.Product2.upsert per file on 4 threads, and the
successful and failed results of every job saved with get_*_records (its
get_unprocessed_records asks for .../unprocessedRecords, a spelling the
emulator does not serve; no row is unprocessed here anyway).
Prints one line: RESULT ok=N failed=M jobs=J.

Usage: python ssf.py --url URL --db erp.db --out DIR [--batch 10000] [--poll 1.0]

simple-salesforce builds every URL as https://<instance>/..., so run.sh starts
its emulator with --tls; the token comes from a plain form POST (its login
helpers only reach *.salesforce.com) and certificate checks are off for the
emulator's self-signed certificate.
"""
import argparse
import concurrent.futures as cf
import os
import sys

import requests
import urllib3
from simple_salesforce import Salesforce

from dag import extract


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--poll", type=float, default=1.0)
    ap.add_argument("--parallel", type=int, default=4)
    a = ap.parse_args()
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    session = requests.Session()
    session.verify = False
    session.trust_env = False
    tok = session.post(a.url + "/services/oauth2/token", data={
        "grant_type": "client_credentials",
        "client_id": os.environ.get("SFEMU_CLIENT_ID", "sfemu-test-client"),
        "client_secret": os.environ.get("SFEMU_CLIENT_SECRET", "sfemu-test-secret"),
    }).json()
    sf = Salesforce(instance_url=tok["instance_url"], session_id=tok["access_token"],
                    session=session, version="66.0")
    sf.Migration_Status__c.upsert("External_Ref__c/PRODUCTS", {"Status__c": "In Progress"})
    files = extract(a.db, os.path.join(a.out, "batches"), a.batch)
    logs = os.path.join(a.out, "logs")
    os.makedirs(logs, exist_ok=True)

    def load(path):
        name = os.path.splitext(os.path.basename(path))[0]
        ok = failed = 0
        for res in sf.bulk2.Product2.upsert(csv_file=path, external_id_field="External_Id__c", wait=a.poll):
            job = res["job_id"]
            sf.bulk2.Product2.get_successful_records(job, file=os.path.join(logs, f"{name}_successful.csv"))
            sf.bulk2.Product2.get_failed_records(job, file=os.path.join(logs, f"{name}_failed.csv"))
            failed += int(res["numberRecordsFailed"])
            ok += int(res["numberRecordsProcessed"]) - int(res["numberRecordsFailed"])
        return ok, failed

    ok = failed = 0
    with cf.ThreadPoolExecutor(a.parallel) as pool:
        for o, f in pool.map(load, files):
            ok += o
            failed += f
    sf.Migration_Status__c.upsert("External_Ref__c/PRODUCTS?updateOnly=true",
                                  {"Status__c": "Uploaded" if failed == 0 else "In Progress"})
    print(f"RESULT ok={ok} failed={failed} jobs={len(files)}")


if __name__ == "__main__":
    sys.exit(main())
