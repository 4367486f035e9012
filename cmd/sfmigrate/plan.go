package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/plan"
)

const planHelp = `A plan loads several tables of one tables config in one run: every table that
looks up another (a field mapped as Relationship.External_Id__c) waits for the tables
loading the object the lookup points to (the org's describe says which, polymorphic
lookups included); depends_on: [TABLE] in a table's entry adds an order the mappings
cannot show. A table starts as soon as the tables it waits for have finished; those
that can run together at the earliest form a wave. Tables running at once share the
plan's parallel setting.

A table whose rows point at rows of the same table (a parent account), and tables that
point at each other (A -> B -> A), load in two passes: pass 1 without the lookups that
close the cycle, pass 2 (an upsert by external id with only those columns) once every
table they point to has landed. A cycle whose lookups are all required fields cannot
be loaded this way and is refused (exit 2) before anything is sent, naming the fields.

A table does not start while a table it waits for ended with failed rows, unless its
entry says on_parent_failure: continue; other branches go on.
`

// planSynopsis and planCmdHelp are 'sfmigrate plan --help'.
const planSynopsis = "sfmigrate plan [--tables A,B] [--json] [--offline] [--step-configs DIR] [--tables-config F]"

const planCmdHelp = `
Prints the plan of a tables config: the order, the waves of tables that may run at
the same time, the passes, and why each table waits. Nothing is written (except with
--step-configs) and no data is sent. With AIRFLOW_CONN_SALESFORCE_API set, the target
objects' describes are read (read-only calls) to learn what each lookup points to and
which fields are required; without it, or with --offline, the plan is made from the
tables config alone (a lookup is placed by its relationship name, required fields are
unknown, and the notes say which lookups could not be placed or were guessed).
'sfmigrate run --tables ...' always plans from the describes.

` + planHelp + `
Examples:
  sfmigrate plan --tables-config tables.yaml
  sfmigrate plan --json --step-configs steps/ > plan.json        # at deploy time, for an Airflow DAG
                                  # (examples/airflow_plan_dag.py): each step then runs as
                                  # sfmigrate task STEP --table T --tables-config steps/<step>.yaml
  sfmigrate run --all-tables                                     # run the plan

` + exitCodesHelp

// planOptions is what 'sfmigrate plan' was asked to show.
type planOptions struct {
	tables       []string // --tables A,B; none: every table
	tablesConfig string
	json         bool
	offline      bool
	stepConfigs  string
}

func parsePlan(env Env, args []string) (*planOptions, error) {
	o := &planOptions{}
	fs := newFlagSet(env, "plan", planSynopsis, planCmdHelp)
	tablesFlag := fs.String("tables", "", "tables of the plan, comma-separated (default: every table of the tables config)")
	fs.StringVar(&o.tablesConfig, "tables-config", "tables.yaml", "tables config file")
	fs.BoolVar(&o.json, "json", false, "print the plan as one JSON object")
	fs.BoolVar(&o.offline, "offline", false, "do not read the org's describes; plan from the tables config alone")
	fs.StringVar(&o.stepConfigs, "step-configs", "", "also write DIR/<STEP>.yaml: a tables config per step holding its table as the step loads it, for orchestrators that run each step with 'sfmigrate task'")
	// Accepted so that a plan takes the same flags as the run it shows;
	// plan writes nothing and polls nothing.
	fs.String("work-dir", ".", "accepted for symmetry with run; plan writes nothing")
	fs.String("logs-dir", "", "accepted for symmetry with run; plan writes nothing")
	fs.Duration("poll-interval", 0, "accepted for symmetry with run; unused")
	if err := parseFlags(env, fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("plan: unexpected argument %q (see 'sfmigrate plan --help')", fs.Arg(0))
	}
	o.tables = splitTables(*tablesFlag)
	return o, nil
}

// validate has nothing to check: which tables exist and how they depend on
// each other is the tables config's to say, read by runPlan.
func (o *planOptions) validate() error { return nil }

func runPlan(ctx context.Context, env Env, o *planOptions) error {
	cfg, err := pipeline.LoadTablesConfig(o.tablesConfig)
	if err != nil {
		return err
	}
	names := o.tables
	var objects map[string]*plan.Object
	if !o.offline && env.getenv("AIRFLOW_CONN_SALESFORCE_API") != "" {
		org, err := pipeline.OpenOrg(pipeline.Options{Inputs: pipeline.Inputs{Getenv: env.getenv, Tables: cfg}})
		if err != nil {
			return err
		}
		offlineHint := func(err error) error {
			if _, code := pipeline.Outcome(err); code == pipeline.ExitConfig || ctx.Err() != nil {
				return err
			}
			return fmt.Errorf("%w (to plan from the tables config alone, without the org, pass --offline)", err)
		}
		if err := org.Authenticate(ctx); err != nil {
			return offlineHint(err)
		}
		if objects, err = plan.Describe(ctx, org, cfg, names); err != nil {
			return offlineHint(err)
		}
	}
	p, err := plan.Build(cfg, names, objects)
	if err != nil {
		return err
	}
	if o.stepConfigs != "" {
		if err := writeStepConfigs(o.stepConfigs, cfg, p); err != nil {
			return err
		}
	}
	if o.json {
		data, err := json.Marshal(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s\n", data)
		return nil
	}
	writePlan(env.Stdout, cfg, p)
	return nil
}

// writeStepConfigs writes one tables config per step into dir.
func writeStepConfigs(dir string, cfg *pipeline.TablesConfig, p *plan.Plan) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return &pipeline.ConfigError{Setting: "--step-configs", Value: dir, Source: "flag --step-configs",
			Problem: "cannot be created: " + err.Error(), Fix: "pass a directory this user can write"}
	}
	for _, st := range p.Steps {
		data, err := p.StepConfig(cfg, &st)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, st.ID+".yaml"), data, 0o644); err != nil {
			return fmt.Errorf("write the tables config of step %s: %w", st.ID, err)
		}
	}
	return nil
}

// splitTables reads --tables A,B.
func splitTables(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// writePlan prints a plan for people.
func writePlan(w io.Writer, cfg *pipeline.TablesConfig, p *plan.Plan) {
	from := "from the org's describes"
	if !p.Described {
		from = "from the tables config alone (no describe: --offline or no AIRFLOW_CONN_SALESFORCE_API)"
	}
	fmt.Fprintf(w, "Plan of %s: %d tables, %d steps in %d waves, %s\n", cfg.Path, len(p.Tables), len(p.Steps), len(p.Waves), from)
	for i, wave := range p.Waves {
		fmt.Fprintf(w, "\nwave %d (at the same time):\n", i+1)
		for _, id := range wave {
			s := p.Step(id)
			fmt.Fprintf(w, "  %s -> %s, pass %d: %s\n", s.ID, s.Object, s.Pass, strings.Join(s.Columns, ", "))
			for _, r := range s.Reasons {
				fmt.Fprintf(w, "      %s\n", r)
			}
			if len(s.Waits) > 0 && s.OnParentFailure == pipeline.OnParentFailureContinue {
				fmt.Fprintf(w, "      runs even when a table it waits for has failed rows (on_parent_failure: continue)\n")
			}
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
	sel := "--tables " + strings.Join(p.Tables, ",")
	if len(p.Tables) == len(cfg.Tables) {
		sel = "--all-tables"
	}
	fmt.Fprintf(w, "\nRun it with: sfmigrate run %s --tables-config %s\n", sel, cfg.Path)
}

// runPlanRun runs (or continues) a plan for 'sfmigrate run --tables/--all-tables'
// or 'sfmigrate run --run-id PLAN-RUN'.
func runPlanRun(ctx context.Context, env Env, f *runFlags, names []string) error {
	conf, confSrc, err := readConf(f.conf, f.confFile)
	if err != nil {
		return err
	}
	cfg, err := pipeline.LoadTablesConfig(f.tablesConfig)
	if err != nil {
		return err
	}
	out := newOutput(env, f.json)
	var wmu sync.Mutex
	logf := func(format string, a ...any) {
		wmu.Lock()
		defer wmu.Unlock()
		fmt.Fprintf(env.Stderr, "%s sfmigrate: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
	sum, err := plan.Execute(ctx, plan.Options{
		WorkDir: f.workDir, LogsDir: f.logsDir, RunID: f.runID, Tables: names, Config: cfg,
		Conf: conf, ConfSource: confSrc, Getenv: env.getenv,
		Reporter:     func(step string) pipeline.Reporter { return &stepReporter{step: step, logf: logf} },
		Log:          logf,
		Logger:       out.logger(),
		PollInterval: f.pollInterval, PollMaxInterval: f.pollMaxInterval, MaxBatchBytes: f.maxBatchBytes,
		StopGrace: f.stopGrace, KeepBatches: f.keepBatches,
	})
	if sum == nil {
		return err
	}
	table := env.Stdout
	if f.json {
		table = env.Stderr
	}
	writePlanSummary(table, sum)
	if sum.Outcome == "interrupted" || sum.Outcome == "failed" {
		fmt.Fprintf(env.Stderr, "sfmigrate: plan run %s %s; plan.json and each table's manifest are up to date. Continue it with: sfmigrate run --run-id %s (and the same flags)\n",
			sum.RunID, map[bool]string{true: "stopped", false: "did not finish"}[sum.Outcome == "interrupted"], sum.RunID)
	}
	if f.json {
		if data, jerr := json.Marshal(sum); jerr == nil {
			fmt.Fprintf(env.Stdout, "%s\n", data)
		}
	}
	return err
}

// stepReporter turns a step's progress events into log lines prefixed with
// the step: a plan runs several tables at once, so no progress bars.
type stepReporter struct {
	step string
	logf func(format string, a ...any)
}

func (r *stepReporter) Report(e pipeline.Event) {
	switch e.Kind {
	case pipeline.EventStepDone:
		if e.Err != nil {
			r.logf("%s: step %s ended: %v", r.step, e.Step, e.Err)
		} else {
			r.logf("%s: step %s done", r.step, e.Step)
		}
	case pipeline.EventJobDone:
		if e.Failed > 0 || e.State == "Failed" || e.State == "Aborted" {
			r.logf("%s: batch %d job %s %s: %d processed, %d failed %s", r.step, e.Batch, e.JobID, e.State, e.Processed, e.Failed, e.Message)
		}
	case pipeline.EventWarning:
		r.logf("%s: warning: %s", r.step, e.Message)
	case pipeline.EventInfo:
		r.logf("%s: %s", r.step, e.Message)
	}
}

func writePlanSummary(w io.Writer, s *plan.Summary) {
	fmt.Fprintf(w, "\nPlan run %s: %s\n", s.RunID, s.Outcome)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  step\tobject\twave\tstate\trows\tsucceeded\tfailed\tunprocessed\t")
	for _, st := range s.Steps {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t\n", st.ID, st.Object, st.Wave, st.State, st.Rows, st.Successful, st.Failed, st.Unprocessed)
	}
	tw.Flush() //nolint:errcheck // output to the user's terminal or pipe
	for _, st := range s.Steps {
		if st.Reason != "" {
			fmt.Fprintf(w, "  %s %s: %s\n", st.ID, st.State, st.Reason)
		}
		if st.Error != "" {
			fmt.Fprintf(w, "  %s %s: %s\n", st.ID, st.State, st.Error)
		}
	}
	fmt.Fprintf(w, "  plan     %s\n  tracker  %s\n  each step's manifest is <work-dir>/runs/%s/runs/<step>/manifest.json, its results <logs-dir>/%s/<step>/\n",
		s.PlanFile, s.Tracker, s.RunID, s.RunID)
}
