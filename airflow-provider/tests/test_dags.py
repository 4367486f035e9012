"""The example DAGs under a real Airflow 3 (`airflow dags test`) against `sfmigrate
emulator`, with the Salesforce and source connections and a Variable stored in Airflow's
metadata DB (not in the environment): rows in the org, results files, tracker status,
task states and the XCom dicts, as an Airflow user would check them."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import warnings
from pathlib import Path

import pytest

from conftest import EXAMPLES, PLAN_TABLES_YAML, TABLES_YAML, Emulator, _make_source, airflow_cli


@pytest.fixture(scope="module")
def deployment(airflow_db, sfmigrate_bin, tmp_path_factory):
    """An Airflow deployment: connections and a Variable in the metadata DB, the
    emulator as the org, SFMIGRATE_* settings on the 'workers'."""
    root = tmp_path_factory.mktemp("deployment")
    _make_source(root / "erp.db")
    (root / "tables.yaml").write_text(TABLES_YAML)
    emu = Emulator(sfmigrate_bin)
    # Only what an Airflow worker would have: no AIRFLOW_CONN_*/AIRFLOW_VAR_* at all, so
    # connections and Variables can only come from the metadata DB.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env.update(
        SFMIGRATE_BIN=sfmigrate_bin,
        SFMIGRATE_EXAMPLE_TABLE="PRODUCTS",
        SFMIGRATE_TABLES_CONFIG=str(root / "tables.yaml"),
        SFMIGRATE_WORK_DIR=str(root / "work"),
        SFMIGRATE_LOGS_DIR=str(root / "logs"),
        SFMIGRATE_POLL_INTERVAL="20ms",
    )
    airflow_cli(
        "connections", "add", "salesforce_api", "--conn-type", "http", "--conn-host", emu.url,
        "--conn-login", "sfemu-test-client", "--conn-password", "sfemu-test-secret", env=env,
    )
    # Airflow stores an unknown --conn-type as "generic" unless the SQLite provider is
    # installed; the JSON form keeps the type as given.
    airflow_cli("connections", "add", "erp", "--conn-json", json.dumps({"conn_type": "sqlite", "host": str(root / "erp.db")}), env=env)
    airflow_cli("variables", "set", "batch_size", "7", env=env)
    yield {"env": env, "emu": emu, "root": root}
    emu.stop()


def dags_test(deployment, dag_id: str, conf: dict | None = None, env: dict | None = None):
    args = ["dags", "test", dag_id]
    if conf is not None:
        args += ["--conf", json.dumps(conf)]
    p = airflow_cli(*args, check=False, env=env or deployment["env"])
    return p, latest_run(dag_id)


def latest_run(dag_id: str) -> dict:
    """The last DAG run of dag_id as the metadata DB holds it: state, each task's state
    and tries, and each task's return-value XCom; for mapped tasks, by map index under
    "mapped" and "mapped_xcom"; each task's start and end under "times"."""
    from sqlalchemy import select

    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as s:
        run = s.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(1)).one()
        tis = s.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)).all()
        xcoms = s.scalars(
            select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run.run_id, XComModel.key == "return_value")
        ).all()
        return {
            "run_id": run.run_id,
            "state": str(run.state),
            "tasks": {ti.task_id: (str(ti.state), ti.try_number) for ti in tis if ti.map_index < 0},
            "xcom": {x.task_id: x.value for x in xcoms if x.map_index < 0},
            "mapped": {
                t: {ti.map_index: (str(ti.state), ti.try_number) for ti in tis if ti.task_id == t}
                for t in {ti.task_id for ti in tis if ti.map_index >= 0}
            },
            "mapped_xcom": {
                t: {x.map_index: x.value for x in xcoms if x.task_id == t}
                for t in {x.task_id for x in xcoms if x.map_index >= 0}
            },
            "times": {ti.task_id: (ti.start_date, ti.end_date) for ti in tis if ti.map_index < 0},
        }


def successful_rows(summary: dict) -> int:
    n = 0
    for f in Path(summary["results_dir"]).glob("*_successful.csv"):
        with open(f, newline="") as fh:
            n += sum(1 for _ in csv.DictReader(fh))
    return n


def test_examples_parse_without_deprecation_warnings(sfmigrate_bin, tmp_path, monkeypatch):
    # The plan DAG reads the plan written at deploy time: write it as its
    # docstring says, from the examples' tables config, without the org.
    subprocess.run([sfmigrate_bin, "plan", "--offline", "--json", "--tables-config", str(EXAMPLES / "tables.yaml"),
                    "--step-configs", str(tmp_path / "plan_steps")],
                   stdout=(tmp_path / "plan.json").open("w"), check=True)
    monkeypatch.setenv("SFMIGRATE_HOME", str(tmp_path))
    for path in sorted(EXAMPLES.glob("airflow_*.py")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        ours = [
            w for w in caught
            if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning))
            and ("examples" in w.filename or "sfmigrate_provider" in w.filename)
        ]
        assert not ours, f"{path.name}: {[str(w.message) for w in ours]}"
        assert mod.dag.dag_id.startswith("sfmigrate_")
        if path.stem == "airflow_plan_dag":
            # One task group per step of the plan, in plan order.
            groups = {t.task_group.group_id for t in mod.dag.tasks if t.task_group and t.task_group.group_id}
            assert len(groups) >= 4, groups


def test_steps_dag_with_connections_and_variable_from_the_metadata_db(deployment):
    emu = deployment["emu"]
    p, run = dags_test(deployment, "sfmigrate_steps")
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    assert run["state"] == "success"
    assert set(run["tasks"].values()) == {("success", 1)}
    for task_id in ("authenticate", "extract", "upload", "collect_results", "update_status"):
        assert isinstance(run["xcom"][task_id], dict), task_id
        assert run["xcom"][task_id]["run_id"] == run["run_id"]
    final = run["xcom"]["update_status"]
    # batch_size 7 came from the Variable in the metadata DB: 25 rows in 4 batches.
    assert final["outcome"] == "succeeded" and final["batches"] == 4 and final["successful"] == 25
    assert final["tracker_status"] == "Uploaded" and emu.tracker("PRODUCTS") == "Uploaded"
    assert emu.count("SELECT COUNT() FROM Product2 WHERE External_Id__c LIKE '%'") >= 25
    assert emu.count("SELECT COUNT() FROM Product2 WHERE Name = 'Product 25'") == 1
    assert Path(final["summary_file"]).is_file() and successful_rows(final) == 25
    # The secret never reached a task log or the command line.
    assert "sfemu-test-secret" not in p.stdout + p.stderr
    # No deprecation warning from the provider or the DAG while parsing and running.
    ours = [
        line for line in (p.stdout + p.stderr).splitlines()
        if "eprecat" in line and ("sfmigrate_provider" in line or "examples/" in line)
    ]
    assert not ours, ours


def test_steps_dag_with_run_config(deployment):
    emu = deployment["emu"]
    conf = {"table": "MORE_PRODUCTS", "batch_size": 10, "requested_by": "ops"}
    p, run = dags_test(deployment, "sfmigrate_steps", conf)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    final = run["xcom"]["update_status"]
    # The run config reached every step: its batch_size beat the Variable (7), and its
    # table replaced the DAG's; the unknown key was only warned about.
    assert final["table"] == "MORE_PRODUCTS" and final["batches"] == 3 and final["successful"] == 30
    assert any('unknown key "requested_by" ignored' in w for w in run["xcom"]["extract"]["warnings"])
    assert emu.tracker("MORE_PRODUCTS") == "Uploaded"
    assert emu.count("SELECT COUNT() FROM Product2 WHERE ProductCode LIKE 'M-%'") == 30
    assert emu.count("SELECT COUNT() FROM Product2 WHERE Name = 'More, \\\"quoted\\\" 130'") == 1


def test_steps_dag_with_failing_rows_is_red_with_summary_in_xcom(deployment):
    emu = deployment["emu"]
    p, run = dags_test(deployment, "sfmigrate_steps", {"table": "BAD_PRODUCTS"})
    assert p.returncode != 0
    assert run["state"] == "failed"
    # retries=2 in the DAG, yet one try: failed records are not retried.
    assert run["tasks"]["update_status"] == ("failed", 1)
    summary = run["xcom"]["update_status"]
    assert isinstance(summary, dict) and summary["outcome"] == "partial" and summary["exit_code"] == 3
    assert summary["failed"] == 5 and summary["successful"] == 15
    assert summary["failed_files"] and all(Path(f).is_file() for f in summary["failed_files"])
    with open(summary["failed_files"][0], newline="") as fh:
        failed = list(csv.DictReader(fh))
    assert failed and all(r.get("sf__Error") for r in failed)
    assert emu.tracker("BAD_PRODUCTS") == "In Progress"


def test_steps_dag_config_error_fails_once_before_anything_is_written(deployment):
    emu = deployment["emu"]
    before = emu.count("SELECT COUNT() FROM Migration_Status__c")
    p, run = dags_test(deployment, "sfmigrate_steps", {"table": "MORE_PRODUCTS", "batch_size": "lots"})
    assert p.returncode != 0 and run["state"] == "failed"
    assert run["tasks"]["authenticate"] == ("failed", 1)  # no retry of a configuration error
    assert run["tasks"]["extract"][0] == "upstream_failed"
    assert 'batch_size = \\"lots\\"' in p.stdout + p.stderr or 'batch_size = "lots"' in p.stdout + p.stderr
    assert not (deployment["root"] / "work" / "runs" / run["run_id"]).exists()
    assert emu.count("SELECT COUNT() FROM Migration_Status__c") == before


def test_steps_dag_zero_rows_skips(deployment):
    emu = deployment["emu"]
    p, run = dags_test(deployment, "sfmigrate_steps", {"table": "EMPTY"})
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    assert run["state"] == "success"
    assert run["tasks"]["authenticate"] == ("success", 1)
    for task_id in ("extract", "upload", "collect_results", "update_status"):
        assert run["tasks"][task_id][0] == "skipped", (task_id, run["tasks"])
        assert run["xcom"][task_id]["rows"] == 0
    # No rows is its own outcome: the tracker is not set to "Uploaded" (it
    # stays as authenticate left it).
    assert emu.tracker("EMPTY") == "In Progress"


def test_tracker_dag(deployment):
    emu = deployment["emu"]
    p, run = dags_test(deployment, "sfmigrate_tracker")
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    session = run["xcom"]["check_connection"]
    assert session == {"instance_url": emu.url, "token_type": "Bearer"}
    rec = run["xcom"]["reset_tracker"]
    assert rec["ref"] == "PRODUCTS" and rec["status"] == "In Progress"
    assert emu.tracker("PRODUCTS") == "In Progress"


def test_mapped_upload_dag(deployment):
    emu = deployment["emu"]
    # 35 rows in batches of 10: the upload task is mapped over 4 batches.
    p, run = dags_test(deployment, "sfmigrate_mapped", {"table": "MAPPED_PRODUCTS", "batch_size": 10})
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    assert run["state"] == "success"
    assert run["xcom"]["upload_batches"] == [1, 2, 3, 4]
    assert run["mapped"]["upload"] == {i: ("success", 1) for i in range(4)}
    # Each mapped task's summary is its own batch's.
    uploads = run["mapped_xcom"]["upload"]
    assert sorted(s["batch"] for s in uploads.values()) == [1, 2, 3, 4]
    assert sorted(s["rows"] for s in uploads.values()) == [5, 10, 10, 10]
    final = run["xcom"]["update_status"]
    assert final["outcome"] == "succeeded" and final["batches"] == 4 and final["successful"] == 35
    assert final["jobs"] == 4  # one job per batch, whichever worker uploaded it
    assert emu.tracker("MAPPED_PRODUCTS") == "Uploaded"
    assert emu.count("SELECT COUNT() FROM Product2 WHERE ProductCode LIKE 'P-%'") == 35
    assert successful_rows(final) == 35


def test_plan_dag(deployment, sfmigrate_bin):
    emu = deployment["emu"]
    # Written at deploy time, as the DAG's docstring says (offline: from the config).
    home = deployment["root"] / "plan_home"
    home.mkdir()
    (home / "tables.yaml").write_text(PLAN_TABLES_YAML)
    with (home / "plan.json").open("w") as out:
        subprocess.run([sfmigrate_bin, "plan", "--offline", "--json", "--tables-config", str(home / "tables.yaml"),
                        "--step-configs", str(home / "plan_steps")], stdout=out, check=True)
    env = dict(deployment["env"], SFMIGRATE_HOME=str(home))
    p, run = dags_test(deployment, "sfmigrate_plan", env=env)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    assert run["state"] == "success"
    assert set(run["tasks"].values()) == {("success", 1)}, run["tasks"]
    for group, rows in (("PLAN_PRODUCTS", 10), ("PLAN_PRICES", 20)):
        final = run["xcom"][f"{group}.update_status"]
        assert final["outcome"] == "succeeded" and final["successful"] == rows, final
        assert final["run_id"] == run["run_id"] + "." + group
        assert emu.tracker(group) == "Uploaded"
    # Prices waited for their products: the lookups found them.
    products_done = run["times"]["PLAN_PRODUCTS.update_status"][1]
    prices_started = run["times"]["PLAN_PRICES.authenticate"][0]
    assert products_done <= prices_started
    assert emu.count("SELECT COUNT() FROM Product_Price__c WHERE External_Id__c LIKE 'PR-%'") == 20
    assert emu.count("SELECT COUNT() FROM Product_Price__c WHERE Product__c = null") == 0
