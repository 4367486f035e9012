package main

import (
	"context"
	"strings"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/plan"
)

// taskOptions is the step 'sfmigrate task' runs and its flags.
type taskOptions struct {
	runFlags
	step  string
	batch int // --batch: a mapped upload of this one batch (0: the whole run)
}

func parseTask(env Env, args []string) (*taskOptions, error) {
	f := &taskOptions{}
	f.argv = args
	fs := newFlagSet(env, "task", "sfmigrate task STEP --run-id ID [--table T] [flags]", `
Runs one step against a run's manifest, so an orchestrator can put the steps on
different workers (they must share --work-dir and --logs-dir). Steps, in order:

  authenticate     sign in; check the mapping and the tracker against describe (recording
                   each field's type); create/mark the tracker record "In Progress"
  extract          write the batch files in the form each field's type needs (continues
                   after the last one written)
  upload           one ingest job per batch file, in parallel; follows jobs already created.
                   With --batch N, only batch N (and its follow-ups): processes for different
                   batches run at once, on different workers (Airflow: .expand() over the
                   extract step's upload_batches); the last one to finish marks upload done
  collect-results  save successful/failed/unprocessed records of every job
  update-status    tracker "Uploaded" if every record succeeded, else "In Progress" (exit 3)

Each step needs the one before it to have finished (exit 2 otherwise). --table is needed
by the first step of a run; later steps read it from the manifest. Every step is safe to
rerun: finished work is not repeated, and no batch ever gets a second job.

`+settingsHelp+`
Examples:
  sfmigrate task authenticate    --run-id {{ run_id }} --table PRODUCT_PRICE
  sfmigrate task extract         --run-id {{ run_id }} --table PRODUCT_PRICE --conf '{{ dag_run.conf | tojson }}'
  sfmigrate task upload          --run-id {{ run_id }}
  sfmigrate task upload          --run-id {{ run_id }} --batch 7    (one mapped upload)
  sfmigrate task collect-results --run-id {{ run_id }}
  sfmigrate task update-status   --run-id {{ run_id }} --json

`+exitCodesHelp)
	f.bind(fs)
	fs.IntVar(&f.batch, "batch", 0, "upload step only: upload this one extracted batch (a number of the extract step's upload_batches), beside processes uploading the others")
	if len(args) == 0 {
		return nil, usageErrorf("task: missing STEP; one of %s (see 'sfmigrate task --help')", strings.Join(pipeline.Steps, ", "))
	}
	f.step = args[0]
	if strings.HasPrefix(f.step, "-") {
		// Flags first (or --help): the step must come first.
		if err := parseFlags(env, fs, args); err != nil {
			return nil, err
		}
		return nil, usageErrorf("task: the STEP comes first: sfmigrate task STEP --run-id ID ...")
	}
	if err := parseFlags(env, fs, args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("task: unexpected argument %q (see 'sfmigrate task --help')", fs.Arg(0))
	}
	return f, nil
}

func (f *taskOptions) validate() error {
	step := f.step
	known := false
	for _, s := range pipeline.Steps {
		known = known || s == step
	}
	if !known {
		return usageErrorf("task: unknown step %q; use one of %s", step, strings.Join(pipeline.Steps, ", "))
	}
	if f.batch != 0 && step != pipeline.StepUpload {
		return usageErrorf("task %s: --batch %d is for the upload step only (sfmigrate task upload --batch N)", step, f.batch)
	}
	if f.batch < 0 || pipeline.IsFollowUpIndex(f.batch) {
		return usageErrorf("task upload: --batch %d: give the number of an extracted batch, from the extract step's upload_batches (1, 2, ...)", f.batch)
	}
	if f.runID == "" {
		return usageErrorf("task: --run-id is required: every step of one run must use the same id (in Airflow: --run-id {{ run_id }})")
	}
	return f.runFlags.validate()
}

func runTask(ctx context.Context, env Env, f *taskOptions) error {
	step := f.step
	if plan.Exists(f.workDir, f.runID) {
		return usageErrorf("task: run %s is a plan run (several tables): continue it with 'sfmigrate run --run-id %s'; to run a plan's steps as tasks, write each step's tables config with 'sfmigrate plan --step-configs DIR' and give each step a run id of its own",
			f.runID, f.runID)
	}
	if step != pipeline.StepAuthenticate && step != pipeline.StepExtract && !pipeline.ManifestExists(f.workDir, f.runID) {
		return usageErrorf("task %s: run %s has no manifest under --work-dir %s: start the run with 'sfmigrate task authenticate --run-id %s --table T' (or check --work-dir: every step of a run must use the same one)",
			step, f.runID, f.workDir, f.runID)
	}
	opts, err := f.options(env)
	if err != nil {
		return jsonError(env, f.json, err)
	}
	opts.Batch = f.batch
	sum, err := execute(ctx, newOutput(env, f.json), opts, append([]string{"task"}, f.argv...),
		func(r *pipeline.Runner, ctx context.Context) (*pipeline.Summary, error) { return r.Task(ctx, step) })
	if sum == nil {
		return jsonError(env, f.json, err)
	}
	return err
}
