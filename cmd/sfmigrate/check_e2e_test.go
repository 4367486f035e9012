package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// check runs `sfmigrate check` in-process with the harness's tables config
// (check takes no --work-dir or --logs-dir: it writes nothing).
func (h *harness) check(args ...string) (code int, stdout, stderr string) {
	h.t.Helper()
	var out, errb bytes.Buffer
	all := append([]string{"check", "--tables-config", h.tables}, args...)
	code = Main(h.t.Context(), all, Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return h.env[k] }})
	return code, out.String(), errb.String()
}

// assertNothingWritten fails the test if check wrote to the org (the
// emulator's request log), created a tracker record or a job, or created
// the work or logs directory.
func (h *harness) assertNothingWritten() {
	h.t.Helper()
	if w := h.reqs.Writes(); len(w) != 0 {
		h.t.Errorf("check sent writes to the org: %+v", w)
	}
	if n, _ := h.query("SELECT COUNT() FROM Migration_Status__c"); n != 0 {
		h.t.Errorf("%d tracker records exist after check", n)
	}
	if len(h.emu.Jobs()) != 0 {
		h.t.Errorf("jobs exist after check")
	}
	for _, d := range []string{h.dir, h.logs} {
		if _, err := os.Stat(d); err == nil {
			h.t.Errorf("check created %s", d)
		}
	}
}

// TestCheckGoodConfig: on a good configuration check passes every item,
// counts rows and batches, compares the estimated API calls with the org's
// allocation (GET /limits), shows the first rows converted, and writes
// nothing anywhere.
func TestCheckGoodConfig(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 25})
	code, stdout, stderr := h.check("--table", "PRODUCTS", "--conf", `{"batch_size": 10}`, "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var rep pipeline.CheckReport
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
	}
	if !rep.OK || rep.Rows != 25 || rep.Batches != 3 || rep.APIMax != 100_000 || rep.APIRemaining <= 0 || rep.APICalls <= 3*6 || len(rep.Sample) != 5 {
		t.Errorf("report = %+v", rep)
	}
	names := map[string]bool{}
	for _, it := range rep.Checks {
		names[it.Name] = it.OK
	}
	for _, n := range []string{"source connection demo_erp", "salesforce sign-in", "API version", "daily API allocation",
		"mapping and tracker against describe", "source query and columns", "row count", "API calls against the allocation", "sample rows"} {
		if ok, found := names[n]; !found || !ok {
			t.Errorf("check %q: found %v ok %v", n, found, ok)
		}
	}
	if got := rep.Sample[0].Values[0]; got != "P-000001" {
		t.Errorf("first sample value = %q", got)
	}
	var sawLimits bool
	for _, r := range h.reqs.Requests() {
		sawLimits = sawLimits || strings.HasSuffix(r.Path, "/limits")
	}
	if !sawLimits {
		t.Errorf("no GET /limits")
	}
	h.assertNothingWritten()

	// The terminal form says the same.
	code, stdout, _ = h.check("--table", "PRODUCTS")
	if code != 0 || !strings.Contains(stdout, "every check passed: a run would load 25 rows in 1 jobs") {
		t.Errorf("exit %d:\n%s", code, stdout)
	}
}

// TestCheckBrokenConfig: check names every problem it can find in one go —
// a misspelt field (describe), a value that cannot be converted (sample) —
// exits 2 and writes nothing.
func TestCheckBrokenConfig(t *testing.T) {
	t.Parallel()
	h := newItemsHarness(t, [][]any{{"I-1", "one", "2026-01-02", nil, 1}, {"I-2", "two", "soon", nil, 7}})
	h.editTables("      NAME: Name\n", "      NAME: Nmae\n")
	code, stdout, stderr := h.check("--table", "ITEMS")
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"FAIL  mapping and tracker against describe", `"Nmae"`, "did you mean Name",
		"FAIL  sample rows", `column LAUNCHED -> Launch_Date__c: "soon"`, `column ACTIVE -> IsActive: "7"`,
		"ok    source query and columns",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "check found 2 problems") {
		t.Errorf("stderr:\n%s", stderr)
	}
	h.assertNothingWritten()
}

// TestCheckBadSourceAndVersion: a wrong order_by and an API version the
// org does not offer are both reported; the checks that depend on them are
// marked skipped, not failed.
func TestCheckBadSourceAndVersion(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 5})
	h.editTables("order_by: PRODUCT_ID\n", "order_by: PRODUCT_IDD\n")
	sf, _ := json.Marshal(map[string]any{"conn_type": "http", "host": h.srv.URL, "login": sfemu.TestClientID,
		"password": sfemu.TestClientSecret, "extra": map[string]any{"api_version": "99.0"}})
	h.env["AIRFLOW_CONN_SALESFORCE_API"] = string(sf)
	code, stdout, _ := h.check("--table", "PRODUCTS")
	if code != 2 {
		t.Fatalf("exit %d\n%s", code, stdout)
	}
	for _, want := range []string{"FAIL  API version", "does not offer", "skip  mapping and tracker against describe",
		"FAIL  source query and columns", `"PRODUCT_IDD"`, "skip  sample rows"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	h.assertNothingWritten()
}

// TestCheckAPIAllocation: a run whose estimated API calls exceed what the
// org has left today fails the check, naming both numbers.
func TestCheckAPIAllocation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 25}, sfemu.WithAPILimit(100))
	code, stdout, _ := h.check("--table", "PRODUCTS", "--conf", `{"batch_size": 1}`)
	if code != 2 || !strings.Contains(stdout, "FAIL  API calls against the allocation") || !strings.Contains(stdout, "left today") {
		t.Errorf("exit %d:\n%s", code, stdout)
	}
	h.assertNothingWritten()
}

// TestCheckJSONForSettingErrors: check --json prints a JSON line even when
// the settings cannot be resolved.
func TestCheckJSONForSettingErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 1})
	code, stdout, _ := h.check("--table", "PRODUCTZ", "--json")
	var got struct {
		Error    string `json:"error"`
		ExitCode int    `json:"exit_code"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &got); err != nil || code != 2 || got.ExitCode != 2 || !strings.Contains(got.Error, "PRODUCTS") {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
	h.assertNothingWritten()
}

// TestCheckPlan: --all-tables checks every table of a plan in turn, one
// report each, and writes nothing.
func TestCheckPlan(t *testing.T) {
	t.Parallel()
	h := newHarness(t, planSample)
	code, stdout, stderr := h.check("--all-tables", "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var got struct{ Tables []pipeline.CheckReport }
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &got); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
	}
	seen := map[string]bool{}
	for _, rep := range got.Tables {
		seen[rep.Table] = rep.OK
	}
	for _, table := range []string{"ACCOUNTS", "CONTACTS", "PRODUCTS", "PRICES"} {
		if ok, found := seen[table]; !found || !ok {
			t.Errorf("table %s: checked %v, ok %v", table, found, ok)
		}
	}
	h.assertNothingWritten()
	if code, _, stderr := h.check("--all-tables", "--table", "PRODUCTS"); code != 2 || !strings.Contains(stderr, "not both") {
		t.Errorf("--table with --all-tables: exit %d\n%s", code, stderr)
	}
}
