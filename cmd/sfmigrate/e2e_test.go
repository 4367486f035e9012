package main

// End-to-end tests: sfmigrate run as a user runs it (Main in-process, or this
// test binary re-executed as the sfmigrate process for kill tests) against a
// real SQLite source and the emulator over real HTTP.

import (
	"github.com/rogpeppe/go-internal/testscript"

	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/internal/demo"
	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/plan"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// TestMain lets the test binary act as the sfmigrate command: with
// SFMIGRATE_E2E_MAIN=1 it runs realMain (signals and all) instead of tests.
func TestMain(m *testing.M) {
	if os.Getenv("SFMIGRATE_E2E_MAIN") == "1" {
		setJobCreatedHook(os.Getenv("SFMIGRATE_E2E_AT_JOB_CREATED"))
		os.Exit(realMain())
	}
	// testscript re-executes this binary as the scripts' sfmigrate
	// command (scripts_test.go); otherwise it runs the tests.
	os.Exit(testscript.RunMain(m, map[string]func() int{"sfmigrate": realMain}))
}

// setJobCreatedHook arms pipeline.Options.BeforeRecordJob in an sfmigrate
// process started by a test, for the first job created:
//
//	kill       the process kills itself (SIGKILL): the job exists, its id
//	           is not recorded
//	fill:DIR   fills the file system of DIR (a small tmpfs) until it is
//	           full, so the manifest write of the job id fails for real
func setJobCreatedHook(spec string) {
	if spec == "" {
		return
	}
	var once sync.Once
	beforeRecordJob = func(int, string) {
		once.Do(func() {
			switch {
			case spec == "kill":
				p, _ := os.FindProcess(os.Getpid())
				p.Kill()
				select {} // the signal ends the process
			case strings.HasPrefix(spec, "fill:"):
				fillFileSystem(filepath.Join(strings.TrimPrefix(spec, "fill:"), "filler"))
			}
		})
	}
}

// fillFileSystem writes path until the file system has no space left.
func fillFileSystem(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	for len(buf) > 1 { // the last few blocks
		buf = buf[:len(buf)/2]
		for {
			if _, err := f.Write(buf); err != nil {
				break
			}
		}
	}
}

type harness struct {
	t       *testing.T
	emu     *sfemu.Server
	reqs    *sfemu.RequestLog // every request the emulator got
	srv     *httptest.Server
	dir     string // work dir
	logs    string // logs dir
	db      string // sample database
	tables  string // tables config path
	env     map[string]string
	sample  demo.Stats
	extraFl []string
}

type sample struct{ products, prices, orphans, accounts, contacts int }

func newHarness(t *testing.T, s sample, opts ...sfemu.Option) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: filepath.Join(dir, "work"), logs: filepath.Join(dir, "logs"), db: filepath.Join(dir, "erp.db"),
		tables: filepath.Join(dir, "tables.yaml")}
	st, err := demo.Generate(t.Context(), h.db, demo.Options{Products: s.products, Prices: s.prices, OrphanPrices: s.orphans, Accounts: s.accounts, Contacts: s.contacts, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	h.sample = st
	if err := os.WriteFile(h.tables, []byte(demo.TablesYAML()), 0o644); err != nil {
		t.Fatal(err)
	}
	// A request sfmigrate sends that the emulator has no route for (or that
	// panics a handler) fails the test: the client and the emulator
	// disagree about the API. Reported when the test ends, after the
	// server has stopped (cleanups run last-registered first).
	var strayMu sync.Mutex
	var stray []string
	t.Cleanup(func() {
		strayMu.Lock()
		defer strayMu.Unlock()
		for _, msg := range stray {
			t.Errorf("emulator: %s", msg)
		}
	})
	opts = append([]sfemu.Option{sfemu.WithLogger(func(format string, a ...any) {
		if msg := fmt.Sprintf(format, a...); strings.Contains(msg, "no route") || strings.Contains(msg, "panic") {
			strayMu.Lock()
			stray = append(stray, msg)
			strayMu.Unlock()
		}
	})}, opts...)
	h.emu = sfemu.New(opts...)
	h.reqs = sfemu.LogRequests(h.emu)
	h.srv = httptest.NewServer(h.reqs)
	t.Cleanup(h.srv.Close)
	sf, _ := json.Marshal(map[string]any{"conn_type": "http", "host": h.srv.URL, "login": sfemu.TestClientID, "password": sfemu.TestClientSecret})
	src, _ := json.Marshal(map[string]any{"conn_type": "sqlite", "host": h.db})
	h.env = map[string]string{"AIRFLOW_CONN_SALESFORCE_API": string(sf), "AIRFLOW_CONN_DEMO_ERP": string(src)}
	return h
}

// flags are the flags every invocation gets: the harness's files and a fast poll.
func (h *harness) flags() []string {
	return append([]string{"--tables-config", h.tables, "--work-dir", h.dir, "--logs-dir", h.logs, "--poll-interval", "2ms"}, h.extraFl...)
}

// argv puts the harness flags before the test's own, so a test can override them.
func (h *harness) argv(cmd string, args []string) []string {
	all := []string{cmd}
	if cmd == "task" && len(args) > 0 {
		all, args = append(all, args[0]), args[1:]
	}
	return append(append(all, h.flags()...), args...)
}

// main runs sfmigrate in-process: cmd followed by args and the harness flags.
func (h *harness) main(cmd string, args ...string) (code int, stdout, stderr string) {
	h.t.Helper()
	var out, errb bytes.Buffer
	all := h.argv(cmd, args)
	code = Main(h.t.Context(), all, Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return h.env[k] }})
	return code, out.String(), errb.String()
}

// command prepares sfmigrate as a subprocess (this test binary re-executed).
func (h *harness) command(cmd string, args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		h.t.Fatal(err)
	}
	c := exec.Command(exe, h.argv(cmd, args)...)
	c.Env = []string{"SFMIGRATE_E2E_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range h.env {
		c.Env = append(c.Env, k+"="+v)
	}
	return c
}

func lastLineSummary(t *testing.T, stdout string) pipeline.Summary {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var s pipeline.Summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("last stdout line is not the JSON summary: %v\nstdout:\n%s", err, stdout)
	}
	return s
}

// query runs SOQL against the emulator's REST query endpoint.
func (h *harness) query(soql string) (int, []map[string]any) {
	h.t.Helper()
	var recs []map[string]any
	n, err := emuQuery(h.t.Context(), h.srv.URL, soql, &recs)
	if err != nil {
		h.t.Fatal(err)
	}
	return n, recs
}

func (h *harness) trackerStatus(ref string) string {
	h.t.Helper()
	n, recs := h.query("SELECT Status__c FROM Migration_Status__c WHERE External_Ref__c = '" + ref + "'")
	if n != 1 {
		h.t.Fatalf("tracker records for %s: %d", ref, n)
	}
	s, _ := recs[0]["Status__c"].(string)
	return s
}

func (h *harness) manifest(runID string) *pipeline.Manifest {
	h.t.Helper()
	m, err := pipeline.ReadManifest(h.dir, runID)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

// csvRows reads a result file whole (test data is small).
func csvRows(t *testing.T, path string) (header []string, rows [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	all, err := r.ReadAll()
	if err != nil && err != io.EOF {
		t.Fatalf("%s: %v", path, err)
	}
	if len(all) == 0 {
		return nil, nil
	}
	return all[0], all[1:]
}

// jobsFor lists the emulator's jobs on one object.
func (h *harness) jobsFor(object string) []sfemu.JobSnapshot {
	var out []sfemu.JobSnapshot
	for _, j := range h.emu.Jobs() {
		if j.Object == object {
			out = append(out, j)
		}
	}
	return out
}

// checkOneJobPerBatch asserts every batch of the run has exactly one job in
// the org, and the org has no other job for the object except empty ones
// the run lists as possibly left open.
func (h *harness) checkOneJobPerBatch(runID, object string) {
	h.t.Helper()
	h.checkJobs(runID, object, false)
}

// checkJobs asserts every batch has one job in the org that carried it. With
// allowAbandoned, a batch may also have earlier jobs the loader aborted
// before they processed anything (an upload Salesforce refused): they must
// be in the manifest's previous jobs, Aborted, with nothing processed. Jobs
// the manifest does not know of (a lost create answer, a kill before the id
// was recorded) must be Open and empty, and no more than the manifest's
// possibly-open list (or Aborted: a job whose id could not be recorded).
func (h *harness) checkJobs(runID, object string, allowAbandoned bool) {
	h.t.Helper()
	m := h.manifest(runID)
	h.checkJobsOf([]*pipeline.Manifest{m}, object, allowAbandoned)
}

// checkJobsOf is checkJobs for several runs on one object.
func (h *harness) checkJobsOf(ms []*pipeline.Manifest, object string, allowAbandoned bool) {
	h.t.Helper()
	jobs := h.jobsFor(object)
	byID := map[string]sfemu.JobSnapshot{}
	for _, j := range jobs {
		byID[j.ID] = j
	}
	seen := map[string]bool{}
	batches, possiblyOpen := 0, 0
	for _, m := range ms {
		possiblyOpen += len(m.PossiblyOpenJobs)
		for _, b := range m.Batches {
			if b.Empty() {
				continue // every row rejected: no job
			}
			batches++
			if b.JobID == "" || seen[b.JobID] {
				h.t.Errorf("run %s batch %d: job %q missing or shared", m.RunID, b.Index, b.JobID)
			}
			seen[b.JobID] = true
			j, ok := byID[b.JobID]
			// A job whose rows went on into a follow-up may have ended Failed.
			if !ok || b.FollowUp == 0 && (j.State != "JobComplete" || j.NumberRecordsProcessed != b.Rows) {
				h.t.Errorf("run %s batch %d: job %s is %+v, want JobComplete with its %d rows", m.RunID, b.Index, b.JobID, j, b.Rows)
			}
			if len(b.PreviousJobs) > 0 && !allowAbandoned {
				h.t.Errorf("run %s batch %d: had earlier jobs %v", m.RunID, b.Index, b.PreviousJobs)
			}
			for _, p := range b.PreviousJobs {
				j, ok := byID[p]
				if !ok || j.State != "Aborted" || j.NumberRecordsProcessed != 0 || seen[p] {
					h.t.Errorf("run %s batch %d: earlier job %s is %+v, want an Aborted job that processed nothing", m.RunID, b.Index, p, j)
				}
				seen[p] = true
			}
		}
	}
	unknown := 0
	for _, j := range jobs {
		if seen[j.ID] {
			continue
		}
		unknown++
		if j.State != "Open" && j.State != "Aborted" || j.UploadedBytes != 0 || j.NumberRecordsProcessed != 0 {
			h.t.Errorf("job %s is in no manifest and is %+v; want only empty ones, Open (or Aborted by the run)", j.ID, j)
		}
	}
	if unknown > possiblyOpen {
		h.t.Errorf("%d %s jobs are in no manifest, but the manifests list %d possibly open", unknown, object, possiblyOpen)
	}
	if !allowAbandoned && len(jobs)-unknown != batches {
		h.t.Errorf("org has %d recorded %s jobs for %d batches: %+v", len(jobs)-unknown, object, batches, jobs)
	}
}

func TestRunLandsEverySourceRow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 700, prices: 1500}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "p1", "--conf", `{"batch_size": 200}`, "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	if s.Outcome != "succeeded" || s.Rows != 700 || s.Successful != 700 || s.Batches != 4 || s.TrackerStatus != "Uploaded" {
		t.Errorf("summary = %+v", s)
	}
	if n, _ := h.query("SELECT COUNT() FROM Product2"); n != 700 {
		t.Errorf("Product2 records in the org = %d, want 700", n)
	}
	if st := h.trackerStatus("PRODUCTS"); st != "Uploaded" {
		t.Errorf("tracker status = %q", st)
	}
	// Tricky values arrive unchanged: compare a few names with the source.
	for _, key := range []string{"P-000001", "P-000350", "P-000700"} {
		_, recs := h.query("SELECT Name FROM Product2 WHERE External_Id__c = '" + key + "'")
		if len(recs) != 1 {
			t.Fatalf("%s: %d records", key, len(recs))
		}
		want := sourceValue(t, h.db, "SELECT NAME FROM PRODUCTS WHERE PRODUCT_ID = ?", key)
		if got := recs[0]["Name"]; got != want {
			t.Errorf("%s: Name = %q, source has %q", key, got, want)
		}
	}
	// Result files: every record in a successful file; no failed or
	// unprocessed file, as those would be empty.
	var ok int
	for i := 1; i <= 4; i++ {
		for _, kind := range []string{"successful", "failed", "unprocessed"} {
			path := filepath.Join(h.logs, "p1", "PRODUCTS_0000"+string(rune('0'+i))+"_"+kind+".csv")
			switch kind {
			case "successful":
				_, rows := csvRows(t, path)
				ok += len(rows)
			default:
				if _, err := os.Stat(path); err == nil {
					t.Errorf("empty result file %s left behind", path)
				}
			}
		}
	}
	if ok != 700 {
		t.Errorf("successful result rows = %d, want 700", ok)
	}
	if _, err := os.Stat(filepath.Join(h.logs, "p1", "summary.json")); err != nil {
		t.Errorf("summary.json: %v", err)
	}
	h.checkOneJobPerBatch("p1", "Product2")
	if left, _ := filepath.Glob(filepath.Join(h.dir, "runs", "p1", "batches", "*.csv")); len(left) != 0 {
		t.Errorf("batch files left after their jobs completed: %v", left)
	}

	// Prices reference products by external id through Product__r.External_Id__c.
	code, stdout, stderr = h.main("run", "--table", "PRICES", "--run-id", "pp1", "--conf", `{"batch_size": 500}`, "--json")
	if code != 0 {
		t.Fatalf("prices: exit %d\nstderr:\n%s", code, stderr)
	}
	if n, _ := h.query("SELECT COUNT() FROM Product_Price__c"); n != 1500 {
		t.Errorf("Product_Price__c records = %d, want 1500", n)
	}
	_, recs := h.query("SELECT Product__c FROM Product_Price__c WHERE External_Id__c = 'PP-00000001'")
	_, prod := h.query("SELECT Id FROM Product2 WHERE External_Id__c = 'P-000001'")
	if len(recs) != 1 || len(prod) != 1 || recs[0]["Product__c"] != prod[0]["Id"] {
		t.Errorf("price PP-00000001 links to %v, product P-000001 is %v", recs, prod)
	}
	_ = lastLineSummary(t, stdout)
}

func sourceValue(t *testing.T, dbPath, q string, args ...any) any {
	t.Helper()
	db := openSQLite(t, dbPath)
	var v any
	if err := db.QueryRow(q, args...).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}

func TestRunWithBadRowsExits3(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 200, prices: 600, orphans: 7}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	if code, _, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "p"); code != 0 {
		t.Fatalf("products: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := h.main("run", "--table", "PRICES", "--run-id", "pp", "--conf", `{"batch_size": 250}`, "--json")
	if code != 3 {
		t.Fatalf("exit %d, want 3\nstderr:\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	if s.Failed != 7 || s.Successful != 600 || s.TrackerStatus != "In Progress" || s.Outcome != "partial" || len(s.FailedFiles) == 0 {
		t.Errorf("summary = %+v", s)
	}
	// Why they failed, grouped by error code, in the summary and on the
	// terminal; the paths are absolute.
	var reasons int64
	for _, fr := range s.FailureReasons {
		reasons += fr.Count
		if fr.Code == "" || fr.Example == "" || !strings.HasPrefix(fr.Example, fr.Code) {
			t.Errorf("failure reason %+v", fr)
		}
	}
	if reasons != 7 || len(s.FailureReasons) == 0 {
		t.Errorf("failure reasons %+v, want 7 records in all", s.FailureReasons)
	}
	if !strings.Contains(stderr, "why") || !strings.Contains(stderr, s.FailureReasons[0].Code) {
		t.Errorf("terminal summary does not show the reasons:\n%s", stderr)
	}
	// All failed records in one file, under one header.
	if header, rows := csvRows(t, s.FailedFile); len(rows) != 7 || len(header) < 3 || header[1] != "sf__Error" {
		t.Errorf("merged failed file %q: header %v, %d rows; want 7", s.FailedFile, header, len(rows))
	}
	if s.UnprocessedFile != "" {
		t.Errorf("merged unprocessed file %q with no unprocessed records", s.UnprocessedFile)
	}
	for _, p := range append([]string{s.Manifest, s.ResultsDir, s.SummaryFile, s.FailedFile}, s.FailedFiles...) {
		if !filepath.IsAbs(p) {
			t.Errorf("summary path %q is not absolute", p)
		}
	}
	if st := h.trackerStatus("PRICES"); st != "In Progress" {
		t.Errorf("tracker status = %q, want In Progress", st)
	}
	// The failed rows are in the failed-results files, with the reason.
	var failedKeys []string
	for _, f := range s.FailedFiles {
		header, rows := csvRows(t, f)
		if len(header) < 3 || header[0] != "sf__Id" || header[1] != "sf__Error" {
			t.Fatalf("%s header = %v", f, header)
		}
		for _, r := range rows {
			if !strings.Contains(r[1], "P-GONE-") && !strings.Contains(r[1], "INVALID_FIELD") {
				t.Errorf("unexpected error %q", r[1])
			}
			failedKeys = append(failedKeys, r[2])
		}
	}
	if len(failedKeys) != 7 {
		t.Errorf("failed rows in files = %d (%v), want 7", len(failedKeys), failedKeys)
	}
	for _, k := range failedKeys {
		if k < demo.PriceKey(601) {
			t.Errorf("failed key %s is not one of the orphans", k)
		}
	}
	if !strings.Contains(stderr, "7 records failed") {
		t.Errorf("stderr does not explain the failure:\n%s", stderr)
	}
}

// TestRunZeroRows: a source with no rows is outcome "no rows": exit 0 with a
// warning, no job, and the tracker is not claimed "Uploaded".
func TestRunZeroRows(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 10, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	code, stdout, stderr := h.main("run", "--table", "PRICES", "--run-id", "z", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	if s.Batches != 0 || s.Rows != 0 || s.Outcome != "no rows" || len(s.Warnings) == 0 {
		t.Errorf("summary = %+v", s)
	}
	if !strings.Contains(stderr, "no rows") {
		t.Errorf("no warning about zero rows:\n%s", stderr)
	}
	if jobs := h.jobsFor("Product_Price__c"); len(jobs) != 0 {
		t.Errorf("jobs created for zero rows: %+v", jobs)
	}
	if st := h.trackerStatus("PRICES"); st == "Uploaded" {
		t.Errorf("tracker = %q after a run that loaded nothing", st)
	}
}

func TestFailedJobLeavesUnprocessedRows(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 300, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.emu.FailNextJob("InvalidBatch : Failed to process query: simulated")
	// record_retries 0: no follow-up job re-submits the unprocessed rows
	// (TestFailedJobRowsLandInFollowUp is the default).
	code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "f", "--conf", `{"batch_size": 100, "parallel": 1, "record_retries": 0}`, "--json")
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	if s.JobsFailed != 1 || s.Unprocessed != 100 || s.Successful != 200 || s.TrackerStatus != "In Progress" || len(s.UnprocessedFiles) != 1 {
		t.Errorf("summary = %+v", s)
	}
	_, rows := csvRows(t, s.UnprocessedFiles[0])
	if len(rows) != 100 {
		t.Errorf("unprocessed file has %d rows, want 100", len(rows))
	}
	// A rerun does not give the failed batch a second job: the outcome stands.
	jobs := len(h.emu.Jobs())
	code, _, stderr = h.main("run", "--run-id", "f", "--conf", `{"record_retries": 0}`)
	if code != 3 || len(h.emu.Jobs()) != jobs {
		t.Errorf("rerun: exit %d, jobs %d -> %d\n%s", code, jobs, len(h.emu.Jobs()), stderr)
	}
}

func TestDemoCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := Main(t.Context(), []string{"demo", "--dir", dir, "--products", "300", "--prices", "900", "--accounts", "60", "--contacts", "90", "--batch-size", "250", "--json"},
		Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errb.String())
	}
	var res struct {
		Dir  string       `json:"dir"`
		Plan plan.Summary `json:"plan"`
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line: %v\n%s", err, out.String())
	}
	got := map[string]int64{}
	for _, s := range res.Plan.Steps {
		got[s.ID] = s.Successful
	}
	want := map[string]int64{"ACCOUNTS": 60, "CONTACTS": 90, "PRODUCTS": 300, "PRICES": 900, "ACCOUNTS.pass2": 60}
	if res.Plan.Outcome != "succeeded" || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("plan = %+v", res.Plan)
	}
	for _, w := range []string{"holds 300 Product2 records", "holds 900 Product_Price__c records", "holds 60 Account records", "holds 90 Contact records",
		"20 accounts have their parent account set"} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("demo output lacks %q:\n%s", w, errb.String())
		}
	}
	// With orphaned prices the demo shows failures and exits 3.
	code = Main(t.Context(), []string{"demo", "--dir", t.TempDir(), "--products", "50", "--prices", "100", "--orphans", "4"},
		Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	if code != 3 {
		t.Errorf("demo with orphans: exit %d, want 3", code)
	}
}

// TestTrackerRecordMustExistWhenNotCreated: with status_tracker.create:
// false the run refuses to start (exit 2) until the record exists, and then
// only ever updates it.
func TestTrackerRecordMustExistWhenNotCreated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 20, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	cfg, _ := os.ReadFile(h.tables)
	os.WriteFile(h.tables, []byte(strings.Replace(string(cfg), "status_tracker:\n", "status_tracker:\n  create: false\n", 1)), 0o644)
	code, _, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "nc")
	if code != 2 || !strings.Contains(stderr, `External_Ref__c = "PRODUCTS"`) || !strings.Contains(stderr, "create: true") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if n := len(h.emu.Jobs()); n != 0 {
		t.Fatalf("%d jobs created before the tracker check", n)
	}
	// Someone creates the record; the same run id now goes through.
	createTracker(t, h.srv.URL, "PRODUCTS", "Not Started")
	if code, _, stderr := h.main("run", "--run-id", "nc"); code != 0 {
		t.Fatalf("after creating the record: exit %d\n%s", code, stderr)
	}
	if st := h.trackerStatus("PRODUCTS"); st != "Uploaded" {
		t.Errorf("tracker = %q", st)
	}
}

// TestBoundedFilesWaiting: when Salesforce falls behind, extraction waits:
// the batch files on disk stay within what is in flight plus the queue.
func TestBoundedFilesWaiting(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 2000, prices: 0}, sfemu.WithProcessing(sfemu.ProcessManual, 0))
	done := make(chan int, 1)
	go func() {
		code, _, _ := h.main("run", "--table", "PRODUCTS", "--run-id", "b", "--conf", `{"batch_size": 100, "parallel": 2, "max_jobs_in_flight": 2}`)
		done <- code
	}()
	// Wait until the run stalls on the held jobs.
	var files []string
	stable := 0
	for i := 0; i < 5000 && stable < 50; i++ {
		time.Sleep(2 * time.Millisecond)
		now, _ := filepath.Glob(filepath.Join(h.dir, "runs", "b", "batches", "*.csv"))
		if len(now) == len(files) && len(h.heldJobs()) == 2 {
			stable++
		} else {
			stable = 0
		}
		files = now
	}
	// max_jobs_in_flight (2) in the org + 1 taken by the loader + 1 in the feeder + 1 queued + 1 just written.
	if len(files) == 0 || len(files) > 6 {
		t.Errorf("%d batch files on disk while 2 jobs are held (20 batches in all): %v", len(files), files)
	}
	// Upload started while extraction was still going: overlap, not a sequence.
	if m := h.manifest("b"); m.Extract.Done || m.Totals().Jobs == 0 {
		t.Errorf("extract done %v with %d jobs: extraction and upload did not overlap", m.Extract.Done, m.Totals().Jobs)
	}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	h.processJobsWhile(ctx)
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n, _ := h.query("SELECT COUNT() FROM Product2"); n != 2000 {
		t.Errorf("org holds %d", n)
	}
}

// TestLostCreateAnswer: the answer to a job creation is lost (the job
// exists in the org, the run never learnt its id). The run goes on with a
// new job for the batch, leaves the unknown job alone (it holds no data)
// and lists it in the summary.
func TestLostCreateAnswer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 300, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.emu.AddFault(sfemu.Fault{Method: "POST", Path: "/jobs/ingest", Count: 1, DropAfterHandling: true})
	code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "lost", "--conf", `{"batch_size": 100, "parallel": 1}`, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	s := h.checkAllLanded(stdout, 300)
	h.checkOneJobPerBatch("lost", "Product2")
	if p := s.PossiblyOpenJobs; p == nil || p.Count != 1 || p.Object != "Product2" || p.To.Before(p.From) {
		t.Errorf("summary lists %+v as possibly open, want 1 Product2 job", p)
	}
	open := 0
	for _, j := range h.jobsFor("Product2") {
		if j.State == "Open" {
			open++
		}
	}
	if open != 1 {
		t.Errorf("%d Open jobs in the org, want the 1 whose answer was lost", open)
	}
	if !strings.Contains(stderr, "may hold 1 empty Open Product2 job") {
		t.Errorf("the summary table does not mention the possibly open job:\n%s", stderr)
	}
}

// TestFlakyOrg: with one request in ten answered 503 or 429 the run still
// lands every row exactly once (the client retries; nothing is duplicated).
func TestFlakyOrg(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 400, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.emu.AddFault(sfemu.Fault{Share: 0.05, Status: 503})
	h.emu.AddFault(sfemu.Fault{Share: 0.05, Status: 429})
	code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "flaky", "--conf", `{"batch_size": 50}`, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	h.emu.ClearFaults() // the test's own checks below are not the run's to retry
	h.checkAllLanded(stdout, 400)
	// A refused upload makes the loader abort that job and start another:
	// allowed, as long as the aborted job processed nothing.
	h.checkJobs("flaky", "Product2", true)
}

// TestValuesArriveAsInTheSource compares what the org holds with the source
// rows for the values that break migrations: long texts with CRLF line
// breaks, local timestamps (Europe/Berlin, DST gap and overlap included),
// dates, booleans, NULLs left unset.
func TestValuesArriveAsInTheSource(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 600, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	if code, _, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "v"); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	db := openSQLite(t, h.db)
	rows, err := db.Query(`SELECT PRODUCT_ID, NAME, DESCRIPTION, ACTIVE, LAUNCH_DATE, LAST_CHANGED FROM PRODUCTS ORDER BY PRODUCT_ID`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	type src struct {
		name, desc      sql.NullString
		launch, changed sql.NullTime // the driver reads DATE/TIMESTAMP text as wall-clock times
		active          sql.NullBool
	}
	want := map[string]src{}
	for rows.Next() {
		var id string
		var s src
		if err := rows.Scan(&id, &s.name, &s.desc, &s.active, &s.launch, &s.changed); err != nil {
			t.Fatal(err)
		}
		want[id] = s
	}
	_, recs := h.query("SELECT External_Id__c, Name, Description, IsActive, Launch_Date__c, Last_Changed__c FROM Product2")
	if len(recs) != len(want) {
		t.Fatalf("org holds %d products, source %d", len(recs), len(want))
	}
	checked := map[string]int{}
	for _, r := range recs {
		id, _ := r["External_Id__c"].(string)
		s, ok := want[id]
		if !ok {
			t.Errorf("org has unknown product %q", id)
			continue
		}
		if r["Name"] != s.name.String {
			t.Errorf("%s Name = %q, source %q", id, r["Name"], s.name.String)
		}
		// Salesforce keeps line breaks; the file carries CRLF as LF (a CR
		// would break an LF job), so compare with CRLF folded.
		if d, _ := r["Description"].(string); d != strings.ReplaceAll(s.desc.String, "\r\n", "\n") {
			if s.desc.Valid && s.desc.String != "" || d != "" {
				t.Errorf("%s Description = %.60q, source %.60q", id, d, s.desc.String)
			}
		}
		if s.desc.Valid && strings.Contains(s.desc.String, "\r\n") {
			checked["crlf"]++
		}
		if s.active.Valid && r["IsActive"] != s.active.Bool {
			t.Errorf("%s IsActive = %v, source %v", id, r["IsActive"], s.active.Bool)
		}
		if s.launch.Valid && r["Launch_Date__c"] != s.launch.Time.Format(time.DateOnly) {
			t.Errorf("%s Launch_Date__c = %v, source %v", id, r["Launch_Date__c"], s.launch.Time)
		}
		if !s.launch.Valid && r["Launch_Date__c"] != nil {
			t.Errorf("%s Launch_Date__c = %v, source NULL", id, r["Launch_Date__c"])
		}
		if s.changed.Valid {
			w := s.changed.Time
			local := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), berlin)
			gotText, _ := r["Last_Changed__c"].(string)
			got, err := time.Parse("2006-01-02T15:04:05.000-0700", gotText)
			if err != nil {
				got, err = time.Parse(time.RFC3339Nano, gotText)
			}
			if err != nil || !got.Equal(local) {
				t.Errorf("%s Last_Changed__c = %q, source %s Berlin = %s", id, gotText, w.Format(time.DateTime), local.UTC().Format(time.RFC3339Nano))
			}
			checked["timestamps"]++
		}
	}
	if checked["crlf"] == 0 || checked["timestamps"] < 500 {
		t.Errorf("sample too small to cover the tricky values: %v", checked)
	}
}
