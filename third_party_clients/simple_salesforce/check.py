"""Drive `sfmigrate emulator --tls` with an unmodified simple-salesforce.

simple-salesforce builds every URL as https://<instance>/..., and its login
helpers only reach https://<domain>.salesforce.com, so this check:
  * gets the client-credentials token with plain `requests` (the same POST
    simple-salesforce's login would send),
  * hands session_id + instance_url to simple_salesforce.Salesforce with a
    requests session that skips verification of the emulator's self-signed
    certificate,
  * runs a Bulk API 2.0 upsert through sf.bulk2 and reads successful and
    failed results, then a SOQL query and a REST upsert by external id.

Usage: SFEMU_URL=https://127.0.0.1:PORT .venv/bin/python check.py
"""
import csv
import io
import os
import sys
import tempfile
import time

import requests
import urllib3
from simple_salesforce import Salesforce
from simple_salesforce.__version__ import __version__

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

url = os.environ.get("SFEMU_URL")
if not url or not url.startswith("https://"):
    sys.exit("set SFEMU_URL to the https URL printed by `sfmigrate emulator --tls`")

session = requests.Session()
session.verify = False  # the emulator's certificate is self-signed
session.trust_env = False  # else REQUESTS_CA_BUNDLE would override verify=False
tok = session.post(
    url + "/services/oauth2/token",
    data={
        "grant_type": "client_credentials",
        "client_id": os.environ.get("SFEMU_CLIENT_ID", "sfemu-test-client"),
        "client_secret": os.environ.get("SFEMU_CLIENT_SECRET", "sfemu-test-secret"),
    },
).json()
assert tok["instance_url"] == url, tok

sf = Salesforce(instance_url=tok["instance_url"], session_id=tok["access_token"],
                session=session, version="66.0")
print(f"login ok (simple-salesforce {__version__})")

run = format(int(time.time() * 1000), "x")
key = lambda n: f"PY-{run}-{n}"  # noqa: E731
rows = [
    ["External_Id__c", "Name", "Price__c", "IsActive", "Family", "Description"],
    [key(1), "Widget", "912260031", "true", "Hardware", 'Lorem\nIpsum, "quoted"'],
    [key(2), "Gadget", "19.99", "false", "Software", ""],
    [key(3), "", "1", "true", "Hardware", ""],  # Name missing
]
with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="") as f:
    csv.writer(f, lineterminator="\n").writerows(rows)
    path = f.name

jobs = sf.bulk2.Product2.upsert(csv_file=path, external_id_field="External_Id__c", wait=1)
print("bulk2 upsert:", jobs)
assert len(jobs) == 1, jobs
job = jobs[0]
assert job["numberRecordsProcessed"] == 3 and job["numberRecordsFailed"] == 1, job

ok = list(csv.DictReader(io.StringIO(sf.bulk2.Product2.get_successful_records(job["job_id"]))))
failed = list(csv.DictReader(io.StringIO(sf.bulk2.Product2.get_failed_records(job["job_id"]))))
print("successful:", ok)
print("failed:", failed)
by_key = {r["External_Id__c"]: r for r in ok}
assert by_key[key(1)]["sf__Created"] == "true" and by_key[key(1)]["sf__Id"].startswith("01t")
assert by_key[key(1)]["Price__c"] == "9.12260031E8"
assert by_key[key(1)]["Description"] == 'Lorem\nIpsum, "quoted"'
assert failed[0]["sf__Error"] == "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --", failed

q = sf.query(f"SELECT Id, Name FROM Product2 WHERE External_Id__c = '{key(2)}'")
assert q["totalSize"] == 1 and q["records"][0]["Name"] == "Gadget", q
status = sf.Migration_Status__c.upsert(f"External_Ref__c/PY_{run}", {"Status__c": "Uploaded"})
assert status == 201, status
print("simple-salesforce check passed")
