package main

import (
	"context"
	"flag"
	"path/filepath"
	"time"

	"github.com/sfmigrate/sfmigrate/extract"
	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/plan"
)

// settingsHelp explains where settings come from; shared by run and task.
const settingsHelp = `Settings and where they come from (first match wins):
  start_batch, batch_size, parallel, max_jobs_in_flight, record_retries:
      run config (--conf / --conf-file)  >  AIRFLOW_VAR_START_BATCH, AIRFLOW_VAR_BATCH_SIZE,
      AIRFLOW_VAR_PARALLEL, AIRFLOW_VAR_MAX_JOBS_IN_FLIGHT, AIRFLOW_VAR_RECORD_RETRIES
      >  default (1, 10000, 4, 25, 3)
  parallel is how many batch files are uploaded at once; max_jobs_in_flight how many jobs
  may be in the org at once, uploading or processing. The window of jobs in flight starts
  at max_jobs_in_flight, halves when the org shows strain (Salesforce re-processing parts
  of jobs, 429 / concurrency limits, 90 % of the daily API calls used) and grows back by
  one job per window of jobs that end cleanly; each change is logged and in the summary.
  max_rejected_rows:
      run config  >  AIRFLOW_VAR_MAX_REJECTED_ROWS  >  default (no limit)
  sf_object, external_id_field, operation, status_ref:
      run config  >  the table's entry in the tables config  (operation defaults to upsert,
      status_ref to the table name)
  table: --table or "table" in the run config.
  The tables config (every key, its default and an example): docs/tables-config.md.
  The run config is the JSON object an Airflow dag_run.conf carries, e.g.
      {"table": "PRODUCT_PRICE", "start_batch": 3, "batch_size": 5000}
  Batches are numbered from 1: start_batch N starts at row (N-1)*batch_size of the query
  ordered by the table's order_by key.
  Every value and its source is recorded in <work-dir>/runs/<run-id>/manifest.json.

Connections (Airflow's AIRFLOW_CONN_<ID> variables, URI or JSON form):
  AIRFLOW_CONN_SALESFORCE_API  login = client id, password = client secret, host = My Domain URL
                               e.g. '{"conn_type": "http", "host": "https://acme.my.salesforce.com",
                                      "login": "3MVG9...", "password": "..."}'
  AIRFLOW_CONN_<SOURCE>        the database named by the table's "source", e.g.
                               AIRFLOW_CONN_ERP_DB='postgres://user:pass@db:5432/erp' or
                               AIRFLOW_CONN_ERP_DB='{"conn_type": "sqlite", "host": "/data/erp.db"}'

Status tracker: the authenticate step upserts the tracker record (<status_ref>) with
"In Progress", creating it if needed (set status_tracker.create: false in the tables config
to require an existing record); update-status then writes "Uploaded" when every record
succeeded, else "In Progress", with updateOnly=true as the original DAG did.

Retries: a call that fails for a passing reason (no answer, 429, 502/503, a lock or
concurrency refusal, an expired session) is repeated with growing pauses. Rows that fail
for a passing reason (UNABLE_TO_LOCK_ROW, REQUEST_RUNNING_TOO_LONG, QUERY_TIMEOUT,
SERVER_UNAVAILABLE) and the unprocessed rows of a job that ended Failed or Aborted are sent
again in follow-up jobs of the same run, up to record_retries times per batch (default 3,
0 turns it off), each after a longer pause. Other row failures are final. Each batch's
result files merged over its attempts are <TABLE>_<NNNNN>_final_*.csv (last column: the
attempt that decided the row).

Rejected rows: a row with a value that cannot be sent (text longer than its field, a NUL,
invalid UTF-8, a value its field type cannot take) is not uploaded; it goes to
<logs-dir>/<run-id>/<TABLE>_<NNNNN>_rejected.csv (key, column, field, value excerpt, its
length, reason, fix), counts as failed (exit 3, tracker "In Progress") and the run goes on.
More than max_rejected_rows rejected rows stop the run (exit 1; raise the limit and resume).
"truncate: true" (or a list of columns) in the table's entry cuts text longer than its field
to the field's length instead, counted as truncated in the summary.

Files: batch, rejected and result files and the manifest are created readable by this user
only (0600). A symbolic link found where sfmigrate writes under runs/<run-id>/ or
<logs-dir>/<run-id>/ is refused, never written through; temporary files an interrupted
attempt left there are removed when the run resumes.

Resume: rerun with the same --run-id. Finished batches are not extracted or uploaded again;
a batch whose job exists is followed, never given a second job. Ctrl-C / SIGTERM stop
cleanly (uploads in flight finish or are aborted) and leave a manifest the rerun continues.
A job id is recorded before any data goes to the job; jobs the manifest does not record are
never touched (empty ones left by lost answers expire; the summary counts them).

Retries: each Salesforce call is retried on transient failures (no answer, 429, 5xx, 401
with a new token, UNABLE_TO_LOCK_ROW, the concurrency limit), 6 attempts, backoff 0.5s
doubling to 30s; a 429 pauses all parallel uploads. A lost "create job" answer or a failed
upload gets a new job (up to 6 per batch and round); batches still unfinished for a transient reason
are loaded again, up to 4 rounds 2s/4s/8s apart; authenticate, collect-results and
update-status run up to 3 times. Refusals and configuration errors are final.
A resumed run keeps its table, start_batch, batch_size, sf_object, external_id_field,
operation and status_ref: a later step or attempt that leaves one out, or where only a
lower source speaks (a Variable or the tables config under a recorded run config value),
continues with the manifest's value; one given explicitly with another value is refused
with exit 2, naming both values and their sources, once a batch exists (status_ref once
the tracker record was marked). parallel, max_jobs_in_flight, record_retries and max_rejected_rows may change between
attempts. Run config keys
sfmigrate does not read are ignored with a warning.
`

// beforeRecordJob is pipeline.Options.BeforeRecordJob for every run: nil,
// except in the end-to-end tests' sfmigrate processes (TestMain sets it).
var beforeRecordJob func(batch int, jobID string)

// runFlags are the flags run and task share.
type runFlags struct {
	table, runID, conf, confFile, tablesConfig, workDir, logsDir string
	json, keepBatches                                            bool
	maxBatchBytes                                                int64
	pollInterval, pollMaxInterval, stopGrace                     time.Duration
	// argv is the command's arguments as given, repeated in the command
	// that resumes the run.
	argv []string
}

func (f *runFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.table, "table", "", "table to migrate: a key of the tables config")
	fs.StringVar(&f.runID, "run-id", "", "run id; an existing one resumes that run (default: TABLE-<UTC time>)")
	fs.StringVar(&f.conf, "conf", "", "run config as a JSON object (Airflow's dag_run.conf)")
	fs.StringVar(&f.confFile, "conf-file", "", "read the run config from this JSON file")
	fs.StringVar(&f.tablesConfig, "tables-config", defaultTablesConfig, "tables config file (every key: docs/tables-config.md)")
	fs.StringVar(&f.workDir, "work-dir", ".", "directory for runs/<run-id>/ (manifest and batch files)")
	fs.StringVar(&f.logsDir, "logs-dir", filepath.Join("salesforce", "logs"), "directory for <run-id>/ result files and summary.json")
	fs.BoolVar(&f.json, "json", false, "print the summary as one JSON object on the last line of stdout")
	fs.Int64Var(&f.maxBatchBytes, "max-batch-bytes", extract.DefaultMaxBytes, "largest batch file in bytes: a batch ends early rather than grow past it, so every job stays under Salesforce's 100 MB upload limit whatever batch_size is (at most 100000000)")
	fs.BoolVar(&f.keepBatches, "keep-batches", false, "keep batch files after their job completed and its results were saved")
	fs.DurationVar(&f.pollInterval, "poll-interval", 0, "first delay between job status polls, doubling up to --poll-max-interval (default 2s; against 'sfmigrate emulator', which finishes jobs at once, 50ms)")
	fs.DurationVar(&f.pollMaxInterval, "poll-max-interval", 0, "longest delay between job status polls; each poll is an API call counted against the org's daily allocation (default 30s)")
	fs.DurationVar(&f.stopGrace, "stop-grace", 20*time.Second, "on Ctrl-C/SIGTERM, how long uploads in flight may take to finish")
}

// validate checks the values of the flags run and task share; it reads
// nothing.
func (f *runFlags) validate() error {
	if err := checkPollFlags(f.pollInterval, f.pollMaxInterval); err != nil {
		return err
	}
	if f.maxBatchBytes < 1000 || f.maxBatchBytes > extract.MaxUploadBytes {
		return usageErrorf("--max-batch-bytes %d: give 1000 to %d bytes (Salesforce takes at most 100 MB of CSV per job)", f.maxBatchBytes, extract.MaxUploadBytes)
	}
	if f.stopGrace < 0 {
		return usageErrorf("--stop-grace %s: must not be negative (e.g. 20s)", f.stopGrace)
	}
	return checkConfFlags(f.conf, f.confFile)
}

func (f *runFlags) jsonOutput() bool { return f.json }

// checkConfFlags refuses a run config given twice.
func checkConfFlags(conf, confFile string) error {
	if conf != "" && confFile != "" {
		return usageErrorf("give the run config once: --conf or --conf-file, not both")
	}
	return nil
}

// readConf is the run config of --conf or --conf-file (read here) and
// where it came from.
func readConf(conf, confFile string) (string, string, error) {
	if confFile == "" {
		return conf, "--conf", nil
	}
	c, err := pipeline.ReadConfFile(confFile)
	if err != nil {
		return "", "", err
	}
	return c, "--conf-file " + confFile, nil
}

// options turns the validated flags into pipeline options, reading the run
// config file and the tables config.
func (f *runFlags) options(env Env) (pipeline.Options, error) {
	conf, confSrc, err := readConf(f.conf, f.confFile)
	if err != nil {
		return pipeline.Options{}, err
	}
	tables, err := loadTables(f.tablesConfig)
	if err != nil {
		return pipeline.Options{}, err
	}
	return pipeline.Options{
		WorkDir: f.workDir, LogsDir: f.logsDir, RunID: f.runID,
		Inputs:        pipeline.Inputs{Table: f.table, Conf: conf, ConfSource: confSrc, Getenv: env.getenv, Tables: tables},
		MaxBatchBytes: f.maxBatchBytes, KeepBatches: f.keepBatches, PollInterval: f.pollInterval, PollMaxInterval: f.pollMaxInterval, StopGrace: f.stopGrace,
		BeforeRecordJob: beforeRecordJob,
	}, nil
}

// runSynopsis and runHelp are 'sfmigrate run --help'.
const runSynopsis = "sfmigrate run --table T [--run-id ID] [--conf JSON | --conf-file F] [flags]\n       sfmigrate run --run-id ID --retry-failed [flags]"

const runHelp = `
Runs every step for one table: authenticate, extract, upload, collect-results, update-status.
Batches are uploaded as soon as they are written, while extraction goes on; extraction
waits when Salesforce falls behind, and results are fetched (and the batch file removed)
as each job finishes, so at most parallel+4 batch files are on disk at once.

Files:
  <work-dir>/runs/<run-id>/manifest.json          state of the run (rewritten atomically)
  <work-dir>/runs/<run-id>/batches/T_NNNNN.csv    batch files
  <logs-dir>/<run-id>/T_NNNNN_{successful,failed,unprocessed}.csv, summary.json

` + settingsHelp + `
Retrying the failed rows of a finished run (--retry-failed): fix the rows at the source
(e.g. load the missing parent records, shorten a text), then
    sfmigrate run --run-id ID --retry-failed
reads again, by their order_by key, the rows of run ID whose final outcome is failed or
unprocessed (from the result files) or rejected (from the rejected files), and loads them as
a new attempt of the same run: one follow-up job per batch that has such rows
(<TABLE>_<NNNNN>_attempt<N>), with record-level retries as above; the merged result files,
the tracker and summary.json are updated. Rows no longer at the source under their key keep
their earlier outcome (a warning lists a few). A row rejected again goes to the follow-up's
rejected file. It needs a finished run (resume an unfinished one first), the order_by
columns mapped to text, number or date fields, and a table extracted by key (not by offset);
otherwise it is refused with exit 2. Interrupted, it is resumed by 'sfmigrate run --run-id
ID' (or the same --retry-failed command, which finishes the interrupted round first). It
may be repeated.

Examples:
  sfmigrate run --table PRODUCT_PRICE
  sfmigrate run --table PRODUCT_PRICE --conf '{"batch_size": 5000, "start_batch": 3}'
  AIRFLOW_VAR_BATCH_SIZE=20000 sfmigrate run --table PRODUCT_PRICE --json
  sfmigrate run --run-id PRODUCT_PRICE-20261125T193831Z     # resume an interrupted run
  sfmigrate run --run-id PRODUCT_PRICE-20261125T193831Z --retry-failed   # after fixing the source
  sfmigrate run --all-tables                                # a plan: every table, parents first
  sfmigrate run --tables ACCOUNTS,CONTACTS --json           # a plan of two tables

Plans (--tables A,B or --all-tables; 'sfmigrate plan' shows one without running it):
  one run id for the plan; <work-dir>/runs/<run-id>/plan.json holds the plan and each
  step's state, runs/<run-id>/runs/<TABLE>[.pass2]/ each step's manifest, and
  <logs-dir>/<run-id>/<TABLE>[.pass2]/ its results. --run-id of a plan run continues every
  step where it stopped. The run config may set batch_size, parallel, max_jobs_in_flight
  and record_retries for every table. A step starts once the steps it waits for have
  finished; the steps running at once share max_jobs_in_flight (a starting step gets the
  jobs not in use divided by the steps ready to start, at least 1, and uploads at most
  parallel files at once). The plan's own tracker record is plan_status_ref
  (default PLAN). Exit code: the worst of the steps' (2 > 1 > 3 > 0).

` + exitCodesHelp

// runOptions is what 'sfmigrate run' was asked to do.
type runOptions struct {
	runFlags
	retryFailed bool
	tables      []string // --tables A,B
	allTables   bool
}

func parseRun(env Env, args []string) (*runOptions, error) {
	o := &runOptions{}
	o.argv = args
	fs := newFlagSet(env, "run", runSynopsis, runHelp)
	o.bind(fs)
	fs.BoolVar(&o.retryFailed, "retry-failed", false, "load again, re-read from the source by key, the failed, unprocessed and rejected rows of the finished run --run-id")
	tablesFlag := fs.String("tables", "", "run a plan of these tables of the tables config, comma-separated (see 'sfmigrate plan --help')")
	fs.BoolVar(&o.allTables, "all-tables", false, "run a plan of every table of the tables config")
	if err := parseFlags(env, fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("run: unexpected argument %q (see 'sfmigrate run --help')", fs.Arg(0))
	}
	o.tables = splitTables(*tablesFlag)
	return o, nil
}

func (o *runOptions) validate() error {
	if len(o.tables) > 0 || o.allTables {
		if err := o.planConflict(); err != nil {
			return err
		}
	}
	return o.runFlags.validate()
}

// planConflict refuses, for a plan run, the flags of a one-table run.
func (o *runOptions) planConflict() error {
	if o.table != "" {
		return usageErrorf("run: --table runs one table; give --tables or --all-tables for a plan, not both")
	}
	if len(o.tables) > 0 && o.allTables {
		return usageErrorf("run: give --tables A,B or --all-tables, not both")
	}
	if o.retryFailed {
		return usageErrorf("run: --retry-failed works on a one-table run; for a plan, rerun a step's own run id (runs/<run-id>/runs/<TABLE>)")
	}
	return nil
}

func runRun(ctx context.Context, env Env, o *runOptions) error {
	if len(o.tables) > 0 || o.allTables || (o.runID != "" && plan.Exists(o.workDir, o.runID)) {
		// A run id of a plan run continues the plan: the same refusals
		// as for --tables.
		if err := o.planConflict(); err != nil {
			return err
		}
		return runPlanRun(ctx, env, &o.runFlags, o.tables)
	}
	do := (*pipeline.Runner).Run
	if o.retryFailed {
		if err := pipeline.CheckRetryFailed(o.workDir, o.runID); err != nil {
			return jsonError(env, o.json, err)
		}
		do = (*pipeline.Runner).RetryFailed
	}
	opts, err := o.options(env)
	if err != nil {
		return jsonError(env, o.json, err)
	}
	sum, err := execute(ctx, newOutput(env, o.json), opts, append([]string{"run"}, o.argv...), do)
	if sum == nil {
		return jsonError(env, o.json, err)
	}
	return err
}

// execute prepares the run opts describe, shows its progress and summary
// through out, and runs do on it: the whole run or one step. resume is the
// command line (without the program) that started it, repeated with the
// run's id to continue the run after a failure or an interruption; nil
// tells none.
func execute(ctx context.Context, out *output, opts pipeline.Options, resume []string,
	do func(*pipeline.Runner, context.Context) (*pipeline.Summary, error)) (*pipeline.Summary, error) {
	opts.Reporter = out
	opts.Logger = out.logger()
	r, err := pipeline.Prepare(opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if resume != nil {
		out.resume = resumeCommand(out.env.Program, resume, r.RunID())
	}
	out.start(r)
	sum, err := do(r, ctx)
	out.finish(sum, err)
	if _, code := pipeline.Outcome(err); code == pipeline.ExitConfig && r.DiscardIfUnused() {
		// Stopped by the configuration before anything was done: no empty
		// run is left behind.
		out.logf("run %s did nothing and was removed: fix the configuration and start again", r.RunID())
	}
	return sum, err
}

// checkPollFlags refuses poll delays that cannot be meant, naming the flag
// (not the connection, which would be blamed by the client otherwise).
func checkPollFlags(first, max time.Duration) error {
	if first < 0 {
		return usageErrorf("--poll-interval %s: must not be negative (e.g. 2s, or 50ms against the emulator)", first)
	}
	if max < 0 {
		return usageErrorf("--poll-max-interval %s: must not be negative (e.g. 30s)", max)
	}
	if first > 0 && max > 0 && max < first {
		return usageErrorf("--poll-max-interval %s is shorter than --poll-interval %s: the backoff grows from the first to the longest delay", max, first)
	}
	return nil
}
