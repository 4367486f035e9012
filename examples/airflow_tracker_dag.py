"""Airflow 3 DAG using the provider's Python interface from ordinary tasks.

get_salesforce_token signs in with an Airflow connection (the token is masked in logs)
and SalesforceStatusTracker writes the migration status tracker, as the original DAG's
helper functions did, e.g. from a failure callback. Both run the sfmigrate binary.
"""

import os

import pendulum
from airflow.sdk import DAG, task

from sfmigrate_provider.salesforce import SalesforceStatusTracker, get_salesforce_token

TABLE = os.environ.get("SFMIGRATE_EXAMPLE_TABLE", "PRODUCT_PRICE")
TABLES_CONFIG = os.environ.get("SFMIGRATE_TABLES_CONFIG")

with DAG(
    dag_id="sfmigrate_tracker",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    schedule=None,
    catchup=False,
    tags=["salesforce", "migration"],
) as dag:

    @task
    def check_connection() -> dict:
        session = get_salesforce_token("salesforce_api")
        # Never return the token itself: XCom is visible in the UI.
        return {"instance_url": session["instance_url"], "token_type": session["token_type"]}

    @task
    def reset_tracker(session: dict) -> dict:
        tracker = SalesforceStatusTracker("salesforce_api", tables_config=TABLES_CONFIG)
        tracker.upsert_status(TABLE, "Not Started")
        tracker.update_status(TABLE, "In Progress")
        return tracker.get_status(TABLE)

    reset_tracker(check_connection())
