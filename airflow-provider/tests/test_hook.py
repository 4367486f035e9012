"""SfmigrateHook: Airflow's connections and variables reach sfmigrate in its environment only."""

from __future__ import annotations

import json
import logging
import os
import stat

import pytest

from sfmigrate_provider.hooks import SfmigrateConfigError, SfmigrateError, SfmigrateHook, conn_env_name, var_env_name


def test_environment_carries_connections_and_variables(env_connections, workspace, monkeypatch):
    # Another connection id for the Salesforce app: handed over as sfmigrate's salesforce_api.
    monkeypatch.setenv("AIRFLOW_CONN_MY_ORG", json.dumps(env_connections.connection()))
    monkeypatch.delenv("AIRFLOW_CONN_SALESFORCE_API")
    monkeypatch.setenv("AIRFLOW_VAR_BATCH_SIZE", "7")
    hook = SfmigrateHook(salesforce_conn_id="my_org", source_conn_ids=["erp"])
    env = hook.environment(base={})
    sf = json.loads(env["AIRFLOW_CONN_SALESFORCE_API"])
    assert sf["host"] == env_connections.url and sf["password"] == "sfemu-test-secret"
    assert json.loads(env["AIRFLOW_CONN_ERP"])["host"] == str(workspace / "erp.db")
    assert env["AIRFLOW_VAR_BATCH_SIZE"] == "7"
    assert "AIRFLOW_VAR_PARALLEL" not in env  # not set in Airflow: sfmigrate's default applies


def test_env_names_follow_airflow():
    assert conn_env_name("salesforce_api") == "AIRFLOW_CONN_SALESFORCE_API"
    assert var_env_name("batch_size") == "AIRFLOW_VAR_BATCH_SIZE"


def test_missing_connection_is_a_config_error(monkeypatch, sfmigrate_bin):
    monkeypatch.delenv("AIRFLOW_CONN_NOPE", raising=False)
    hook = SfmigrateHook(salesforce_conn_id="nope")
    with pytest.raises(SfmigrateConfigError) as e:
        hook.environment(base={})
    assert "'nope'" in str(e.value) and "airflow connections add nope" in str(e.value)


def test_run_keeps_secrets_off_the_command_line_and_the_log(env_connections, capsys, caplog):
    hook = SfmigrateHook()
    with caplog.at_level(logging.DEBUG):
        result = hook.run(["auth", "check", "--json"])
    logged = caplog.text + "".join(capsys.readouterr())  # Airflow's structlog writes to stdout
    assert result.returncode == 0, result.stderr
    assert result.summary["instance_url"] == env_connections.url
    assert "access_token" not in result.summary
    assert not any("sfemu-test-secret" in a for a in result.args)
    assert "sfemu-test-secret" not in logged
    assert "running " in logged and "auth check --json" in logged  # the command line is logged, without secrets


def test_check_maps_exit_codes(env_connections, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_API", json.dumps(env_connections.connection(secret="wrong-secret")))
    hook = SfmigrateHook()
    result = hook.run(["auth", "check"])
    assert result.returncode == 2
    with pytest.raises(SfmigrateConfigError) as e:
        hook.check(result)
    assert "client secret" in e.value.message and "wrong-secret" not in e.value.message
    # Nothing answers on port 1: not a configuration problem, so retryable (exit 1).
    monkeypatch.setenv(
        "AIRFLOW_CONN_SALESFORCE_API",
        json.dumps({"conn_type": "http", "host": "http://127.0.0.1:1", "login": "client", "password": "secret-x"}),
    )
    result = hook.run(["auth", "check"])
    assert result.returncode == 1
    with pytest.raises(SfmigrateError) as e:
        hook.check(result)
    assert not isinstance(e.value, SfmigrateConfigError)
    assert "127.0.0.1:1" in e.value.message


def test_binary_path(monkeypatch, tmp_path, sfmigrate_bin):
    assert SfmigrateHook(binary=sfmigrate_bin).binary_path() == sfmigrate_bin
    not_exec = tmp_path / "sfmigrate"
    not_exec.write_text("")
    monkeypatch.setenv("SFMIGRATE_BIN", str(not_exec))
    with pytest.raises(SfmigrateConfigError, match="not an executable file"):
        SfmigrateHook().binary_path()
    monkeypatch.delenv("SFMIGRATE_BIN")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SfmigrateConfigError, match="not on PATH"):
        SfmigrateHook().binary_path()
    os.chmod(not_exec, stat.S_IRWXU)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert SfmigrateHook().binary_path() == str(not_exec)


def test_airflow_sees_the_provider():
    from airflow.providers_manager import ProvidersManager

    from sfmigrate_provider import __version__

    info = ProvidersManager().providers.get("sfmigrate-airflow-provider")
    assert info is not None, "the apache_airflow_provider entry point is not installed"
    assert info.version == __version__ and info.data["name"] == "sfmigrate"
