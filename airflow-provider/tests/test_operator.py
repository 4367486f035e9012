"""SfmigrateOperator run directly (execute with a context) against the emulator: exit
codes become task outcomes, the summary a dict. DAG-level behaviour (retries, skips
downstream, XCom in the metadata DB) is in test_dags.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from sfmigrate_provider.hooks import SfmigrateConfigError, SfmigrateError
from sfmigrate_provider.operators import STEPS, SfmigrateOperator, zero_rows


class DagRun:
    def __init__(self, conf):
        self.conf = conf


class TaskInstance:
    """Records what the operator pushes to XCom."""

    def __init__(self):
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value


def context(conf=None):
    return {"dag_run": DagRun(conf or {}), "ti": TaskInstance()}


def run_steps(run_id, table=None, conf=None, steps=STEPS):
    out = {}
    for step in steps:
        op = SfmigrateOperator(task_id=step.replace("-", "_"), step=step, table=table, run_id=run_id)
        out[step] = op.execute(context(conf))
    return out


def test_command_has_conf_json_and_no_secrets(env_connections):
    op = SfmigrateOperator(task_id="upload", step="upload", table="PRODUCTS", run_id="r1")
    args = op.command({"batch_size": 5, "note": "x"}, "PRODUCTS")
    assert args[:4] == ["task", "upload", "--run-id", "r1"]
    assert args[args.index("--conf") + 1] == json.dumps({"batch_size": 5, "note": "x"})
    assert "--json" in args and "--table" in args
    assert not any("sfemu-test-secret" in a for a in args)
    # A table in the run config is given once, by the run config.
    assert "--table" not in op.command({"table": "MORE_PRODUCTS"}, "MORE_PRODUCTS")
    assert op.trigger_rule == "none_failed"
    assert SfmigrateOperator(task_id="a", step="authenticate").trigger_rule == "all_success"
    with pytest.raises(ValueError, match="unknown step 'deploy'"):
        SfmigrateOperator(task_id="x", step="deploy")


def test_steps_return_summary_dicts(env_connections, workspace, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_BATCH_SIZE", "10")
    out = run_steps("manual__2026-12-05T01:00:00+00:00~1", table="PRODUCTS")
    for step, summary in out.items():
        assert isinstance(summary, dict), step
        assert summary["steps"][step] == "done"
    final = out["update-status"]
    assert final["outcome"] == "succeeded" and final["successful"] == 25 and final["batches"] == 3
    assert final["tracker_status"] == "Uploaded" and final["failed_files"] == []
    assert Path(final["summary_file"]).is_file()
    assert env_connections.count("SELECT COUNT() FROM Product2") == 25
    assert env_connections.tracker("PRODUCTS") == "Uploaded"


def test_failed_records_push_summary_then_fail(env_connections, workspace):
    ctx = None
    for step in STEPS:
        op = SfmigrateOperator(task_id=step, step=step, table="BAD_PRODUCTS", run_id="bad1")
        ctx = context()
        if step != "update-status":
            op.execute(ctx)
            continue
        with pytest.raises(AirflowFailException) as e:
            op.execute(ctx)
    summary = ctx["ti"].xcom["return_value"]
    assert summary["outcome"] == "partial" and summary["exit_code"] == 3
    assert summary["failed"] == 5 and summary["successful"] == 15
    assert summary["failed_files"] and all(os.path.isfile(f) for f in summary["failed_files"])
    assert summary["failed_files"][0] in str(e.value) and "Not retried" in str(e.value)
    assert env_connections.tracker("BAD_PRODUCTS") == "In Progress"


def test_zero_rows_skip_with_summary(env_connections, workspace):
    op = SfmigrateOperator(task_id="a", step="authenticate", table="EMPTY", run_id="z1")
    assert not zero_rows(op.execute(context()))
    for step in STEPS[1:]:
        ctx = context()
        with pytest.raises(AirflowSkipException, match="no rows"):
            SfmigrateOperator(task_id="s", step=step, table="EMPTY", run_id="z1").execute(ctx)
        assert ctx["ti"].xcom["return_value"]["rows"] == 0
    # No rows is its own outcome: the tracker stays as authenticate left it.
    assert env_connections.tracker("EMPTY") == "In Progress"


def test_config_error_fails_without_retry_before_anything_is_written(env_connections, workspace):
    op = SfmigrateOperator(task_id="a", step="authenticate", table="PRODUCTS", run_id="cfg1")
    with pytest.raises(SfmigrateConfigError) as e:
        op.execute(context({"batch_size": "lots", "unrelated": 1}))
    assert isinstance(e.value, AirflowFailException)
    assert 'batch_size = "lots"' in e.value.message and "run config" in e.value.message
    assert not (workspace / "work" / "runs" / "cfg1").exists()
    assert env_connections.tracker("PRODUCTS") is None


def test_run_config_reaches_every_step(env_connections, workspace, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_BATCH_SIZE", "7")
    out = run_steps("conf1", conf={"table": "MORE_PRODUCTS", "batch_size": 10, "owner": "ops"})
    assert out["update-status"]["batches"] == 3 and out["update-status"]["successful"] == 30
    assert any('unknown key "owner" ignored' in w for w in out["extract"]["warnings"])
    # An explicit conflicting value on a later step is refused, naming both.
    op = SfmigrateOperator(task_id="u", step="upload", run_id="conf1")
    with pytest.raises(SfmigrateConfigError) as e:
        op.execute(context({"table": "MORE_PRODUCTS", "batch_size": 12}))
    assert 'batch_size = "12"' in e.value.message and "recorded batch_size = 10" in e.value.message


def test_network_error_is_retryable(env_connections, workspace, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SALESFORCE_API",
        json.dumps({"conn_type": "http", "host": "http://127.0.0.1:1", "login": "client", "password": "secret-x"}),
    )
    op = SfmigrateOperator(task_id="a", step="authenticate", table="PRODUCTS", run_id="net1")
    with pytest.raises(SfmigrateError) as e:
        op.execute(context())
    assert isinstance(e.value, AirflowException) and not isinstance(e.value, AirflowFailException)
    assert e.value.exit_code == 1


def test_batch_is_for_upload_only():
    op = SfmigrateOperator(task_id="upload", step="upload", run_id="r1", batch=3)
    args = op.command({}, "PRODUCTS")
    assert args[args.index("--batch") + 1] == "3"
    for bad in (dict(step="extract", batch=1), dict(step="upload", batch=0), dict(step="upload", batch="2"), dict(step="upload", batch=True)):
        with pytest.raises(ValueError, match="batch="):
            SfmigrateOperator(task_id="x", **bad)


def test_mapped_upload_per_batch(env_connections, workspace):
    from sfmigrate_provider.operators import upload_batches

    run = lambda step, **kw: SfmigrateOperator(task_id="t", step=step, table="MAPPED_PRODUCTS", run_id="mp1", **kw).execute(  # noqa: E731
        context({"batch_size": 10}))
    run("authenticate")
    extract = run("extract")
    batches = upload_batches.function(extract)
    assert batches == [1, 2, 3, 4]
    for b in reversed(batches):
        s = run("upload", batch=b)
        assert s["batch"] == b and s["rows"] == (5 if b == 4 else 10)
    final = run("collect-results"), run("update-status")
    assert final[1]["successful"] == 35 and final[1]["jobs"] == 4
    assert env_connections.tracker("MAPPED_PRODUCTS") == "Uploaded"


def test_partial_as_skip_and_zero_rows_without_skip(env_connections, workspace):
    for step in STEPS[:-1]:
        SfmigrateOperator(task_id="t", step=step, table="BAD_PRODUCTS", run_id="bad2").execute(context())
    ctx = context()
    with pytest.raises(AirflowSkipException, match="partial_as_skip"):
        SfmigrateOperator(task_id="t", step="update-status", table="BAD_PRODUCTS", run_id="bad2", partial_as_skip=True).execute(ctx)
    assert ctx["ti"].xcom["return_value"]["exit_code"] == 3
    # A plan's tasks succeed on a table without rows (skipped means "rows failed" there).
    for step in STEPS:
        op = SfmigrateOperator(task_id="t", step=step, table="EMPTY", run_id="z2", skip_on_zero_rows=False)
        assert op.execute(context())["rows"] == 0
        assert step == "authenticate" or op.trigger_rule == "all_success"
