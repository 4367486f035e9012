"""Airflow DAG running sfmigrate one step per task (design.md §7).

Each task is a BashOperator calling `sfmigrate task STEP` with the DAG run's id, so the
steps can run on different workers; they share SFMIGRATE_WORK_DIR and SFMIGRATE_LOGS_DIR
(a volume every worker mounts). Settings follow the original DAG: dag_run.conf beats
Airflow Variables (batch_size, start_batch) which beat the defaults; the connections
salesforce_api and the table's source connection are read from the worker's Airflow
environment (AIRFLOW_CONN_*), as sfmigrate reads them itself.

Exit code 3 (some records failed, tracker "In Progress") fails the update_status task so
the run shows up red; the failed-results files are in the logs dir.
"""
import pendulum
from airflow import DAG
from airflow.operators.bash import BashOperator

TABLE = "PRODUCT_PRICE"
COMMON = (
    "--run-id '{{ run_id }}' "
    "--tables-config /opt/sfmigrate/tables.yaml "
    "--work-dir ${SFMIGRATE_WORK_DIR:-/shared/sfmigrate} "
    "--logs-dir ${SFMIGRATE_LOGS_DIR:-/shared/sfmigrate/salesforce/logs}"
)

with DAG(
    dag_id="sfmigrate_product_price",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    params={},  # e.g. trigger with {"batch_size": 5000, "start_batch": 3}
    tags=["salesforce", "migration"],
) as dag:
    authenticate = BashOperator(
        task_id="authenticate",
        bash_command=f"sfmigrate task authenticate --table {TABLE} {COMMON}",
    )
    extract = BashOperator(
        task_id="extract",
        bash_command=(
            f"sfmigrate task extract --table {TABLE} {COMMON} "
            "--conf '{{ dag_run.conf | tojson }}'"
        ),
    )
    upload = BashOperator(
        task_id="upload",
        bash_command=f"sfmigrate task upload {COMMON}",
        # Uploads resume by job id, so a retry never loads a batch twice.
        retries=3,
    )
    collect_results = BashOperator(
        task_id="collect_results",
        bash_command=f"sfmigrate task collect-results {COMMON}",
        retries=3,
    )
    update_status = BashOperator(
        task_id="update_status",
        # --json: the summary is the last stdout line, pushed to XCom.
        bash_command=f"sfmigrate task update-status {COMMON} --json",
        do_xcom_push=True,
    )

    authenticate >> extract >> upload >> collect_results >> update_status
