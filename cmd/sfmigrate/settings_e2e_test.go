package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

func openSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestSettingsPrecedenceEndToEnd checks, through the command line, that each
// setting comes from where design.md §2 says, that the manifest records it,
// and that the batches follow it.
func TestSettingsPrecedenceEndToEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		env         map[string]string
		args        []string
		wantBatch   int
		batchSource string
		wantStart   int
		startSource string
		wantObject  string
		objSource   string
		wantBatches int
		wantRows    int64
	}{
		{"defaults", nil, nil, 10000, "default", 1, "default", "Product2", "tables config", 1, 120},
		{"variable", map[string]string{"AIRFLOW_VAR_BATCH_SIZE": "50"}, nil, 50, "AIRFLOW_VAR_BATCH_SIZE", 1, "default", "Product2", "tables config", 3, 120},
		{"run config beats variable", map[string]string{"AIRFLOW_VAR_BATCH_SIZE": "50", "AIRFLOW_VAR_START_BATCH": "1"},
			[]string{"--conf", `{"batch_size": 40, "start_batch": 2}`}, 40, "run config (--conf)", 2, "run config (--conf)", "Product2", "tables config", 2, 80},
		{"start batch from variable", map[string]string{"AIRFLOW_VAR_BATCH_SIZE": "50", "AIRFLOW_VAR_START_BATCH": "3"}, nil,
			50, "AIRFLOW_VAR_BATCH_SIZE", 3, "AIRFLOW_VAR_START_BATCH", "Product2", "tables config", 1, 20},
		{"conf file", nil, []string{"--conf-file", "CONF"}, 60, "run config (--conf-file", 1, "default", "Product2", "tables config", 2, 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, sample{products: 120, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
			for k, v := range tt.env {
				h.env[k] = v
			}
			args := append([]string{"--table", "PRODUCTS", "--run-id", "r", "--json", "--keep-batches"}, tt.args...)
			for i, a := range args {
				if a == "CONF" {
					p := filepath.Join(t.TempDir(), "conf.json")
					os.WriteFile(p, []byte(`{"batch_size": 60}`), 0o644)
					args[i] = p
				}
			}
			code, stdout, stderr := h.main("run", args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			m := h.manifest("r")
			check := func(name string, want any, src string) {
				got := m.Settings[name]
				if fmt.Sprint(got.Value) != fmt.Sprint(want) || !strings.HasPrefix(got.Source, src) {
					t.Errorf("%s = %v from %q, want %v from %q", name, got.Value, got.Source, want, src)
				}
			}
			check("batch_size", tt.wantBatch, tt.batchSource)
			check("start_batch", tt.wantStart, tt.startSource)
			check("sf_object", tt.wantObject, tt.objSource)
			s := lastLineSummary(t, stdout)
			if s.Batches != tt.wantBatches || s.Rows != tt.wantRows || s.Successful != tt.wantRows {
				t.Errorf("batches %d rows %d ok %d, want %d batches %d rows", s.Batches, s.Rows, s.Successful, tt.wantBatches, tt.wantRows)
			}
			if m.Batches[0].Index != tt.wantStart {
				t.Errorf("first batch file is number %d, want %d", m.Batches[0].Index, tt.wantStart)
			}
			if n, _ := h.query("SELECT COUNT() FROM Product2"); int64(n) != tt.wantRows {
				t.Errorf("org holds %d products, want %d", n, tt.wantRows)
			}
		})
	}
}

// TestRunConfigOverridesTablesConfig points sf_object and status_ref
// elsewhere through the run config: the rows land there instead.
func TestRunConfigOverridesTablesConfig(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 30, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	// A table whose fields exist on Product2 and on Account alike.
	cfg, _ := os.ReadFile(h.tables)
	cfg = append(cfg, []byte(`  NAMES:
    source: demo_erp
    table: PRODUCTS
    order_by: PRODUCT_ID
    sf_object: Product2
    external_id_field: External_Id__c
    fields:
      PRODUCT_ID: External_Id__c
      NAME: Name
`)...)
	os.WriteFile(h.tables, cfg, 0o644)
	code, stdout, stderr := h.main("run", "--table", "NAMES", "--run-id", "acc", "--json",
		"--conf", `{"sf_object": "Account", "external_id_field": "External_Id__c", "status_ref": "ACCOUNTS_FROM_PRODUCTS"}`)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	m := h.manifest("acc")
	if m.Settings["sf_object"].Value != "Account" || m.Settings["sf_object"].Source != "run config (--conf)" {
		t.Errorf("sf_object = %+v", m.Settings["sf_object"])
	}
	if s := lastLineSummary(t, stdout); s.Object != "Account" || s.Successful != 30 {
		t.Errorf("summary = %+v", s)
	}
	if n, _ := h.query("SELECT COUNT() FROM Account"); n != 30 {
		t.Errorf("accounts = %d, want 30", n)
	}
	if n, _ := h.query("SELECT COUNT() FROM Product2"); n != 0 {
		t.Errorf("products = %d, want 0", n)
	}
	if st := h.trackerStatus("ACCOUNTS_FROM_PRODUCTS"); st != "Uploaded" {
		t.Errorf("tracker under the run config's status_ref = %q", st)
	}
}

// TestBadSettingsFailBeforeAnyAPICall: exit 2, a message naming the
// setting, its source and the fix, and not one request to Salesforce.
func TestBadSettingsFailBeforeAnyAPICall(t *testing.T) {
	t.Parallel()
	editTables := func(from, to string) func(h *harness) {
		return func(h *harness) {
			cfg, _ := os.ReadFile(h.tables)
			os.WriteFile(h.tables, []byte(strings.Replace(string(cfg), from, to, 1)), 0o644)
		}
	}
	fileAt := func(name string) func(h *harness) {
		return func(h *harness) { os.WriteFile(filepath.Join(h.dir, "..", name), []byte("x"), 0o644) }
	}
	setups := map[string]func(h *harness){
		"tables config not YAML":    editTables("    order_by: PRODUCT_ID\n", "   order_by: PRODUCT_ID\n"),
		"tables config unknown key": editTables("order_by: PRODUCT_ID", "orderby: PRODUCT_ID"),
		"logs dir not writable":     fileAt("logsfile"),
		"work dir not writable":     fileAt("logsfile"),
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"batch size variable", map[string]string{"AIRFLOW_VAR_BATCH_SIZE": "ten"}, nil,
			[]string{`batch_size = "ten"`, "AIRFLOW_VAR_BATCH_SIZE", "not a whole number", "fix:"}},
		{"batch size zero", nil, []string{"--conf", `{"batch_size": 0}`}, []string{`batch_size = "0"`, "run config (--conf)", "out of range"}},
		{"start batch", map[string]string{"AIRFLOW_VAR_START_BATCH": "-1"}, nil, []string{"start_batch", "AIRFLOW_VAR_START_BATCH", "numbered from 1"}},
		{"conf not json", nil, []string{"--conf", `batch_size=10`}, []string{"run config", "not a JSON object"}},
		{"unknown table", nil, []string{"--table", "NOPE"}, []string{`table = "NOPE"`, "PRICES, PRODUCTS"}},
		{"no table", nil, []string{"--table", ""}, []string{"table: is missing", "--table"}},
		{"missing salesforce connection", map[string]string{"AIRFLOW_CONN_SALESFORCE_API": ""}, nil,
			[]string{"connection salesforce_api", "AIRFLOW_CONN_SALESFORCE_API", "is not set", "client id"}},
		{"no client secret", map[string]string{"AIRFLOW_CONN_SALESFORCE_API": `{"conn_type": "http", "host": "https://x.my.salesforce.com", "login": "id"}`}, nil,
			[]string{"salesforce_api password", "client secret"}},
		{"missing source connection", map[string]string{"AIRFLOW_CONN_DEMO_ERP": ""}, nil,
			[]string{"connection demo_erp", "AIRFLOW_CONN_DEMO_ERP", "is not set", "tables.PRODUCTS.source"}},
		{"source not a database", map[string]string{"AIRFLOW_CONN_DEMO_ERP": "http://example.com"}, nil,
			[]string{"demo_erp conn_type", `"http"`, "sqlite, postgres or oracle"}},
		{"bad sf_object", nil, []string{"--conf", `{"sf_object": "Product 2"}`}, []string{`sf_object = "Product 2"`, "API name"}},
		{"both conf flags", nil, []string{"--conf", `{}`, "--conf-file", "x.json"}, []string{"--conf or --conf-file"}},
		{"tables config missing", nil, []string{"--tables-config", "/nonexistent/tables.yaml"}, []string{"tables config", "/nonexistent/tables.yaml", "cannot be opened"}},
		{"bad run id", nil, []string{"--run-id", "a\nb"}, []string{"--run-id", `"a\nb"`, "control characters"}},
		{"tables config not YAML", nil, nil, []string{"tables config", "not valid YAML", "line", "indentation"}},
		{"tables config unknown key", nil, nil, []string{"tables.PRODUCTS.orderby", "line", "unknown key", "did you mean order_by?"}},
		{"resume of an unknown run", nil, []string{"--table", "", "--run-id", "PRODUCTS-2026"},
			[]string{`--run-id = "PRODUCTS-2026"`, "no run with this id", "--work-dir", "add --table"}},
		{"source file missing", map[string]string{"AIRFLOW_CONN_DEMO_ERP": "sqlite:////nonexistent/erp.db"}, nil,
			[]string{"connection demo_erp", "AIRFLOW_CONN_DEMO_ERP", "/nonexistent/erp.db", "no such file", "fix:"}},
		{"logs dir not writable", nil, []string{"--logs-dir", "LOGSFILE/logs"}, []string{"--logs-dir", "not a directory", "fix:"}},
		{"work dir not writable", nil, []string{"--work-dir", "LOGSFILE/work"}, []string{"--work-dir", "not a directory", "fix:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, sample{products: 5, prices: 0})
			for k, v := range tt.env {
				h.env[k] = v
			}
			if setup := setups[tt.name]; setup != nil {
				setup(h)
			}
			args := append([]string{"--table", "PRODUCTS"}, tt.args...)
			for i, a := range args {
				args[i] = strings.ReplaceAll(a, "LOGSFILE", filepath.Join(h.dir, "..", "logsfile"))
			}
			code, _, stderr := h.main("run", args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr)
				}
			}
			if n := h.emu.APIUsage(); n != 0 {
				t.Errorf("%d API calls were made", n)
			}
			if strings.Contains(stderr, sfemu.TestClientSecret) {
				t.Error("the client secret was printed")
			}
		})
	}
}

// TestAirflowConnectionURIs wires connections given in Airflow's URI form
// (percent-encoded host for SQLite, as Airflow's docs show; credentials in
// the userinfo for the Salesforce app) through to a working run.
func TestAirflowConnectionURIs(t *testing.T) {
	t.Parallel()
	secret := "s3cr/t+=&?é"
	h := newHarness(t, sample{products: 40, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0), sfemu.WithClient("app id", secret))
	u, _ := url.Parse(h.srv.URL)
	h.env["AIRFLOW_CONN_SALESFORCE_API"] = "http://" + url.PathEscape("app id") + ":" + url.QueryEscape(secret) + "@" + u.Host + "/?api_version=66.0"
	// Airflow's documented form for SQLite: the path percent-encoded as the host.
	h.env["AIRFLOW_CONN_DEMO_ERP"] = "sqlite://" + url.QueryEscape(h.db)
	code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "uri", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if s := lastLineSummary(t, stdout); s.Successful != 40 {
		t.Errorf("summary = %+v", s)
	}
	if strings.Contains(stdout+stderr, secret) || strings.Contains(stdout+stderr, url.QueryEscape(secret)) {
		t.Error("the client secret was printed")
	}
	// And the JSON form, with the secret verbatim.
	h2 := newHarness(t, sample{products: 5, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0), sfemu.WithClient("app id", secret))
	conn, _ := json.Marshal(map[string]any{"conn_type": "http", "host": h2.srv.URL, "login": "app id", "password": secret, "extra": map[string]any{"api_version": "66.0"}})
	h2.env["AIRFLOW_CONN_SALESFORCE_API"] = string(conn)
	if code, _, stderr := h2.main("run", "--table", "PRODUCTS", "--run-id", "json"); code != 0 {
		t.Fatalf("JSON form: exit %d\n%s", code, stderr)
	}
	// A wrong secret is refused by the token endpoint: a configuration
	// problem (exit 2) that names the connection and says what to check.
	h2.env["AIRFLOW_CONN_SALESFORCE_API"] = strings.Replace(string(conn), "s3cr", "nope", 1)
	code, _, stderr = h2.main("run", "--table", "PRODUCTS", "--run-id", "bad-secret")
	if code != 2 || !strings.Contains(stderr, `connection "salesforce_api"`) || !strings.Contains(stderr, "Consumer Secret") || strings.Contains(stderr, "nope/t") {
		t.Errorf("wrong secret: exit %d\n%s", code, stderr)
	}
}

// TestTasksOneStepAtATime runs the steps as an orchestrator would, each in
// its own invocation, and checks that order is enforced.
func TestTasksOneStepAtATime(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 300, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	code, _, stderr := h.main("task", "upload", "--run-id", "t1")
	if code != 2 || !strings.Contains(stderr, "run t1 has no manifest") {
		t.Fatalf("upload of an unknown run: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := h.main("task", "authenticate", "--run-id", "t0", "--table", "PRODUCTS"); code != 0 {
		t.Fatalf("authenticate: exit %d\n%s", code, stderr)
	}
	code, _, stderr = h.main("task", "upload", "--run-id", "t0")
	if code != 2 || !strings.Contains(stderr, "task extract --run-id t0") {
		t.Fatalf("upload before extract: exit %d\n%s", code, stderr)
	}
	steps := [][]string{
		{"authenticate", "--run-id", "t1", "--table", "PRODUCTS"},
		{"extract", "--run-id", "t1", "--conf", `{"batch_size": 100}`},
		{"extract", "--run-id", "t1"}, // rerun: nothing to do
		{"upload", "--run-id", "t1"},
		{"collect-results", "--run-id", "t1"},
		{"update-status", "--run-id", "t1", "--json"},
	}
	var stdout string
	for _, s := range steps {
		code, stdout, stderr = h.main("task", s...)
		if code != 0 {
			t.Fatalf("task %v: exit %d\n%s", s, code, stderr)
		}
		if s[0] == "authenticate" {
			if st := h.trackerStatus("PRODUCTS"); st != "In Progress" {
				t.Errorf("after authenticate the tracker is %q, want In Progress", st)
			}
		}
	}
	sum := lastLineSummary(t, stdout)
	if sum.Batches != 3 || sum.Successful != 300 || sum.TrackerStatus != "Uploaded" {
		t.Errorf("summary = %+v", sum)
	}
	if st := h.trackerStatus("PRODUCTS"); st != "Uploaded" {
		t.Errorf("tracker = %q", st)
	}
	h.checkOneJobPerBatch("t1", "Product2")
	// Changing a batch-defining setting on a later step is refused.
	code, _, stderr = h.main("task", "upload", "--run-id", "t1", "--conf", `{"batch_size": 7}`)
	if code != 2 || !strings.Contains(stderr, "recorded batch_size = 100") {
		t.Errorf("changed batch size: exit %d\n%s", code, stderr)
	}
	m := h.manifest("t1")
	if m.Steps[pipeline.StepUpdateStatus].State != pipeline.StateDone {
		t.Errorf("steps = %+v", m.Steps)
	}
}

func TestHelpExplainsEveryCommand(t *testing.T) {
	for _, cmd := range []string{"run", "task", "demo"} {
		code, stdout, _ := runMain(t, cmd, "--help")
		if code != 0 {
			t.Errorf("%s --help: exit %d", cmd, code)
		}
		for _, w := range []string{"Usage: sfmigrate " + cmd, "Exit codes:", "Examples:"} {
			if !strings.Contains(stdout, w) {
				t.Errorf("%s --help lacks %q", cmd, w)
			}
		}
		if cmd != "demo" && !strings.Contains(stdout, "AIRFLOW_VAR_BATCH_SIZE") {
			t.Errorf("%s --help does not explain settings precedence", cmd)
		}
	}
}

// TestMappingCheckedAgainstDescribe: a field that does not exist on the
// object (or a relationship column that cannot work) stops the run after
// describe, before any job: exit 2 naming the column and the field.
func TestMappingCheckedAgainstDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct{ from, to, want string }{
		{"NAME: Name", "NAME: Nmae", `tables.PRODUCTS.fields.NAME = "Nmae"`},
		{"PRODUCT_ID: Product__r.External_Id__c", "PRODUCT_ID: Produkt__r.External_Id__c", "relationship name Produkt__r"},
		{"PRODUCT_ID: Product__r.External_Id__c", "PRODUCT_ID: Product__r.Name", "not an external id"},
		{"NAME: Name", "NAME: Nam", "did you mean Name?"},
		{"  sf_object: Migration_Status__c", "  sf_object: Migration_Stat__c", `status_tracker.sf_object = "Migration_Stat__c"`},
		{"  status_field: Status__c", "  status_field: Stat__c", `status_tracker.status_field = "Stat__c" (from tables config`},
	}
	for _, tt := range tests {
		t.Run(tt.to, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, sample{products: 5, prices: 5}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
			cfg, _ := os.ReadFile(h.tables)
			if !strings.Contains(string(cfg), tt.from) {
				t.Fatalf("tables config lacks %q", tt.from)
			}
			os.WriteFile(h.tables, []byte(strings.Replace(string(cfg), tt.from, tt.to, 1)), 0o644)
			table := "PRODUCTS"
			if strings.HasPrefix(tt.from, "PRODUCT_ID: Product__r") {
				table = "PRICES"
			}
			code, _, stderr := h.main("run", "--table", table)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, want 2 with %q:\n%s", code, tt.want, stderr)
			}
			if n := len(h.emu.Jobs()); n != 0 {
				t.Errorf("%d jobs created", n)
			}
		})
	}
}

// TestLoginHostThatDoesNotExist: a host name DNS does not know fails at
// once as a configuration error naming the connection's host, instead of
// after the client's login retries.
func TestLoginHostThatDoesNotExist(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var dnsErr *net.DNSError
	if _, err := net.DefaultResolver.LookupHost(ctx, "acme.sfmigrate-test.invalid"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Skipf("this machine's resolver does not answer 'no such host' for .invalid names (%v)", err)
	}
	h := newHarness(t, sample{products: 5})
	h.env["AIRFLOW_CONN_SALESFORCE_API"] = `{"conn_type": "http", "host": "https://acme.sfmigrate-test.invalid", "login": "id", "password": "s3cret-value"}`
	start := time.Now()
	code, _, stderr := h.main("run", "--table", "PRODUCTS")
	if code != 2 || !strings.Contains(stderr, `connection salesforce_api host = "https://acme.sfmigrate-test.invalid"`) ||
		!strings.Contains(stderr, "does not exist") || !strings.Contains(stderr, "My Domain") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s: the login was retried", took)
	}
	if strings.Contains(stderr, "s3cret-value") {
		t.Error("the client secret was printed")
	}
}

// TestLoginHTTPSToPlainHTTP: an https login URL whose server speaks plain
// HTTP is a configuration error (exit 2) saying so, at once.
func TestLoginHTTPSToPlainHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 5})
	host := "https://" + strings.TrimPrefix(h.srv.URL, "http://")
	h.env["AIRFLOW_CONN_SALESFORCE_API"] = `{"conn_type": "http", "host": "` + host + `", "login": "` + sfemu.TestClientID + `", "password": "` + sfemu.TestClientSecret + `"}`
	start := time.Now()
	code, _, stderr := h.main("run", "--table", "PRODUCTS")
	if code != 2 || !strings.Contains(stderr, `connection salesforce_api host = "`+host+`"`) || !strings.Contains(stderr, "plain HTTP, not HTTPS") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s: the login was retried", took)
	}
	if n := len(h.emu.Jobs()); n != 0 {
		t.Errorf("%d jobs created", n)
	}
}
