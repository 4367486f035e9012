"""Apache Airflow provider for sfmigrate.

sfmigrate is one Go binary; this package runs it from Airflow tasks:

* :class:`~sfmigrate_provider.hooks.SfmigrateHook` resolves Airflow Connections and
  Variables through Airflow itself (metadata DB, environment or a secrets backend) and
  hands them to the ``sfmigrate`` process in its environment only.
* :class:`~sfmigrate_provider.operators.SfmigrateOperator` runs one step
  (``sfmigrate task STEP``) and turns its exit code and JSON summary into Airflow's task
  states and XCom.
* :func:`~sfmigrate_provider.salesforce.get_salesforce_token` and
  :class:`~sfmigrate_provider.salesforce.SalesforceStatusTracker` give other tasks and
  callbacks the Salesforce token and the status tracker.
"""

__version__ = "0.1.0"


def get_provider_info() -> dict:
    """Describe the provider to Airflow (the ``apache_airflow_provider`` entry point)."""
    return {
        "package-name": "sfmigrate-airflow-provider",
        "name": "sfmigrate",
        "description": "Moves rows from SQL databases into Salesforce (Bulk API 2.0) with the sfmigrate binary.",
        "versions": [__version__],
    }
