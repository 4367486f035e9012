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

Each task group runs the five steps of one plan step as `sfmigrate task STEP`, with a run id of
its own derived from the DAG run's, so groups run on any worker sharing SFMIGRATE_WORK_DIR and
SFMIGRATE_LOGS_DIR. Groups wait for the groups their step waits for; groups of one wave run at
the same time, each with its share of PARALLEL jobs in flight (as `sfmigrate run --all-tables`
divides it). Connections come from the workers' AIRFLOW_CONN_* variables, as sfmigrate reads them.

Exit code 3 (some rows failed for good, tracker "In Progress") marks the step's update_status
task skipped instead of failed: the groups waiting for it are then skipped too (Airflow's default
trigger rule), which is on_parent_failure: stop; a table whose entry says
on_parent_failure: continue starts anyway (trigger rule none_failed). Any other failure fails the
task, and every group after it waits. The failed-results files are in the logs dir.

The operators of the sfmigrate Airflow provider (airflow-provider/) can replace the
BashOperators below one for one.
"""

import json
import os
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, TaskGroup

SFMIGRATE_HOME = Path(os.environ.get("SFMIGRATE_HOME", "/opt/sfmigrate"))
PLAN_FILE = SFMIGRATE_HOME / "plan.json"
STEP_CONFIGS = SFMIGRATE_HOME / "plan_steps"
PARALLEL = 8  # jobs in flight for the whole plan
COMMON = (
    "--work-dir ${SFMIGRATE_WORK_DIR:-/shared/sfmigrate} "
    "--logs-dir ${SFMIGRATE_LOGS_DIR:-/shared/sfmigrate/salesforce/logs}"
)
PARTIAL = 3  # sfmigrate's exit code for "finished, some records failed"


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
    run_id = "'{{ run_id }}." + step["id"] + "'"
    config = STEP_CONFIGS / f"{step['id']}.yaml"
    common = f"--run-id {run_id} --tables-config {config} {COMMON}"
    conf = json.dumps({"parallel": step["parallel"]})
    with TaskGroup(group_id=group_id, tooltip=step["table"] + " -> " + step["sf_object"]) as group:
        authenticate = BashOperator(
            task_id="authenticate",
            bash_command=f"sfmigrate task authenticate --table {step['table']} {common}",
            # A parent with failed rows ends skipped; continue still runs this step.
            trigger_rule="none_failed" if step["on_parent_failure"] == "continue" else "all_success",
        )
        extract = BashOperator(
            task_id="extract",
            bash_command=f"sfmigrate task extract --table {step['table']} {common} --conf '{conf}'",
        )
        upload = BashOperator(
            task_id="upload",
            bash_command=f"sfmigrate task upload {common} --conf '{conf}'",
            retries=3,  # uploads resume by job id: a retry never loads a batch twice
        )
        collect_results = BashOperator(
            task_id="collect_results",
            bash_command=f"sfmigrate task collect-results {common}",
            retries=3,
        )
        update_status = BashOperator(
            task_id="update_status",
            bash_command=f"sfmigrate task update-status {common} --json",
            do_xcom_push=True,  # the summary, the last stdout line
            skip_on_exit_code=PARTIAL,
        )
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
