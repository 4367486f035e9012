"""SfmigrateHook: runs the sfmigrate binary with Airflow's Connections and Variables."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import BaseHook, Variable
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException

#: The connection id the sfmigrate binary reads the Salesforce app from; any Airflow
#: connection id is handed to it under this name.
SALESFORCE_CONN_ID = "salesforce_api"

#: Airflow Variables sfmigrate reads (run config > Variable > default).
DEFAULT_VARIABLES: tuple[str, ...] = ("start_batch", "batch_size", "parallel")

#: Exit codes of the binary.
EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_PARTIAL = 0, 1, 2, 3


def conn_env_name(conn_id: str) -> str:
    """The environment variable Airflow (and sfmigrate) read connection ``conn_id`` from."""
    return "AIRFLOW_CONN_" + conn_id.upper()


def var_env_name(key: str) -> str:
    """The environment variable Airflow (and sfmigrate) read Variable ``key`` from."""
    return "AIRFLOW_VAR_" + key.upper()


@dataclass
class SfmigrateResult:
    """What one sfmigrate process did."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    #: The JSON object on the last stdout line (``--json``), or None.
    summary: dict[str, Any] | None = field(default=None)

    @property
    def message(self) -> str:
        """The last stderr line: sfmigrate's error, naming the value, its source and the fix."""
        for line in reversed(self.stderr.splitlines()):
            line = line.strip()
            if line:
                return line.removeprefix("sfmigrate: ")
        return f"sfmigrate exited with code {self.returncode} and printed no error"


class SfmigrateError(AirflowException):
    """sfmigrate failed in a way a retry may fix (exit code 1: network, database, Salesforce)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE, summary: dict[str, Any] | None = None):
        super().__init__(message)
        self.message, self.exit_code, self.summary = message, exit_code, summary


class SfmigrateConfigError(AirflowFailException):
    """A configuration or usage problem (exit code 2, or found before starting sfmigrate):
    a retry cannot help, so the task fails without retrying."""

    def __init__(self, message: str, exit_code: int = EXIT_CONFIG, summary: dict[str, Any] | None = None):
        super().__init__(message)
        self.message, self.exit_code, self.summary = message, exit_code, summary


def _mask(value: Any) -> None:
    """Tell Airflow's log masker about a secret (no-op where it is not available)."""
    if not value:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older task SDKs
        return
    mask_secret(value)


class SfmigrateHook(BaseHook):
    """Runs ``sfmigrate`` with the Connections and Variables it needs, resolved through
    Airflow itself (metadata DB, environment variables or any secrets backend).

    They reach the process only in its environment, as ``AIRFLOW_CONN_<ID>`` (the
    connection's JSON form) and ``AIRFLOW_VAR_<KEY>``: never on its command line (which
    other users of the machine can read) and never in the task log (Airflow masks the
    connection's password and the JSON holding it).

    :param salesforce_conn_id: Airflow connection of the Salesforce connected app (host =
        My Domain URL, login = client id, password = client secret); handed to sfmigrate
        as its ``salesforce_api`` connection.
    :param source_conn_ids: Airflow connections of the source databases to hand over
        under their own ids (the tables config's ``source`` names them).
    :param variables: Airflow Variables to hand over when set (default start_batch,
        batch_size, parallel).
    :param binary: path of the sfmigrate binary; default ``$SFMIGRATE_BIN``, else
        ``sfmigrate`` on PATH.
    """

    conn_name_attr = "salesforce_conn_id"
    default_conn_name = SALESFORCE_CONN_ID
    conn_type = "http"
    hook_name = "sfmigrate"

    def __init__(
        self,
        salesforce_conn_id: str = SALESFORCE_CONN_ID,
        source_conn_ids: Iterable[str] = (),
        variables: Iterable[str] = DEFAULT_VARIABLES,
        binary: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.salesforce_conn_id = salesforce_conn_id
        self.source_conn_ids = list(dict.fromkeys(source_conn_ids))
        self.variables = list(variables)
        self.binary = binary
        self._proc: subprocess.Popen[str] | None = None

    def binary_path(self) -> str:
        """The sfmigrate binary: the ``binary`` argument, ``$SFMIGRATE_BIN`` or PATH."""
        for candidate, where in ((self.binary, "the hook's binary argument"), (os.environ.get("SFMIGRATE_BIN"), "SFMIGRATE_BIN")):
            if candidate:
                if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
                    raise SfmigrateConfigError(
                        f"sfmigrate binary {candidate!r} (from {where}) is not an executable file; "
                        "fix: build it with 'go build -o sfmigrate ./cmd/sfmigrate' and point SFMIGRATE_BIN at it"
                    )
                return candidate
        found = shutil.which("sfmigrate")
        if not found:
            raise SfmigrateConfigError(
                "no sfmigrate binary: it is not on PATH and SFMIGRATE_BIN is not set; fix: install sfmigrate on "
                "every worker (go build -o /usr/local/bin/sfmigrate ./cmd/sfmigrate) or set SFMIGRATE_BIN"
            )
        return found

    def _connection_json(self, conn_id: str, role: str) -> str:
        try:
            conn = self.get_connection(conn_id)
        except AirflowNotFoundException:
            raise SfmigrateConfigError(
                f"Airflow connection {conn_id!r} ({role}) is not defined; fix: add it with "
                f"'airflow connections add {conn_id} ...', in the UI, as {conn_env_name(conn_id)} or in your secrets backend"
            ) from None
        _mask(conn.password)
        text = conn.as_json()
        _mask(text)
        return text

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for sfmigrate: ``base`` (default this process's) plus the
        connections and Variables, resolved through Airflow. Contains secrets: never log it."""
        env = dict(os.environ if base is None else base)
        env[conn_env_name(SALESFORCE_CONN_ID)] = self._connection_json(
            self.salesforce_conn_id, "the Salesforce connected app: host = My Domain URL, login = client id, password = client secret"
        )
        for conn_id in self.source_conn_ids:
            env[conn_env_name(conn_id)] = self._connection_json(conn_id, "a source database of the tables config")
        for key in self.variables:
            value = Variable.get(key, default=None)
            if value is not None:
                env[var_env_name(key)] = value if isinstance(value, str) else json.dumps(value)
        return env

    def run(
        self,
        args: Sequence[str],
        *,
        on_stderr_line: Callable[[str], None] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> SfmigrateResult:
        """Run ``sfmigrate ARGS`` to its end. stderr lines (progress, warnings, the error)
        go to ``on_stderr_line`` as they come (default: the hook's log); the last stdout
        line is decoded as the JSON summary when it is one. Never raises on a non-zero
        exit: see :meth:`check`."""
        argv = [self.binary_path(), *args]
        full_env = self.environment() if env is None else dict(env)
        emit = on_stderr_line or (lambda line: self.log.info("%s", line))
        self.log.info("running %s", " ".join(_shell_quote(a) for a in argv))
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,  # on_kill signals sfmigrate alone, which stops cleanly
        )
        self._proc = proc
        err_lines: list[str] = []

        def pump() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                line = line.rstrip("\n")
                err_lines.append(line)
                emit(line)

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        assert proc.stdout is not None
        stdout = proc.stdout.read()
        code = proc.wait()
        t.join()
        self._proc = None
        return SfmigrateResult(argv[1:], code, stdout, "\n".join(err_lines), _last_json(stdout))

    def check(self, result: SfmigrateResult) -> SfmigrateResult:
        """Raise for a failed run: exit 2 as SfmigrateConfigError (no retry), anything else
        non-zero as SfmigrateError."""
        if result.returncode == EXIT_OK:
            return result
        if result.returncode == EXIT_CONFIG:
            raise SfmigrateConfigError(result.message, result.returncode, result.summary)
        raise SfmigrateError(result.message, result.returncode, result.summary)

    def terminate(self) -> None:
        """Ask a running sfmigrate to stop (SIGTERM): uploads in flight finish or are
        aborted, and the manifest is left for the retry to continue."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def _last_json(stdout: str) -> dict[str, Any] | None:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None
    try:
        value = json.loads(lines[-1])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _shell_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)
