package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/sfmigrate/sfmigrate/pipeline"
)

// errCheckFailed is returned when check found problems (exit 2); the
// problems are printed already.
type checkFailed struct{ n int }

func (e *checkFailed) Error() string {
	if e.n == 1 {
		return "check found 1 problem (above); fix it and run check again"
	}
	return fmt.Sprintf("check found %d problems (above); fix them and run check again", e.n)
}

func (e *checkFailed) ConfigError() bool { return true }

// checkOptions is what 'sfmigrate check' was asked to check.
type checkOptions struct {
	table, conf, confFile, tablesConfig string
	tables                              []string // --tables A,B
	allTables, json                     bool
	sample                              int
	pollInterval, pollMaxInterval       time.Duration
}

func parseCheck(env Env, args []string) (*checkOptions, error) {
	o := &checkOptions{}
	fs := newFlagSet(env, "check", "sfmigrate check --table T | --tables A,B | --all-tables [--conf JSON | --conf-file F] [--tables-config F] [--json]", `
Checks everything a run of the table needs, and writes nothing anywhere: no manifest or
batch file, no tracker record, no job (it signs in and reads: describe, limits, the source).
With --tables or --all-tables it checks every table of a plan in turn (the plan's order
and its cycles: 'sfmigrate plan').

  source connection          the database opens (a SQLite file is a database)
  salesforce sign-in         the connected app's credentials are accepted
  API version                the org offers the connection's api_version
  daily API allocation       GET /limits: DailyApiRequests left today
  mapping and tracker        describe: every mapped field exists and is writable, lookups
                             name an external id of the parent, the tracker has its fields
  source query and columns   the query (or table) compiles, without running it; the mapped
                             and order_by columns exist; column types fit the fields' types
  row count                  rows and batches from start_batch (start_batch past the end fails)
  API calls                  estimated calls of the run against what is left today
  sample rows                the first rows converted as a run writes them; values that
                             would be refused are named

Exit code 0 when every check passed, 2 otherwise (each problem is named with its fix).

`+settingsHelp+`
Examples:
  sfmigrate check --table PRODUCTS --tables-config sfmigrate-demo/tables.yaml
  sfmigrate check --table PRODUCT_PRICE --conf '{"batch_size": 5000}' --json
  sfmigrate check --all-tables --tables-config sfmigrate-demo/tables.yaml
`)
	fs.StringVar(&o.table, "table", "", "table to check: a key of the tables config")
	tablesFlag := fs.String("tables", "", "check these tables of a plan, comma-separated")
	fs.BoolVar(&o.allTables, "all-tables", false, "check every table of the tables config")
	fs.StringVar(&o.conf, "conf", "", "run config as a JSON object (Airflow's dag_run.conf)")
	fs.StringVar(&o.confFile, "conf-file", "", "read the run config from this JSON file")
	fs.StringVar(&o.tablesConfig, "tables-config", defaultTablesConfig, "tables config file (docs/tables-config.md)")
	fs.BoolVar(&o.json, "json", false, "print the report as one JSON object on stdout")
	fs.IntVar(&o.sample, "sample", 5, "how many of the first rows to convert")
	fs.DurationVar(&o.pollInterval, "poll-interval", 0, "the run's first poll delay, for the API call estimate (default 2s)")
	fs.DurationVar(&o.pollMaxInterval, "poll-max-interval", 0, "the run's longest poll delay, for the API call estimate (default 30s)")
	if err := parseFlags(env, fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("check: unexpected argument %q (see 'sfmigrate check --help')", fs.Arg(0))
	}
	o.tables = splitTables(*tablesFlag)
	return o, nil
}

func (o *checkOptions) validate() error {
	if o.sample < 0 || o.sample > 1000 {
		return usageErrorf("check: --sample %d: give 0 to 1000 rows", o.sample)
	}
	if err := checkPollFlags(o.pollInterval, o.pollMaxInterval); err != nil {
		return err
	}
	if err := checkConfFlags(o.conf, o.confFile); err != nil {
		return err
	}
	if (len(o.tables) > 0 || o.allTables) && o.table != "" {
		return usageErrorf("check: give --table T for one table, or --tables A,B / --all-tables for a plan, not both")
	}
	return nil
}

func (o *checkOptions) jsonOutput() bool { return o.json }

func runCheck(ctx context.Context, env Env, o *checkOptions) error {
	conf, confSrc, err := readConf(o.conf, o.confFile)
	if err != nil {
		return err
	}
	tables, err := loadTables(o.tablesConfig)
	if err != nil {
		return jsonError(env, o.json, err)
	}
	names := o.tables
	if o.allTables {
		names = tables.TableNames()
	}
	if len(names) == 0 {
		names = []string{o.table} // "" is resolved (or refused) by the settings, as for run
	}
	out := newOutput(env, o.json)
	var reports []*pipeline.CheckReport
	problems := 0
	for _, name := range names {
		rep, err := pipeline.Check(ctx, pipeline.CheckOptions{
			Inputs:       pipeline.Inputs{Table: name, Conf: conf, ConfSource: confSrc, Getenv: env.getenv, Tables: tables},
			Logger:       out.logger(),
			PollInterval: o.pollInterval, PollMaxInterval: o.pollMaxInterval, SampleRows: o.sample,
		})
		if err != nil {
			return jsonError(env, o.json, err)
		}
		reports = append(reports, rep)
		problems += len(rep.Problems())
		if !o.json {
			writeCheckReport(env, rep)
		}
	}
	if o.json {
		var v any = reports[0]
		if len(reports) > 1 || o.allTables || len(o.tables) > 0 {
			v = map[string]any{"tables": reports}
		}
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s\n", data)
	}
	if problems > 0 {
		return &checkFailed{n: problems}
	}
	return nil
}

// writeCheckReport prints one line per check, then the sample.
func writeCheckReport(env Env, rep *pipeline.CheckReport) {
	w := env.Stdout
	fmt.Fprintf(w, "check of table %s -> %s (%s), API %s\n", rep.Table, rep.Object, rep.Operation, rep.APIVersion)
	for _, it := range rep.Checks {
		switch {
		case it.Skipped:
			fmt.Fprintf(w, "  skip  %-36s %s\n", it.Name, it.Detail)
		case it.OK:
			fmt.Fprintf(w, "  ok    %-36s %s\n", it.Name, it.Detail)
		default:
			fmt.Fprintf(w, "  FAIL  %-36s %s\n", it.Name, it.Problem)
		}
	}
	if len(rep.Sample) > 0 {
		fmt.Fprintf(w, "first %d rows as they would be written (key: values):\n", len(rep.Sample))
		for _, row := range rep.Sample {
			vals := make([]string, len(row.Values))
			for i, v := range row.Values {
				vals[i] = shortCell(v)
			}
			fmt.Fprintf(w, "  %s: %s\n", strings.Join(row.Key, ","), strings.Join(vals, " | "))
		}
	}
	if len(rep.Problems()) == 0 {
		fmt.Fprintf(w, "every check passed: a run would load %d rows in %d jobs\n", rep.Rows, rep.Batches)
	}
}

// shortCell cuts a CSV cell to one short line for the sample.
func shortCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 40 {
		return string(r[:39]) + "…"
	}
	return s
}
