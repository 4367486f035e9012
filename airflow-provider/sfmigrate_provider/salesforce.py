"""Salesforce token and status tracker for other tasks and callbacks.

Both run the sfmigrate binary (``sfmigrate auth check``, ``sfmigrate tracker``) with the
connection resolved through Airflow, so they sign in and write exactly as the pipeline does.
"""

from __future__ import annotations

import json
from typing import Any

from sfmigrate_provider.hooks import (
    EXIT_CONFIG,
    SALESFORCE_CONN_ID,
    SfmigrateConfigError,
    SfmigrateError,
    SfmigrateHook,
    _mask,
)


def _hook(conn_id: str, binary: str | None) -> SfmigrateHook:
    # Only the Salesforce connection: no source database, no Variables.
    return SfmigrateHook(salesforce_conn_id=conn_id, variables=(), binary=binary)


def _fail(conn_id: str, what: str, result) -> Exception:
    msg = f"{what} with Airflow connection {conn_id!r}"
    if conn_id != SALESFORCE_CONN_ID:
        msg += f" (sfmigrate calls it {SALESFORCE_CONN_ID})"
    msg += f": {result.message}"
    if result.returncode == EXIT_CONFIG:
        return SfmigrateConfigError(msg, result.returncode)
    return SfmigrateError(msg, result.returncode)


def get_salesforce_token(conn_id: str = SALESFORCE_CONN_ID, *, binary: str | None = None) -> dict[str, Any]:
    """Sign in with the connection (OAuth 2.0 client credentials) and return
    ``{"access_token", "instance_url", "token_type"}`` (plus ``issued_at``, ``org_id`` when
    Salesforce says). The token is registered with Airflow's log masker.

    Raises :class:`SfmigrateConfigError` (no retry) for a missing connection or field, or
    credentials Salesforce refuses (400/401: the message says whether the client id, the
    secret or the app's settings are wrong), :class:`SfmigrateError` otherwise.
    """
    hook = _hook(conn_id, binary)
    result = hook.run(["auth", "check", "--json", "--print-token"], on_stderr_line=lambda line: None)
    if result.returncode != 0 or result.summary is None:
        raise _fail(conn_id, "Salesforce login", result)
    session = result.summary
    _mask(session.get("access_token"))
    missing = [k for k in ("access_token", "instance_url", "token_type") if not session.get(k)]
    if missing:
        raise SfmigrateError(f"Salesforce login with connection {conn_id!r}: the answer lacks {', '.join(missing)}")
    out = {k: session[k] for k in ("access_token", "instance_url", "token_type")}
    for k in ("issued_at", "org_id"):
        if session.get(k):
            out[k] = session[k]
    return out


def _field_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


class SalesforceStatusTracker:
    """The migration status tracker (``status_tracker`` of the tables config; default
    Migration_Status__c by External_Ref__c, status in Status__c).

    :param conn_id: Airflow connection of the Salesforce app.
    :param tables_config: tables config whose ``status_tracker`` section names the object
        and fields (default: sfmigrate's defaults).
    """

    def __init__(self, conn_id: str = SALESFORCE_CONN_ID, *, tables_config: str | None = None, binary: str | None = None):
        self.conn_id = conn_id
        self.tables_config = tables_config
        self.binary = binary

    def _run(self, args: list[str], what: str) -> dict[str, Any]:
        if self.tables_config:
            args = [*args, "--tables-config", self.tables_config]
        hook = _hook(self.conn_id, self.binary)
        result = hook.run(args, on_stderr_line=lambda line: hook.log.info("%s", line))
        if result.returncode != 0 or result.summary is None:
            raise _fail(self.conn_id, what, result)
        return result.summary

    def upsert_status(self, ref: str, status: str, **fields: Any) -> dict[str, Any]:
        """Set the status (and fields, by API name) of the record ``ref``, creating it
        when missing. Values are converted to the fields' types (numbers, checkboxes);
        None clears a field."""
        args = ["tracker", "set", ref, status, "--json"]
        for k, v in fields.items():
            args += ["--field", f"{k}={_field_value(v)}"]
        return self._run(args, f"tracker upsert of {ref!r}")

    def update_status(self, ref: str, status: str) -> dict[str, Any]:
        """Set the status of the existing record ``ref`` (updateOnly: never creates one).
        A missing record raises :class:`SfmigrateConfigError` saying how to create it."""
        return self._run(["tracker", "set", ref, status, "--update-only", "--json"], f"tracker update of {ref!r}")

    def get_status(self, ref: str) -> dict[str, Any]:
        """The record ``ref``: ``{"object", "ref", "status", "fields"}``."""
        return self._run(["tracker", "get", ref], f"tracker read of {ref!r}")
