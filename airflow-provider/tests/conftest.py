"""Fixtures: the sfmigrate binary, a running `sfmigrate emulator`, a SQLite source and an
Airflow home with its metadata DB. Everything is real: the binary is the one built from
this repository, the emulator serves over loopback HTTP, Airflow is the pinned release."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

# Airflow reads its home when first imported: give the test session its own, before any
# test module imports airflow.
_HOME = Path(os.environ.get("SFMIGRATE_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="sfmigrate-airflow-home-"))
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLES)

import pytest  # noqa: E402

TEST_CLIENT_ID = "sfemu-test-client"
TEST_CLIENT_SECRET = "sfemu-test-secret"

# Source tables: NAME is required in Product2, so BAD_PRODUCTS' NULL names fail in
# Salesforce (exit 3); EMPTY has no rows.
TABLES_YAML = """
tables:
  PRODUCTS:
    source: erp
    query: SELECT id, name, code FROM products WHERE id <= 25
    order_by: id
    sf_object: Product2
    external_id_field: External_Id__c
    fields: {id: External_Id__c, name: Name, code: ProductCode}
  MORE_PRODUCTS:
    source: erp
    query: SELECT id, name, code FROM products WHERE id > 100 AND id <= 130
    order_by: id
    sf_object: Product2
    external_id_field: External_Id__c
    fields: {id: External_Id__c, name: Name, code: ProductCode}
  BAD_PRODUCTS:
    source: erp
    query: SELECT id, name, code FROM products WHERE id > 200 AND id <= 220
    order_by: id
    sf_object: Product2
    external_id_field: External_Id__c
    fields: {id: External_Id__c, name: Name, code: ProductCode}
  MAPPED_PRODUCTS:
    source: erp
    query: SELECT id, name, code FROM products WHERE id > 300 AND id <= 335
    order_by: id
    sf_object: Product2
    external_id_field: External_Id__c
    fields: {id: External_Id__c, name: Name, code: ProductCode}
  EMPTY:
    source: erp
    query: SELECT id, name, code FROM products WHERE id > 100000
    order_by: id
    sf_object: Product2
    external_id_field: External_Id__c
    fields: {id: External_Id__c, name: Name, code: ProductCode}
"""


# A plan of two related tables for the plan DAG: prices point at their products by the
# products' external id, so the plan loads the products first.
PLAN_TABLES_YAML = """
tables:
  PLAN_PRICES:
    source: erp
    query: SELECT 'PR-' || id AS price_key, product_id, price FROM prices
    order_by: price_key
    sf_object: Product_Price__c
    external_id_field: External_Id__c
    depends_on: PLAN_PRODUCTS
    fields: {price_key: External_Id__c, product_id: Product__r.External_Id__c, price: Unit_Price__c}
  PLAN_PRODUCTS:
    source: erp
    query: SELECT id, name, code FROM products WHERE id > 400 AND id <= 410
    order_by: id
    sf_object: Product2
    external_id_field: External_Id__c
    fields: {id: External_Id__c, name: Name, code: ProductCode}
"""


def _make_source(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, code TEXT)")
    rows = [(i, f"Product {i}", f"C-{i}") for i in range(1, 26)]
    rows += [(i, f"More, \"quoted\" {i}", f"M-{i}") for i in range(101, 131)]
    rows += [(i, None if i % 4 == 0 else f"Bad {i}", f"B-{i}") for i in range(201, 221)]
    rows += [(i, f"Mapped {i}", f"P-{i}") for i in range(301, 336)]
    rows += [(i, f"Plan {i}", f"L-{i}") for i in range(401, 411)]
    db.executemany("INSERT INTO products VALUES (?, ?, ?)", rows)
    # Prices of the plan products (401-410), two each: they load after their products.
    db.execute("CREATE TABLE prices (id INTEGER PRIMARY KEY, product_id TEXT, price REAL)")
    db.executemany("INSERT INTO prices VALUES (?, ?, ?)", [(i, str(401 + i % 10), 9.5 + i) for i in range(1, 21)])
    db.commit()
    db.close()


@pytest.fixture(scope="session")
def sfmigrate_bin(tmp_path_factory) -> str:
    """The sfmigrate binary: $SFMIGRATE_BIN (scripts/test builds it), else built here."""
    path = os.environ.get("SFMIGRATE_BIN")
    if not path:
        if not shutil.which("go"):
            pytest.fail("SFMIGRATE_BIN is not set and go is not installed to build sfmigrate")
        path = str(tmp_path_factory.mktemp("bin") / "sfmigrate")
        subprocess.run(["go", "build", "-o", path, "./cmd/sfmigrate"], cwd=REPO, check=True)
        os.environ["SFMIGRATE_BIN"] = path
    assert os.access(path, os.X_OK), f"SFMIGRATE_BIN={path} is not executable"
    return path


class Emulator:
    """A `sfmigrate emulator` process on a free loopback port."""

    def __init__(self, binary: str):
        self.proc = subprocess.Popen(
            [binary, "emulator", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        first = self.proc.stdout.readline().strip()  # "sfemu listening on http://127.0.0.1:PORT"
        if "listening on " not in first:
            self.proc.kill()
            raise RuntimeError(f"emulator did not start: {first!r}")
        self.url = first.rsplit(" ", 1)[-1]
        # Keep reading its output so it never blocks on a full pipe.
        import threading

        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def connection(self, secret: str = TEST_CLIENT_SECRET, login: str = TEST_CLIENT_ID) -> dict:
        return {"conn_type": "http", "host": self.url, "login": login, "password": secret}

    def token(self) -> tuple[str, str]:
        form = urllib.parse.urlencode(
            {"grant_type": "client_credentials", "client_id": TEST_CLIENT_ID, "client_secret": TEST_CLIENT_SECRET}
        ).encode()
        with urllib.request.urlopen(self.url + "/services/oauth2/token", data=form, timeout=10) as r:
            tok = json.load(r)
        return tok["access_token"], tok["instance_url"]

    def query(self, soql: str, token: str | None = None) -> dict:
        """Run SOQL through the emulator's REST query endpoint, as a person checking an org would."""
        access, instance = self.token()
        req = urllib.request.Request(
            instance + "/services/data/v66.0/query?q=" + urllib.parse.quote(soql),
            headers={"Authorization": "Bearer " + (token or access)},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def count(self, soql: str) -> int:
        return self.query(soql)["totalSize"]

    def tracker(self, ref: str) -> str | None:
        recs = self.query(f"SELECT Status__c FROM Migration_Status__c WHERE External_Ref__c = '{ref}'")["records"]
        return recs[0]["Status__c"] if recs else None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def emulator(sfmigrate_bin):
    emu = Emulator(sfmigrate_bin)
    yield emu
    emu.stop()


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A SQLite source, a tables config and work/logs dirs; SFMIGRATE_* point at them."""
    _make_source(tmp_path / "erp.db")
    (tmp_path / "tables.yaml").write_text(TABLES_YAML)
    monkeypatch.setenv("SFMIGRATE_TABLES_CONFIG", str(tmp_path / "tables.yaml"))
    monkeypatch.setenv("SFMIGRATE_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("SFMIGRATE_LOGS_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("SFMIGRATE_POLL_INTERVAL", "20ms")
    return tmp_path


@pytest.fixture
def env_connections(monkeypatch, emulator, workspace):
    """Connections as AIRFLOW_CONN_* (Airflow's environment backend) for unit tests."""
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_API", json.dumps(emulator.connection()))
    monkeypatch.setenv("AIRFLOW_CONN_ERP", json.dumps({"conn_type": "sqlite", "host": str(workspace / "erp.db")}))
    return emulator


def airflow_cli(*args: str, check: bool = True, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the `airflow` command of this virtualenv."""
    exe = Path(sys.executable).with_name("airflow")
    p = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env or os.environ.copy(), timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"airflow {' '.join(args)}: exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata DB in the session's AIRFLOW_HOME (airflow db migrate)."""
    airflow_cli("db", "migrate")
    return _HOME
