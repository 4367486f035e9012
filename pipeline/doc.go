// Package pipeline runs sfmigrate's five steps for one table — authenticate,
// extract, upload, collect-results, update-status — as the original Airflow
// DAG did, with resumable state.
//
// Settings are resolved once (ResolveSettings): run config > AIRFLOW_VAR_* >
// default for start_batch, batch_size and parallel; run config > tables
// config for sf_object, external_id_field, operation and status_ref. Every
// value remembers its source, and every bad value is a *ConfigError naming
// the setting, the source and the fix, raised before any Salesforce call.
// The authenticate step then checks, before it writes the tracker, what
// only the org and the source can tell (API version, describe, the query
// compiled against the mapping, start_batch against the row count);
// Check runs the same checks and more without writing anything.
//
// A run's state lives in <work-dir>/runs/<run-id>/manifest.json, rewritten
// atomically after every change by its only writer (RunStore). A job id is
// recorded the moment the job exists, so a rerun of the same run id follows
// it instead of creating a second job; finished batches are neither
// extracted nor uploaded again.
//
// A source row whose value cannot be sent is rejected alone: it goes to
// <logs-dir>/<run-id>/<TABLE>_<NNNNN>_rejected.csv beside the result files,
// is recorded in its batch (BatchState.Rejected, RejectedFile) and counts
// as failed (*PartialError, tracker "In Progress"); max_rejected_rows bounds
// how many a run accepts. Files holding source rows are 0600, and nothing
// is written through a symbolic link sfmigrate did not create (files.go).
//
// Typical use:
//
//	tables, err := pipeline.LoadTablesConfig("tables.yaml")
//	r, err := pipeline.Prepare(pipeline.Options{
//		RunID:  "PRODUCTS-2026-11-25",               // "" starts a new run
//		Inputs: pipeline.Inputs{Table: "PRODUCTS", Getenv: os.Getenv, Tables: tables},
//	})
//	defer r.Close()
//	summary, err := r.Run(ctx) // or r.Task(ctx, pipeline.StepUpload)
//
// Run overlaps extraction and upload: each batch file is handed to the
// client's parallel loader as soon as it is written, and results are fetched
// as each job finishes. Errors map to exit codes through *ConfigError (2),
// *PartialError (3: the run finished, not every record succeeded) and
// ErrInterrupted (the context ended; the manifest is consistent).
package pipeline
