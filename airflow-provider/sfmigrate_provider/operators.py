"""SfmigrateOperator: one sfmigrate step as an Airflow task."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from sfmigrate_provider.hooks import (
    DEFAULT_VARIABLES,
    EXIT_CONFIG,
    EXIT_OK,
    EXIT_PARTIAL,
    SALESFORCE_CONN_ID,
    SfmigrateConfigError,
    SfmigrateError,
    SfmigrateHook,
)

#: The steps of a run, in order (``sfmigrate task STEP``), and ``run`` for all of them in one task.
STEPS = ("authenticate", "extract", "upload", "collect-results", "update-status")
RUN = "run"


def zero_rows(summary: dict[str, Any] | None) -> bool:
    """Whether a summary says the run has nothing to migrate: its extract step is done
    and wrote no rows."""
    if not summary:
        return False
    return (summary.get("steps") or {}).get("extract") == "done" and summary.get("rows") == 0


class SfmigrateOperator(BaseOperator):
    """Runs one sfmigrate step (``sfmigrate task STEP``; ``step="run"`` runs them all).

    Every step gets the DAG run's ``dag_run.conf`` as its run config (``--conf``), so a
    setting given when triggering applies to every step, and ``--run-id {{ run_id }}``,
    so the steps of one DAG run share one sfmigrate run (and its manifest) even on
    different workers; they must share ``work_dir`` and ``logs_dir``.

    Outcome, by the binary's exit code:

    * 0: the step's summary (a dict) is the task's return value (XCom). When the run's
      query returned no rows, the summary is still pushed and the task is skipped
      (extract and every later step).
    * 3 (some records failed or were unprocessed): the summary is pushed as the return
      value (``failed_files`` lists the failed-records files), then the task fails
      without retrying: retrying cannot make Salesforce accept those records. With
      ``partial_as_skip=True`` the task is skipped instead (a plan's tasks after it skip
      too, unless their trigger rule says otherwise).
    * 2 (configuration or usage): the task fails without retrying, with sfmigrate's
      message naming the bad value, where it came from and the fix.
    * anything else: the task fails and Airflow may retry it; every step is safe to
      rerun (no batch ever gets a second job).

    :param step: one of authenticate, extract, upload, collect-results, update-status, run.
    :param table: the table of the tables config (needed by the first step; passed to
        every step, which checks it against the run's manifest). A ``"table"`` in
        ``dag_run.conf`` replaces it.
    :param conf: run config (dict or JSON text); default the DAG run's ``dag_run.conf``.
    :param run_id: sfmigrate run id (default the DAG run's ``run_id``).
    :param tables_config: tables config file (default ``$SFMIGRATE_TABLES_CONFIG``, else
        sfmigrate's default ``tables.yaml``).
    :param work_dir, logs_dir: shared directories (default ``$SFMIGRATE_WORK_DIR``,
        ``$SFMIGRATE_LOGS_DIR``, else sfmigrate's defaults).
    :param salesforce_conn_id: Airflow connection of the Salesforce app.
    :param source_conn_id: Airflow connection of the table's source database (default:
        the ``source`` of the table in the tables config; every source there when the
        table is not known).
    :param variables: Airflow Variables handed to sfmigrate when set.
    :param binary: sfmigrate binary (default ``$SFMIGRATE_BIN``, else PATH).
    :param poll_interval: first delay between job status polls, e.g. ``"50ms"`` against
        the emulator (default ``$SFMIGRATE_POLL_INTERVAL``, else sfmigrate's 2s).
    :param extra_args: further flags for ``sfmigrate task``.
    :param batch: upload step only: upload this one extracted batch (``--batch N``).
        Map the upload over the batches the extract task wrote to spread a run's jobs
        over workers (``upload_batches`` turns the extract summary into that list)::

            SfmigrateOperator.partial(task_id="upload", step="upload").expand(
                batch=upload_batches(extract.output))

        Each mapped task owns its batch and that batch's retries; the last one to finish
        lets collect-results run.
    :param partial_as_skip: on exit 3, skip the task instead of failing it.
    :param skip_on_zero_rows: skip the task when the run has no rows (default). A plan's
        tasks set it False, so that a table with no rows lets the tables after it start.
    """

    template_fields: Sequence[str] = ("table", "run_id", "tables_config", "work_dir", "logs_dir", "conf")
    ui_color = "#d9ecff"

    def __init__(
        self,
        *,
        step: str,
        table: str | None = None,
        conf: dict[str, Any] | str | None = None,
        run_id: str = "{{ run_id }}",
        tables_config: str | None = None,
        work_dir: str | None = None,
        logs_dir: str | None = None,
        salesforce_conn_id: str = SALESFORCE_CONN_ID,
        source_conn_id: str | None = None,
        variables: Sequence[str] = DEFAULT_VARIABLES,
        binary: str | None = None,
        poll_interval: str | None = None,
        extra_args: Sequence[str] = (),
        batch: int | None = None,
        partial_as_skip: bool = False,
        skip_on_zero_rows: bool = True,
        **kwargs: Any,
    ) -> None:
        if step not in STEPS and step != RUN:
            raise ValueError(f"SfmigrateOperator: unknown step {step!r}; use one of {', '.join(STEPS)} or {RUN!r}")
        if batch is not None and (step != "upload" or isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
            raise ValueError(f"SfmigrateOperator: batch={batch!r}: give a batch number (1, 2, ...) to the upload step only")
        if step not in ("authenticate", RUN) and skip_on_zero_rows:
            # After a step that found no rows (skipped), the later steps still run: they
            # have nothing to do but mark the tracker, and skip themselves. sfmigrate
            # refuses (exit 2) a step whose predecessor did not finish.
            kwargs.setdefault("trigger_rule", "none_failed")
        super().__init__(**kwargs)
        self.step = step
        self.table = table
        self.conf = conf
        self.run_id = run_id
        self.tables_config = tables_config
        self.work_dir = work_dir
        self.logs_dir = logs_dir
        self.salesforce_conn_id = salesforce_conn_id
        self.source_conn_id = source_conn_id
        self.variables = list(variables)
        self.binary = binary
        self.poll_interval = poll_interval
        self.extra_args = list(extra_args)
        self.batch = batch
        self.partial_as_skip = partial_as_skip
        self.skip_on_zero_rows = skip_on_zero_rows
        self._hook: SfmigrateHook | None = None

    # -- building the command ----------------------------------------------------------

    def _run_config(self, context: Any) -> dict[str, Any]:
        conf = self.conf
        if conf is None:
            dag_run = context.get("dag_run")
            conf = (getattr(dag_run, "conf", None) or {}) if dag_run is not None else {}
        if isinstance(conf, str):
            text = conf.strip()
            if not text:
                return {}
            try:
                conf = json.loads(text)
            except ValueError as e:
                raise SfmigrateConfigError(f"run config {text[:60]!r} is not JSON: {e}; fix: pass a JSON object") from None
        if not isinstance(conf, dict):
            raise SfmigrateConfigError(f"run config must be a JSON object, got {type(conf).__name__}")
        return dict(conf)

    def _tables_config_path(self) -> str:
        return self.tables_config or os.environ.get("SFMIGRATE_TABLES_CONFIG") or "tables.yaml"

    def _source_conn_ids(self, table: str | None) -> list[str]:
        if self.source_conn_id:
            return [self.source_conn_id]
        path = self._tables_config_path()
        try:
            import yaml

            with open(path, encoding="utf-8") as f:
                cfg = yaml.safe_load(f) or {}
        except (OSError, ValueError) as e:
            # sfmigrate reports an unreadable or malformed tables config itself, better.
            self.log.warning("cannot read tables config %s to find the source connection: %s", path, e)
            return []
        tables = cfg.get("tables") if isinstance(cfg, dict) else None
        if not isinstance(tables, dict):
            return []
        entries = [tables[table]] if table in tables else list(tables.values())
        return [e["source"] for e in entries if isinstance(e, dict) and isinstance(e.get("source"), str)]

    def command(self, conf: dict[str, Any], table: str | None) -> list[str]:
        """The sfmigrate arguments (no secrets: those go in the environment)."""
        args = [RUN] if self.step == RUN else ["task", self.step]
        if self.run_id:
            args += ["--run-id", str(self.run_id)]
        if table and not conf.get("table"):
            args += ["--table", table]
        args += ["--tables-config", self._tables_config_path()]
        work_dir = self.work_dir or os.environ.get("SFMIGRATE_WORK_DIR")
        logs_dir = self.logs_dir or os.environ.get("SFMIGRATE_LOGS_DIR")
        if work_dir:
            args += ["--work-dir", work_dir]
        if logs_dir:
            args += ["--logs-dir", logs_dir]
        if conf:
            args += ["--conf", json.dumps(conf)]
        if self.batch is not None:
            args += ["--batch", str(self.batch)]
        poll = self.poll_interval or os.environ.get("SFMIGRATE_POLL_INTERVAL")
        if poll:
            args += ["--poll-interval", poll]
        return [*args, "--json", *self.extra_args]

    # -- running -----------------------------------------------------------------------

    def execute(self, context: Any) -> dict[str, Any]:
        conf = self._run_config(context)
        # A table in the run config replaces the operator's (sfmigrate gets it once).
        table = conf.get("table") or self.table
        hook = SfmigrateHook(
            salesforce_conn_id=self.salesforce_conn_id,
            source_conn_ids=self._source_conn_ids(table),
            variables=self.variables,
            binary=self.binary,
        )
        self._hook = hook
        result = hook.run(self.command(conf, table), on_stderr_line=lambda line: self.log.info("%s", line))
        summary = result.summary
        code = result.returncode
        if code == EXIT_OK:
            if summary is None:
                raise SfmigrateError(f"sfmigrate {self.step} succeeded but printed no JSON summary on its last stdout line")
            if self.step != "authenticate" and self.skip_on_zero_rows and zero_rows(summary):
                self._push(context, summary)
                raise AirflowSkipException(
                    f"nothing to migrate: the query of table {summary.get('table')} returned no rows "
                    f"(run {summary.get('run_id')}); the summary is in XCom"
                )
            return summary
        if summary is not None:
            # Pushed before failing, so the failed files are in XCom exactly when needed.
            self._push(context, summary)
        if code == EXIT_PARTIAL and self.partial_as_skip:
            raise AirflowSkipException(f"{result.message}; skipped (partial_as_skip): the summary is in XCom")
        if code == EXIT_PARTIAL:
            files = (summary or {}).get("failed_files") or []
            unprocessed = (summary or {}).get("unprocessed_files") or []
            raise AirflowFailException(
                f"{result.message}. Failed-records files: {', '.join(files) or 'none'}"
                + (f"; unprocessed: {', '.join(unprocessed)}" if unprocessed else "")
                + ". Not retried: fix the records (or the mapping) and rerun the run."
            )
        if code == EXIT_CONFIG:
            raise SfmigrateConfigError(result.message, code, summary)
        raise SfmigrateError(result.message, code, summary)

    def _push(self, context: Any, value: Any, key: str = "return_value") -> None:
        ti = context.get("ti") or context.get("task_instance")
        if ti is not None:
            ti.xcom_push(key=key, value=value)

    def on_kill(self) -> None:
        if self._hook is not None:
            self._hook.terminate()


@task
def upload_batches(summary: dict[str, Any] | None) -> list[int]:
    """The batches with rows an extract task's summary lists (``upload_batches``): what
    a mapped upload expands over. Airflow maps only over a task's return value, and the
    extract task's is its whole summary."""
    batches = (summary or {}).get("upload_batches") or []
    if not all(isinstance(b, int) and not isinstance(b, bool) for b in batches):
        raise SfmigrateError(f"extract summary's upload_batches is not a list of batch numbers: {batches!r:.80}")
    return list(batches)
