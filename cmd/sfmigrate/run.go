package main

import (
	"context"
	"flag"
	"path/filepath"
	"time"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/plan"
)

func init() {
	register(&command{name: "run", summary: "migrate one table, or a plan of several (--tables, --all-tables), end to end; resumes with --run-id", run: runRun})
}

// settingsHelp explains where settings come from; shared by run and task.
const settingsHelp = `Settings and where they come from (first match wins):
  start_batch, batch_size, parallel, record_retries:
      run config (--conf / --conf-file)  >  AIRFLOW_VAR_START_BATCH, AIRFLOW_VAR_BATCH_SIZE,
      AIRFLOW_VAR_PARALLEL, AIRFLOW_VAR_RECORD_RETRIES  >  default (1, 10000, 4, 3)
  sf_object, external_id_field, operation, status_ref:
      run config  >  the table's entry in the tables config  (operation defaults to upsert,
      status_ref to the table name)
  table: --table or "table" in the run config.
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

Resume: rerun with the same --run-id. Finished batches are not extracted or uploaded again;
a batch whose job exists is followed, never given a second job. Ctrl-C / SIGTERM stop
cleanly (uploads in flight finish or are aborted) and leave a manifest the rerun continues.
A resumed run keeps its table, start_batch, batch_size, sf_object, external_id_field,
operation and status_ref (settings left out are taken from the manifest; different ones are
refused with exit 2 once a batch exists); parallel may change between attempts.
`

// runFlags are the flags run and task share.
type runFlags struct {
	table, runID, conf, confFile, tablesConfig, workDir, logsDir string
	json, keepBatches                                            bool
	pollInterval, stopGrace                                      time.Duration
}

func (f *runFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.table, "table", "", "table to migrate: a key of the tables config")
	fs.StringVar(&f.runID, "run-id", "", "run id; an existing one resumes that run (default: TABLE-<UTC time>)")
	fs.StringVar(&f.conf, "conf", "", "run config as a JSON object (Airflow's dag_run.conf)")
	fs.StringVar(&f.confFile, "conf-file", "", "read the run config from this JSON file")
	fs.StringVar(&f.tablesConfig, "tables-config", "tables.yaml", "tables config file")
	fs.StringVar(&f.workDir, "work-dir", ".", "directory for runs/<run-id>/ (manifest and batch files)")
	fs.StringVar(&f.logsDir, "logs-dir", filepath.Join("salesforce", "logs"), "directory for <run-id>/ result files and summary.json")
	fs.BoolVar(&f.json, "json", false, "print the summary as one JSON object on the last line of stdout")
	fs.BoolVar(&f.keepBatches, "keep-batches", false, "keep batch files after their job completed and its results were saved")
	fs.DurationVar(&f.pollInterval, "poll-interval", 0, "first delay between job status polls (default 2s, growing to 30s; against 'sfmigrate emulator', which finishes jobs at once, 50ms)")
	fs.DurationVar(&f.stopGrace, "stop-grace", 20*time.Second, "on Ctrl-C/SIGTERM, how long uploads in flight may take to finish")
}

// options turns the flags into pipeline options; problems are usage errors.
func (f *runFlags) options(env Env) (pipeline.Options, error) {
	if f.conf != "" && f.confFile != "" {
		return pipeline.Options{}, usageErrorf("give the run config once: --conf or --conf-file, not both")
	}
	conf, confSrc := f.conf, "--conf"
	if f.confFile != "" {
		c, err := pipeline.ReadConfFile(f.confFile)
		if err != nil {
			return pipeline.Options{}, err
		}
		conf, confSrc = c, "--conf-file "+f.confFile
	}
	tables, err := pipeline.LoadTablesConfig(f.tablesConfig)
	if err != nil {
		return pipeline.Options{}, err
	}
	return pipeline.Options{
		WorkDir: f.workDir, LogsDir: f.logsDir, RunID: f.runID,
		Inputs:      pipeline.Inputs{Table: f.table, Conf: conf, ConfSource: confSrc, Getenv: env.getenv, Tables: tables},
		KeepBatches: f.keepBatches, PollInterval: f.pollInterval, StopGrace: f.stopGrace,
	}, nil
}

func runRun(ctx context.Context, env Env, args []string) error {
	var f runFlags
	fs := newFlagSet(env, "run", "sfmigrate run --table T [--run-id ID] [--conf JSON | --conf-file F] [flags]", `
Runs every step for one table: authenticate, extract, upload, collect-results, update-status.
Batches are uploaded as soon as they are written, while extraction goes on; extraction
waits when Salesforce falls behind, and results are fetched (and the batch file removed)
as each job finishes, so at most parallel+4 batch files are on disk at once.

Files:
  <work-dir>/runs/<run-id>/manifest.json          state of the run (rewritten atomically)
  <work-dir>/runs/<run-id>/batches/T_NNNNN.csv    batch files
  <logs-dir>/<run-id>/T_NNNNN_{successful,failed,unprocessed}.csv, summary.json

`+settingsHelp+`
Examples:
  sfmigrate run --table PRODUCT_PRICE
  sfmigrate run --table PRODUCT_PRICE --conf '{"batch_size": 5000, "start_batch": 3}'
  AIRFLOW_VAR_BATCH_SIZE=20000 sfmigrate run --table PRODUCT_PRICE --json
  sfmigrate run --run-id PRODUCT_PRICE-20261125T193831Z     # resume an interrupted run
  sfmigrate run --all-tables                                # a plan: every table, parents first
  sfmigrate run --tables ACCOUNTS,CONTACTS --json           # a plan of two tables

Plans (--tables A,B or --all-tables; 'sfmigrate plan' shows one without running it):
  one run id for the plan; <work-dir>/runs/<run-id>/plan.json holds the plan and each
  step's state, runs/<run-id>/runs/<TABLE>[.pass2]/ each step's manifest, and
  <logs-dir>/<run-id>/<TABLE>[.pass2]/ its results. --run-id of a plan run continues every
  step where it stopped. The run config may set batch_size, parallel and record_retries
  for every table. A step starts once the steps it waits for have finished; the steps
  running at once share parallel (a starting step gets the jobs not in use divided by the
  steps ready to start, at least 1). The plan's own tracker record is plan_status_ref
  (default PLAN). Exit code: the worst of the steps' (2 > 1 > 3 > 0).

`+exitCodesHelp)
	f.bind(fs)
	tablesFlag := fs.String("tables", "", "run a plan of these tables of the tables config, comma-separated (see 'sfmigrate plan --help')")
	allTables := fs.Bool("all-tables", false, "run a plan of every table of the tables config")
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("run: unexpected argument %q (see 'sfmigrate run --help')", fs.Arg(0))
	}
	if names := splitTables(*tablesFlag); len(names) > 0 || *allTables || (f.runID != "" && plan.Exists(f.workDir, f.runID)) {
		if f.table != "" {
			return usageErrorf("run: --table runs one table; give --tables or --all-tables for a plan, not both")
		}
		if len(names) > 0 && *allTables {
			return usageErrorf("run: give --tables A,B or --all-tables, not both")
		}
		return runPlanRun(ctx, env, &f, names)
	}
	opts, err := f.options(env)
	if err != nil {
		return err
	}
	_, err = execute(ctx, newOutput(env, f.json), opts, "run", (*pipeline.Runner).Run)
	return err
}

// execute prepares the run opts describe, shows its progress and summary
// through out, and runs do on it: the whole run or one step. resume is the
// command ("run", "task upload") that continues the run after a failure or
// an interruption, told to the user with the run id; "" tells none.
func execute(ctx context.Context, out *output, opts pipeline.Options, resume string,
	do func(*pipeline.Runner, context.Context) (*pipeline.Summary, error)) (*pipeline.Summary, error) {
	opts.Reporter = out
	opts.Logger = out.logger()
	r, err := pipeline.Prepare(opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if resume != "" {
		out.resume = "sfmigrate " + resume + " --run-id " + r.RunID()
	}
	out.start(r)
	sum, err := do(r, ctx)
	out.finish(sum, err)
	return sum, err
}
