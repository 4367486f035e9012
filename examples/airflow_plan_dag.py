"""Airflow 3 DAG running an sfmigrate plan: one task group per step, in plan order.

The plan is made once, at deploy time, next to the tables config (in $SFMIGRATE_HOME,
default /opt/sfmigrate):

    sfmigrate plan --tables-config /opt/sfmigrate/tables.yaml --json \
        --step-configs /opt/sfmigrate/plan_steps > /opt/sfmigrate/plan.json

plan.json holds the steps (TABLE for the first pass, TABLE.pass2 for the lookups that close a
cycle), the steps each one waits for, and the waves; plan_steps/<STEP>.yaml is a tables config
with the step's table as that step loads it (the first pass without the lookups that close a
cycle, the second pass an upsert of the external id and those lookups). This file only reads
plan.json: no subprocess and no Salesforce call at DAG parse time. Rerun the command above and
redeploy when the tables config changes.

Each task group runs the five steps of one plan step as `sfmigrate task STEP` (the provider's
SfmigrateOperator), with a run id of its own derived from the DAG run's, so groups run on any
worker sharing SFMIGRATE_WORK_DIR and SFMIGRATE_LOGS_DIR. Groups wait for the groups their step
waits for; groups of one wave run at the same time, each with its share of PARALLEL jobs in
flight (as `sfmigrate run --all-tables` divides it). Connections (salesforce_api and the sources
the tables config names) and Variables are read through Airflow: metadata DB, AIRFLOW_CONN_*,
or a secrets backend.

Exit code 3 (some rows failed for good, tracker "In Progress") marks the step's update_status
task skipped instead of failed, with the summary in XCom: the groups waiting for it are then
skipped too (Airflow's default trigger rule), which is on_parent_failure: stop; a table whose
entry says on_parent_failure: continue starts anyway (trigger rule none_failed). Any other
failure fails the task, and every group after it waits. The failed-results files are in the
logs dir.
"""

import json
import os
from pathlib import Path

import pendulum
from airflow.sdk import DAG, TaskGroup

from sfmigrate_provider.operators import SfmigrateOperator

SFMIGRATE_HOME = Path(os.environ.get("SFMIGRATE_HOME", "/opt/sfmigrate"))
PLAN_FILE = SFMIGRATE_HOME / "plan.json"
STEP_CONFIGS = SFMIGRATE_HOME / "plan_steps"
PARALLEL = 8  # jobs in flight for the whole plan


def load_plan(path=PLAN_FILE):
    """Returns the steps of `sfmigrate plan --json` in plan order, each with its parallel share."""
    plan = json.loads(Path(path).read_text())
    by_id = {step["id"]: step for step in plan["steps"]}
    ordered = []
    for wave in plan["waves"]:
        share = max(1, PARALLEL // len(wave))
        for step_id in wave:
            ordered.append(dict(by_id[step_id], parallel=share))
    return ordered


def step_group(step):
    """The five `sfmigrate task` steps of one plan step, in a task group named after it."""
    group_id = step["id"].replace(".", "_")  # Airflow ids may not hold dots
    common = {
        "table": step["table"],
        "run_id": "{{ run_id }}." + step["id"],
        "tables_config": str(STEP_CONFIGS / f"{step['id']}.yaml"),
        # The step's share of the plan's jobs in flight; work and logs dirs come from
        # SFMIGRATE_WORK_DIR and SFMIGRATE_LOGS_DIR on the workers.
        "conf": {"parallel": step["parallel"]},
        # A table without rows succeeds (and lets the tables after it start) rather
        # than skip: skipped means "rows failed" here.
        "skip_on_zero_rows": False,
    }
    later = dict(common, trigger_rule="all_success")  # a skipped authenticate skips the group
    with TaskGroup(group_id=group_id, tooltip=step["table"] + " -> " + step["sf_object"]) as group:
        authenticate = SfmigrateOperator(
            task_id="authenticate",
            step="authenticate",
            # A parent with failed rows ends skipped; continue still runs this step.
            trigger_rule="none_failed" if step["on_parent_failure"] == "continue" else "all_success",
            **common,
        )
        extract = SfmigrateOperator(task_id="extract", step="extract", **later)
        # Network or Salesforce trouble is retried: uploads resume by job id, so a retry
        # never loads a batch twice.
        upload = SfmigrateOperator(task_id="upload", step="upload", retries=3, **later)
        collect_results = SfmigrateOperator(task_id="collect_results", step="collect-results", retries=3, **later)
        update_status = SfmigrateOperator(task_id="update_status", step="update-status", partial_as_skip=True, **later)
        authenticate >> extract >> upload >> collect_results >> update_status
    return group


with DAG(
    dag_id="sfmigrate_plan",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    max_active_runs=1,
    tags=["salesforce", "migration"],
) as dag:
    groups = {}
    for step in load_plan():
        groups[step["id"]] = step_group(step)
        for parent in step["waits_for"]:
            groups[parent] >> groups[step["id"]]
