"""Airflow 3 DAG running sfmigrate one step per task.

Needs the provider (pip install ./airflow-provider) and the sfmigrate binary on every
worker (PATH or SFMIGRATE_BIN). The tasks of one DAG run share one sfmigrate run (its id
is the DAG run's id), so they may run on different workers if those share
SFMIGRATE_WORK_DIR and SFMIGRATE_LOGS_DIR (a volume every worker mounts).

Settings, as in the original DAG: dag_run.conf (given to every step) beats the Airflow
Variables start_batch, batch_size and parallel, which beat the defaults. Connections
(salesforce_api and the table's source from the tables config) and Variables are read
through Airflow: the metadata DB, AIRFLOW_CONN_*/AIRFLOW_VAR_* or a secrets backend.

What each task shows:
  * its XCom return value is sfmigrate's summary as a dict (rows, successful, failed,
    failed_files, tracker_status, ...), also when it fails with failed records;
  * a configuration problem (exit 2) fails the task at once, without retries;
  * failed records (exit 3) fail update_status (and the DAG run) without retries, with
    the summary in XCom; the tracker record stays "In Progress";
  * a query with no rows skips extract and the steps after it (the tracker still gets
    "Uploaded").

Trigger with e.g. {"batch_size": 5000, "start_batch": 3}. The upload of one run is a single
task: the run's manifest has one writer at a time, so the batches cannot be spread over
several tasks (sfmigrate uploads `parallel` jobs at once within the task).
"""

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from sfmigrate_provider.operators import SfmigrateOperator

TABLE = os.environ.get("SFMIGRATE_EXAMPLE_TABLE", "PRODUCT_PRICE")

with DAG(
    dag_id="sfmigrate_steps",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    tags=["salesforce", "migration"],
    # Network or Salesforce trouble (exit 1) is retried; every step is safe to rerun.
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
) as dag:
    common = {
        "table": TABLE,
        # Defaults come from SFMIGRATE_TABLES_CONFIG, SFMIGRATE_WORK_DIR,
        # SFMIGRATE_LOGS_DIR and SFMIGRATE_POLL_INTERVAL on the workers.
        "salesforce_conn_id": "salesforce_api",
    }
    authenticate = SfmigrateOperator(task_id="authenticate", step="authenticate", **common)
    extract = SfmigrateOperator(task_id="extract", step="extract", **common)
    upload = SfmigrateOperator(task_id="upload", step="upload", **common)
    collect_results = SfmigrateOperator(task_id="collect_results", step="collect-results", **common)
    update_status = SfmigrateOperator(task_id="update_status", step="update-status", **common)

    authenticate >> extract >> upload >> collect_results >> update_status
