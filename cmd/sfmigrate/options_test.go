package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/extract"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// The first two stages of every command (parse, validate) tested alone:
// each good command line gives the options expected, each bad one its
// usage error (exit 2). No emulator, org or database is involved, and the
// tests run in an empty directory that must stay empty: the two stages
// read and write no file (the default tables.yaml does not exist there).

// stageCase is one command line of a command. A case with err set must
// fail with a usage error containing it; the others must give want.
type stageCase[O any] struct {
	name string
	args []string
	want O
	err  string
}

func testStages[O cmdOptions](t *testing.T, parse func(Env, []string) (O, error), cases []stageCase[O]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			env := Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
			got, err := parseAndValidate(env, parse, tc.args)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("%q: no error, want one containing %q (options %+v)", tc.args, tc.err, got)
				}
				if code := codeOf(err); code != exitUsage {
					t.Errorf("%q: exit code %d, want %d (%v)", tc.args, code, exitUsage, err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Errorf("%q: error %q, want it to contain %q", tc.args, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q: %v", tc.args, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%q:\n got  %+v\n want %+v", tc.args, got, tc.want)
			}
			if stdout.Len() > 0 || stderr.Len() > 0 {
				t.Errorf("%q: parse and validate printed %q / %q", tc.args, stdout.String(), stderr.String())
			}
		})
	}
}

// inEmptyDir runs the test in a new empty directory and checks, at the
// end, that nothing was written there.
func inEmptyDir(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Cleanup(func() {
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) > 0 {
			t.Errorf("parse/validate left %v in the working directory (%v)", entries, err)
		}
	})
}

// defaultRunFlags is runFlags as run and task fill them without flags.
func defaultRunFlags(args []string) runFlags {
	return runFlags{tablesConfig: "tables.yaml", workDir: ".", logsDir: filepath.Join("salesforce", "logs"),
		maxBatchBytes: extract.DefaultMaxBytes, stopGrace: 20 * time.Second, argv: args}
}

func TestRunOptions(t *testing.T) {
	inEmptyDir(t)
	run := func(args []string, f func(*runOptions)) stageCase[*runOptions] {
		o := &runOptions{runFlags: defaultRunFlags(args)}
		f(o)
		return stageCase[*runOptions]{name: strings.Join(args, " "), args: args, want: o}
	}
	bad := func(err string, args ...string) stageCase[*runOptions] {
		return stageCase[*runOptions]{name: strings.Join(args, " "), args: args, err: err}
	}
	testStages(t, parseRun, []stageCase[*runOptions]{
		run([]string{"--table", "PRODUCTS"}, func(o *runOptions) { o.table = "PRODUCTS" }),
		run([]string{"--table", "P", "--run-id", "r1", "--conf", `{"batch_size": 5}`, "--json", "--keep-batches",
			"--work-dir", "w", "--logs-dir", "l", "--tables-config", "t.yaml", "--max-batch-bytes", "1000",
			"--poll-interval", "50ms", "--poll-max-interval", "1s", "--stop-grace", "0s"}, func(o *runOptions) {
			o.table, o.runID, o.conf, o.json, o.keepBatches = "P", "r1", `{"batch_size": 5}`, true, true
			o.workDir, o.logsDir, o.tablesConfig, o.maxBatchBytes = "w", "l", "t.yaml", 1000
			o.pollInterval, o.pollMaxInterval, o.stopGrace = 50*time.Millisecond, time.Second, 0
		}),
		run([]string{"--run-id", "r1", "--retry-failed"}, func(o *runOptions) { o.runID, o.retryFailed = "r1", true }),
		run([]string{"--tables", " A, B,,", "--conf-file", "c.json"}, func(o *runOptions) { o.tables, o.confFile = []string{"A", "B"}, "c.json" }),
		run([]string{"--all-tables", "--max-batch-bytes", "100000000"}, func(o *runOptions) { o.allTables, o.maxBatchBytes = true, 100_000_000 }),
		bad(`unexpected argument "extra"`, "--table", "T", "extra"),
		bad("flag provided but not defined: -tabel; did you mean --table?", "--tabel", "T"),
		bad("a duration needs a unit: 50ms or 50s", "--poll-interval", "50"),
		bad("--poll-interval -1s: must not be negative", "--poll-interval", "-1s"),
		bad("--poll-max-interval -1s: must not be negative", "--poll-max-interval", "-1s"),
		bad("--poll-max-interval 1s is shorter than --poll-interval 2s", "--poll-interval", "2s", "--poll-max-interval", "1s"),
		bad("--max-batch-bytes 999: give 1000 to 100000000 bytes", "--table", "T", "--max-batch-bytes", "999"),
		bad("--max-batch-bytes 100000001", "--max-batch-bytes", "100000001"),
		bad("--stop-grace -1s: must not be negative", "--stop-grace", "-1s"),
		bad("--conf or --conf-file, not both", "--conf", "{}", "--conf-file", "c.json"),
		bad("--table runs one table", "--table", "T", "--tables", "A,B"),
		bad("--table runs one table", "--table", "T", "--all-tables"),
		bad("give --tables A,B or --all-tables, not both", "--tables", "A", "--all-tables"),
		bad("--retry-failed works on a one-table run", "--all-tables", "--retry-failed"),
		// The plan's flag values are checked too, before the tables config is read.
		bad("--max-batch-bytes 5", "--tables", "A,B", "--max-batch-bytes", "5"),
	})
}

func TestTaskOptions(t *testing.T) {
	inEmptyDir(t)
	task := func(args []string, f func(*taskOptions)) stageCase[*taskOptions] {
		o := &taskOptions{runFlags: defaultRunFlags(args), step: args[0]}
		f(o)
		return stageCase[*taskOptions]{name: strings.Join(args, " "), args: args, want: o}
	}
	bad := func(err string, args ...string) stageCase[*taskOptions] {
		return stageCase[*taskOptions]{name: strings.Join(args, " "), args: args, err: err}
	}
	cases := []stageCase[*taskOptions]{
		task([]string{"authenticate", "--run-id", "r", "--table", "T"}, func(o *taskOptions) { o.runID, o.table = "r", "T" }),
		task([]string{"upload", "--run-id", "r", "--json", "--poll-interval", "50ms"}, func(o *taskOptions) {
			o.runID, o.json, o.pollInterval = "r", true, 50*time.Millisecond
		}),
		bad("missing STEP; one of authenticate, extract, upload, collect-results, update-status"),
		bad("the STEP comes first", "--run-id", "x", "upload"),
		bad(`unknown step "deploy"; use one of authenticate`, "deploy", "--run-id", "x"),
		bad("--run-id is required", "upload"),
		bad(`unexpected argument "extra"`, "upload", "extra", "--run-id", "x"),
		bad("did you mean --run-id?", "upload", "--runid", "x"),
		bad("--stop-grace -2s", "extract", "--run-id", "x", "--stop-grace", "-2s"),
		bad("--max-batch-bytes 5", "extract", "--run-id", "x", "--max-batch-bytes", "5"),
		task([]string{"upload", "--run-id", "r", "--batch", "7"}, func(o *taskOptions) { o.runID, o.batch = "r", 7 }),
		bad("--batch 7 is for the upload step only", "extract", "--run-id", "x", "--batch", "7"),
		bad("--batch -1: give the number of an extracted batch", "upload", "--run-id", "x", "--batch", "-1"),
		bad("--batch 8589934593: give the number of an extracted batch", "upload", "--run-id", "x", "--batch", "8589934593"),
	}
	// Every step is known.
	for _, step := range []string{"extract", "collect-results", "update-status"} {
		cases = append(cases, task([]string{step, "--run-id", "r"}, func(o *taskOptions) { o.runID = "r" }))
	}
	testStages(t, parseTask, cases)
}

func TestCheckOptions(t *testing.T) {
	inEmptyDir(t)
	def := func() *checkOptions { return &checkOptions{tablesConfig: "tables.yaml", sample: 5} }
	testStages(t, parseCheck, []stageCase[*checkOptions]{
		{name: "one table", args: []string{"--table", "T"}, want: func() *checkOptions { o := def(); o.table = "T"; return o }()},
		{name: "plan", args: []string{"--tables", "A,B", "--json", "--sample", "0", "--conf", "{}", "--poll-interval", "1s", "--poll-max-interval", "1s"},
			want: func() *checkOptions {
				o := def()
				o.tables, o.json, o.sample, o.conf, o.pollInterval, o.pollMaxInterval = []string{"A", "B"}, true, 0, "{}", time.Second, time.Second
				return o
			}()},
		{name: "all tables", args: []string{"--all-tables", "--sample", "1000", "--tables-config", "x.yaml"},
			want: func() *checkOptions {
				o := def()
				o.allTables, o.sample, o.tablesConfig = true, 1000, "x.yaml"
				return o
			}()},
		{name: "sample too big", args: []string{"--sample", "1001"}, err: "check: --sample 1001: give 0 to 1000 rows"},
		{name: "sample negative", args: []string{"--sample", "-1", "--json"}, err: "--sample -1"},
		{name: "poll", args: []string{"--poll-interval", "-5s"}, err: "--poll-interval -5s: must not be negative"},
		{name: "conf twice", args: []string{"--conf", "{}", "--conf-file", "c.json"}, err: "--conf or --conf-file, not both"},
		{name: "table and plan", args: []string{"--table", "T", "--all-tables"}, err: "give --table T for one table, or --tables A,B / --all-tables"},
		{name: "table and tables", args: []string{"--table", "T", "--tables", "A"}, err: "not both"},
		{name: "extra", args: []string{"now"}, err: `check: unexpected argument "now"`},
	})
}

// TestValidationErrorJSON: with --json, a command stopped by its
// validation prints the JSON line an orchestrator reads, as for any other
// error before the run starts.
func TestValidationErrorJSON(t *testing.T) {
	var stdout bytes.Buffer
	_, err := parseAndValidate(Env{Stdout: &stdout, Getenv: func(string) string { return "" }}, parseCheck, []string{"--sample", "-1", "--json"})
	if err == nil || stdout.String() != `{"outcome":"failed","error":"check: --sample -1: give 0 to 1000 rows","exit_code":2}`+"\n" {
		t.Errorf("err %v, stdout %q", err, stdout.String())
	}
	stdout.Reset()
	if _, err := parseAndValidate(Env{Stdout: &stdout}, parseCheck, []string{"--sample", "-1"}); err == nil || stdout.Len() > 0 {
		t.Errorf("without --json: err %v, stdout %q", err, stdout.String())
	}
}

func TestPlanOptions(t *testing.T) {
	inEmptyDir(t)
	testStages(t, parsePlan, []stageCase[*planOptions]{
		{name: "defaults", args: nil, want: &planOptions{tablesConfig: "tables.yaml"}},
		{name: "all flags", args: []string{"--tables", "A,B", "--json", "--offline", "--step-configs", "steps", "--tables-config", "t.yaml",
			"--work-dir", "w", "--logs-dir", "l", "--poll-interval", "1s"},
			want: &planOptions{tables: []string{"A", "B"}, json: true, offline: true, stepConfigs: "steps", tablesConfig: "t.yaml"}},
		{name: "extra", args: []string{"A"}, err: `plan: unexpected argument "A"`},
		{name: "bad flag", args: []string{"--ofline"}, err: "did you mean --offline?"},
	})
}

func TestDemoOptions(t *testing.T) {
	inEmptyDir(t)
	def := demoOptions{dir: "sfmigrate-demo", products: 40000, prices: 260000, accounts: 5000, contacts: 10000, batchSize: 25000}
	small := def
	small.dir, small.products, small.prices, small.accounts, small.contacts, small.orphans, small.batchSize, small.json = "/tmp/d", 1, 0, 0, 0, 3, 1, true
	const rangeErr = "demo: --products must be at least 1, --prices, --accounts, --contacts, --orphans at least 0, --batch-size at least 1"
	testStages(t, parseDemo, []stageCase[*demoOptions]{
		{name: "defaults", want: &def},
		{name: "small", args: []string{"--dir", "/tmp/d", "--products", "1", "--prices", "0", "--accounts", "0", "--contacts", "0", "--orphans", "3", "--batch-size", "1", "--json"}, want: &small},
		{name: "no products", args: []string{"--products", "0"}, err: rangeErr},
		{name: "negative prices", args: []string{"--prices", "-1"}, err: rangeErr},
		{name: "negative accounts", args: []string{"--accounts", "-1"}, err: rangeErr},
		{name: "negative contacts", args: []string{"--contacts", "-1"}, err: rangeErr},
		{name: "negative orphans", args: []string{"--orphans", "-1"}, err: rangeErr},
		{name: "no batch size", args: []string{"--batch-size", "0"}, err: rangeErr},
		{name: "not a number", args: []string{"--products", "many"}, err: `invalid value "many" for flag -products`},
		{name: "stray argument", args: []string{"--products", "5", "fast"}, err: `demo: unexpected argument "fast"`},
	})
}

func TestEmulatorOptions(t *testing.T) {
	inEmptyDir(t)
	def := func() *emulatorFlags {
		return &emulatorFlags{listen: "127.0.0.1:0", clientID: sfemu.TestClientID, clientSecret: sfemu.TestClientSecret, testClient: true,
			processing: "async", apiLimit: 100_000, maxUpload: 100_000_000, seed: 1, orgModel: orgModelFlags{m: sfemu.DefaultOrgModel()}}
	}
	with := func(f func(*emulatorFlags)) *emulatorFlags { o := def(); f(o); return o }
	testStages(t, parseEmulator, []stageCase[*emulatorFlags]{
		{name: "defaults", want: def()},
		{name: "faults", args: []string{"--listen", "127.0.0.1:8080", "--share-503", "0.3", "--share-429", "0.2", "--share-drop", "0.5",
			"--lock", "Product2=P-1,P-2", "--lock", "Account=A", "--fail-jobs", "2", "--latency", "5ms", "--token-lifetime", "1m", "--seed", "7"},
			want: with(func(o *emulatorFlags) {
				o.listen, o.share503, o.share429, o.shareDrop = "127.0.0.1:8080", 0.3, 0.2, 0.5
				o.locks, o.failJobs, o.latency, o.tokenLifetime, o.seed = lockFlag{"Product2=P-1,P-2", "Account=A"}, 2, 5*time.Millisecond, time.Minute, 7
			})},
		{name: "own client", args: []string{"--client-id", "app", "--client-secret", "s3cret"},
			want: with(func(o *emulatorFlags) { o.clientID, o.clientSecret, o.testClient = "app", "s3cret", false })},
		{name: "org model by a parameter", args: []string{"--org-jobs", "3"},
			want: with(func(o *emulatorFlags) { o.orgModel.on, o.orgModel.m.ConcurrentJobs = true, 3 })},
		{name: "instant", args: []string{"--processing", "instant", "--processing-delay", "0s", "--no-shuffle", "--gzip-results", "--tls"},
			want: with(func(o *emulatorFlags) { o.processing, o.noShuffle, o.gzipResults, o.tls = "instant", true, true, true })},
		{name: "share over 1", args: []string{"--share-503", "2"}, err: "emulator: --share-503 2 is not a share between 0 and 1"},
		{name: "negative share", args: []string{"--share-drop", "-0.1"}, err: "--share-drop -0.1 is not a share"},
		{name: "shares add up over 1", args: []string{"--share-503", "0.6", "--share-429", "0.5"}, err: "add up to 1.1"},
		{name: "id without secret", args: []string{"--client-id", "x"}, err: `--client-id "x" needs --client-secret`},
		{name: "empty id", args: []string{"--client-id", "", "--client-secret", "s"}, err: "--client-id must not be empty"},
		{name: "processing", args: []string{"--processing", "later"}, err: `--processing "later": use async or instant`},
		{name: "lock", args: []string{"--lock", "Product2"}, err: `--lock "Product2": use Object=key1,key2`},
		{name: "lock without keys", args: []string{"--lock", "Product2="}, err: "use Object=key1,key2"},
		{name: "negative latency", args: []string{"--latency", "-1s"}, err: "--latency -1s must not be negative"},
		{name: "negative delay", args: []string{"--processing-delay", "-1s"}, err: "--processing-delay -1s must not be negative"},
		{name: "fail jobs", args: []string{"--fail-jobs", "-1"}, err: "--fail-jobs must be >= 0"},
		{name: "api limit", args: []string{"--api-limit", "0"}, err: "--api-limit and --max-upload-bytes > 0"},
		{name: "org jobs", args: []string{"--org-jobs", "0"}, err: "--org-jobs 0 must be at least 1"},
		{name: "model with instant", args: []string{"--org-model", "--processing", "instant"}, err: `needs --processing async, not "instant"`},
		{name: "extra", args: []string{"now"}, err: `emulator: unexpected argument "now"`},
	})
	// The secret's default source: SFEMU_CLIENT_SECRET, never the test
	// secret then.
	o, err := parseAndValidate(Env{Getenv: func(k string) string {
		return map[string]string{"SFEMU_CLIENT_SECRET": "from-env"}[k]
	}}, parseEmulator, []string{"--client-id", "app"})
	if err != nil || o.clientSecret != "from-env" || o.testClient {
		t.Errorf("SFEMU_CLIENT_SECRET: %+v, %v", o, err)
	}
}

func TestTrackerOptions(t *testing.T) {
	inEmptyDir(t)
	testStages(t, parseTracker, []stageCase[*trackerOptions]{
		{name: "get", args: []string{"get", "PRODUCT_PRICE"}, want: &trackerOptions{action: "get", args: []string{"PRODUCT_PRICE"}, tablesConfig: "tables.yaml"}},
		{name: "set with flags around", args: []string{"set", "--tables-config", "t.yaml", "P", "--field", "A__c=1", "In Progress", "--field", "B__c=", "--json"},
			want: &trackerOptions{action: "set", args: []string{"P", "In Progress"}, tablesConfig: "t.yaml", tablesConfigSet: true,
				fields: []string{"A__c=1", "B__c="}, json: true}},
		{name: "update only", args: []string{"set", "P", "Uploaded", "--update-only"},
			want: &trackerOptions{action: "set", args: []string{"P", "Uploaded"}, tablesConfig: "tables.yaml", updateOnly: true}},
		{name: "no action", args: nil, err: "tracker: missing action: sfmigrate tracker get REF"},
		{name: "flag first", args: []string{"--json"}, err: "tracker: missing action"},
		{name: "unknown action", args: []string{"frob", "X"}, err: `tracker: unknown action "frob"; use get or set`},
		{name: "get without ref", args: []string{"get"}, err: "tracker get: want exactly one REF, got 0 arguments"},
		{name: "get two refs", args: []string{"get", "A", "B"}, err: "got 2 arguments"},
		{name: "set without status", args: []string{"set", "A"}, err: "tracker set: want REF and STATUS, got 1 arguments"},
		{name: "get with field", args: []string{"get", "A", "--field", "X=1"}, err: "--field and --update-only belong to tracker set"},
		{name: "update only with field", args: []string{"set", "A", "B", "--update-only", "--field", "X=1"}, err: "leave out --field X=1"},
		{name: "empty ref", args: []string{"get", " "}, err: "tracker get: REF is empty"},
		{name: "empty status", args: []string{"set", "A", ""}, err: "tracker set: STATUS is empty"},
		{name: "field without value", args: []string{"set", "A", "B", "--field", "novalue"}, err: `--field "novalue" is not K=V`},
		{name: "field without key", args: []string{"set", "A", "B", "--field", " =1"}, err: `--field " =1" is not K=V`},
	})
}

func TestAuthOptions(t *testing.T) {
	inEmptyDir(t)
	testStages(t, parseAuth, []stageCase[*authOptions]{
		{name: "check", args: []string{"check"}, want: &authOptions{}},
		{name: "json token", args: []string{"check", "--json", "--print-token"}, want: &authOptions{json: true, printToken: true}},
		{name: "no action", args: nil, err: "auth: missing action: sfmigrate auth check"},
		{name: "flags first", args: []string{"--json", "check"}, err: "auth: missing action"},
		{name: "other action", args: []string{"login"}, err: "auth: missing action"},
		{name: "extra", args: []string{"check", "now"}, err: `auth check: unexpected argument "now"`},
		{name: "bad flag", args: []string{"check", "--print-tokens"}, err: "did you mean --print-token?"},
	})
}

func TestVersionOptions(t *testing.T) {
	inEmptyDir(t)
	testStages(t, parseVersion, []stageCase[*versionOptions]{
		{name: "plain", want: &versionOptions{}},
		{name: "bad flag", args: []string{"--nope"}, err: "flag provided but not defined: -nope"},
		{name: "stray argument", args: []string{"now"}, err: `version: unexpected argument "now"`},
	})
}

// TestHelpIsNotAnError: --help at the parse stage prints the usage to
// stdout and stops the command with exit 0, for every command.
func TestHelpIsNotAnError(t *testing.T) {
	for name, c := range commands {
		t.Run(name, func(t *testing.T) {
			var stdout bytes.Buffer
			err := c.run(t.Context(), Env{Stdout: &stdout, Stderr: &stdout}, []string{"--help"})
			if !errors.Is(err, errHelp) || codeOf(err) != exitOK || !strings.HasPrefix(stdout.String(), "Usage: sfmigrate "+name) {
				t.Errorf("err %v, output %.80q", err, stdout.String())
			}
		})
	}
}
