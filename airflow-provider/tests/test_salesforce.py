"""get_salesforce_token and SalesforceStatusTracker against the emulator."""

from __future__ import annotations

import json
import urllib.error

import pytest

from sfmigrate_provider.hooks import SfmigrateConfigError
from sfmigrate_provider.salesforce import SalesforceStatusTracker, get_salesforce_token


def test_token(env_connections):
    tok = get_salesforce_token("salesforce_api")
    assert set(tok) >= {"access_token", "instance_url", "token_type"}
    assert tok["instance_url"] == env_connections.url and tok["token_type"] == "Bearer"
    # The token works for other Salesforce calls.
    assert env_connections.query("SELECT COUNT() FROM Product2", token=tok["access_token"])["totalSize"] == 0
    with pytest.raises(urllib.error.HTTPError):
        env_connections.query("SELECT COUNT() FROM Product2", token="not-a-token")


@pytest.mark.parametrize(
    "conn, words",
    [
        ({"password": "wrong-secret"}, ["refused", "client secret"]),
        ({"login": "nobody"}, ["invalid_client_id", "client id"]),
        ({"login": None}, ["login", "client id"]),
        ({"host": None}, ["host", "My Domain URL"]),
    ],
)
def test_token_errors(env_connections, monkeypatch, conn, words):
    c = env_connections.connection()
    c.update(conn)
    monkeypatch.setenv("AIRFLOW_CONN_MY_ORG", json.dumps({k: v for k, v in c.items() if v is not None}))
    with pytest.raises(SfmigrateConfigError) as e:
        get_salesforce_token("my_org")
    msg = str(e.value)
    assert "'my_org'" in msg and "sfmigrate calls it salesforce_api" in msg
    for w in words:
        assert w in msg
    assert "wrong-secret" not in msg


def test_tracker(env_connections, workspace):
    tracker = SalesforceStatusTracker("salesforce_api", tables_config=str(workspace / "tables.yaml"))
    with pytest.raises(SfmigrateConfigError) as e:
        tracker.update_status("ORDERS", "Uploaded")
    assert "does not exist" in str(e.value) and "never creates one" in str(e.value)
    assert env_connections.tracker("ORDERS") is None
    tracker.upsert_status("ORDERS", "Not Started", Records_Total__c=40, Message__c="queued", Last_Run_Id__c=None)
    tracker.update_status("ORDERS", "In Progress")
    rec = tracker.get_status("ORDERS")
    assert rec["status"] == "In Progress" and rec["ref"] == "ORDERS"
    assert env_connections.tracker("ORDERS") == "In Progress"
    recs = env_connections.query(
        "SELECT Records_Total__c, Message__c FROM Migration_Status__c WHERE External_Ref__c = 'ORDERS'"
    )["records"]
    assert recs[0]["Records_Total__c"] == 40 and recs[0]["Message__c"] == "queued"
    with pytest.raises(SfmigrateConfigError, match="no field Mesage__c"):
        tracker.upsert_status("ORDERS", "Failed", Mesage__c="typo")
