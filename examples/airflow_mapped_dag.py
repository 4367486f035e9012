"""Airflow 3 DAG running sfmigrate with the upload mapped over the batches.

Like airflow_dag.py (one step per task), except that each batch file is uploaded by a task
of its own: the extract task's summary lists the batches with rows (upload_batches, a
small task of the provider, turns it into the list), and the upload task is expanded over
it, so the ingest jobs of one run are spread over the workers. Each mapped task runs `sfmigrate task upload --batch N`: it
owns batch N (and the follow-up jobs of its rows that failed for a passing reason), takes
that batch's lock, and never touches another batch. A retried mapped task follows the job
its batch already has; no batch ever gets a second job. The last mapped task to finish
marks the upload step done, and collect-results runs after all of them.

The workers must share SFMIGRATE_WORK_DIR and SFMIGRATE_LOGS_DIR (a volume every worker
mounts, with working flock, as NFSv4 and local disks have). max_active_tis_per_dagrun bounds
how many batches upload at once for one DAG run: each mapped task is one job in flight.

Settings, connections and Variables work as in airflow_dag.py: dag_run.conf (given to every
step) beats the Airflow Variables, which beat the defaults; connections are read through
Airflow (metadata DB, AIRFLOW_CONN_*, or a secrets backend).
"""

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from sfmigrate_provider.operators import SfmigrateOperator, upload_batches

TABLE = os.environ.get("SFMIGRATE_EXAMPLE_TABLE", "PRODUCT_PRICE")

with DAG(
    dag_id="sfmigrate_mapped",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    tags=["salesforce", "migration"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
) as dag:
    common = {"table": TABLE, "salesforce_conn_id": "salesforce_api"}
    authenticate = SfmigrateOperator(task_id="authenticate", step="authenticate", **common)
    extract = SfmigrateOperator(task_id="extract", step="extract", **common)
    upload = SfmigrateOperator.partial(
        task_id="upload",
        step="upload",
        max_active_tis_per_dagrun=8,
        **common,
    ).expand(batch=upload_batches(extract.output))
    collect_results = SfmigrateOperator(task_id="collect_results", step="collect-results", **common)
    update_status = SfmigrateOperator(task_id="update_status", step="update-status", **common)

    authenticate >> extract >> upload >> collect_results >> update_status
