package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// itemsTables maps a hand-made SQLite table onto Product2: a DATETIME column
// into the date field Launch_Date__c, an INTEGER 0/1 column into the boolean
// IsActive, a DATETIME into the datetime Last_Changed__c.
const itemsTables = `tables:
  ITEMS:
    source: items_db
    table: ITEMS
    order_by: ID
    sf_object: Product2
    external_id_field: External_Id__c
    fields:
      ID: External_Id__c
      NAME: Name
      LAUNCHED: Launch_Date__c
      CHANGED: Last_Changed__c
      ACTIVE: IsActive
`

// newItemsHarness is a harness whose tables config is itemsTables over a
// SQLite file holding rows (ID, NAME, LAUNCHED, CHANGED, ACTIVE).
func newItemsHarness(t *testing.T, rows [][]any) *harness {
	t.Helper()
	h := newHarness(t, sample{products: 1}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	path := filepath.Join(t.TempDir(), "items.db")
	db := openSQLite(t, path)
	if _, err := db.Exec(`CREATE TABLE ITEMS (ID TEXT PRIMARY KEY, NAME TEXT NOT NULL, LAUNCHED DATETIME, CHANGED DATETIME, ACTIVE INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if _, err := db.Exec(`INSERT INTO ITEMS VALUES (?, ?, ?, ?, ?)`, r...); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(h.tables, []byte(itemsTables), 0o644); err != nil {
		t.Fatal(err)
	}
	conn, _ := json.Marshal(map[string]any{"conn_type": "sqlite", "host": path})
	h.env["AIRFLOW_CONN_ITEMS_DB"] = string(conn)
	return h
}

// TestFieldTypesFromDescribe: the authenticate step records each mapped
// field's describe type in the manifest and extraction writes values in
// that form: a DATETIME column lands in a date field as yyyy-MM-dd, an
// INTEGER 0/1 in a boolean field as true/false.
func TestFieldTypesFromDescribe(t *testing.T) {
	t.Parallel()
	h := newItemsHarness(t, [][]any{
		{"I-1", "First", "2026-03-29 23:30:00", "2026-03-29 23:30:00", 1},
		{"I-2", "Second", "2024-02-29 00:00:00", "2024-02-29 12:00:01.250", 0},
		{"I-3", "Third", nil, nil, nil},
	})
	code, stdout, stderr := h.main("run", "--table", "ITEMS", "--run-id", "types", "--keep-batches", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if s := lastLineSummary(t, stdout); s.Successful != 3 {
		t.Fatalf("summary = %+v", s)
	}
	m := h.manifest("types")
	want := map[string]string{"External_Id__c": "string", "Name": "string", "Launch_Date__c": "date", "Last_Changed__c": "datetime", "IsActive": "boolean"}
	if m.Target == nil || m.Target.Object != "Product2" || len(m.Target.Fields) != len(want) {
		t.Fatalf("manifest target = %+v", m.Target)
	}
	for _, f := range m.Target.Fields {
		if f.Type != want[f.Name] {
			t.Errorf("manifest: %s type %q, want %q", f.Name, f.Type, want[f.Name])
		}
		if f.Name == "Name" && f.Length != 255 {
			t.Errorf("manifest: Name length %d, want 255", f.Length)
		}
	}
	data, err := os.ReadFile(filepath.Join(h.dir, "runs", "types", m.Batches[0].File))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "I-1,First,2026-03-29,2026-03-29T23:30:00.000Z,true\n") {
		t.Errorf("batch file:\n%s", data)
	}
	_, recs := h.query("SELECT External_Id__c, Launch_Date__c, IsActive FROM Product2")
	got := map[string]string{}
	for _, r := range recs {
		d, _ := r["Launch_Date__c"].(string)
		got[r["External_Id__c"].(string)] = d + " " + strings.TrimSpace(jsonText(r["IsActive"]))
	}
	for id, w := range map[string]string{"I-1": "2026-03-29 true", "I-2": "2024-02-29 false", "I-3": " false"} {
		if got[id] != w {
			t.Errorf("%s: Launch_Date__c IsActive = %q, want %q", id, got[id], w)
		}
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestOverLongValueFailsExtraction: a value longer than its field's
// describe length stops the run before anything is uploaded, naming the
// table, row, column, field and limit, and the fix.
func TestOverLongValueFailsExtraction(t *testing.T) {
	t.Parallel()
	h := newItemsHarness(t, [][]any{
		{"I-1", "ok", nil, nil, 1},
		{"I-2", strings.Repeat("é", 256), nil, nil, 1},
	})
	code, _, stderr := h.main("run", "--table", "ITEMS", "--run-id", "long")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	for _, w := range []string{"ITEMS", "row 1 (ID=I-2)", "column NAME", "field Name", "256 characters", "limit of 255", "fix:"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	if n := len(h.emu.Jobs()); n != 0 {
		t.Errorf("%d jobs created for a table that failed extraction", n)
	}
	m := h.manifest("long")
	if len(m.Batches) != 0 || m.Extract.Done || m.Steps[pipeline.StepExtract].State != pipeline.StateFailed {
		t.Errorf("manifest after the failure: batches %d, extract %+v, step %+v", len(m.Batches), m.Extract, m.Steps[pipeline.StepExtract])
	}
	if left, _ := filepath.Glob(filepath.Join(h.dir, "runs", "long", "batches", "*")); len(left) != 0 {
		t.Errorf("files left in the batch directory: %v", left)
	}
}

// TestTaskExtractNeedsDescribe: extract as a separate task takes the field
// types from the manifest, so it needs the authenticate step first.
func TestTaskExtractNeedsDescribe(t *testing.T) {
	t.Parallel()
	h := newItemsHarness(t, [][]any{{"I-1", "one", "2026-01-02 03:04:05", nil, 1}})
	code, _, stderr := h.main("task", "extract", "--run-id", "x", "--table", "ITEMS")
	if code != 2 || !strings.Contains(stderr, "sfmigrate task authenticate --run-id x") {
		t.Fatalf("extract before authenticate: exit %d\n%s", code, stderr)
	}
	for _, step := range [][]string{{"authenticate", "--table", "ITEMS"}, {"extract"}} {
		if code, _, stderr := h.main("task", append([]string{step[0], "--run-id", "x", "--keep-batches"}, step[1:]...)...); code != 0 {
			t.Fatalf("task %s: exit %d\n%s", step[0], code, stderr)
		}
	}
	m := h.manifest("x")
	data, err := os.ReadFile(filepath.Join(h.dir, "runs", "x", m.Batches[0].File))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "I-1,one,2026-01-02,,true\n") {
		t.Errorf("batch file written by task extract:\n%s", data)
	}
}

// TestQueryRefusedBeforeAnyWrite: a query the source rejects fails the
// run once (exit 2: the tables config must change) with the database's
// message, naming the setting. It is found by compiling the query in the
// authenticate step, before the tracker is written: no extract or upload
// step starts and nothing is sent.
func TestQueryRefusedBeforeAnyWrite(t *testing.T) {
	t.Parallel()
	h := newItemsHarness(t, [][]any{{"I-1", "one", nil, nil, 1}})
	cfg, _ := os.ReadFile(h.tables)
	os.WriteFile(h.tables, []byte(strings.Replace(string(cfg), "    table: ITEMS\n",
		"    query: SELECT ID, NAME, LAUNCHED, CHANGED, ACTIVE FROM ITEMS WHERE NOPE = 1\n", 1)), 0o644)
	code, _, stderr := h.main("run", "--table", "ITEMS", "--run-id", "q")
	if code != 2 || strings.Count(stderr, "no such column: NOPE") != 1 || !strings.Contains(stderr, "tables.ITEMS.query") {
		t.Fatalf("exit %d, want 2 with the database's message once, naming tables.ITEMS.query:\n%s", code, stderr)
	}
	for _, bad := range []string{"interrupted", "extract ITEMS from", "extract ITEMS: extract ITEMS"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr says %q:\n%s", bad, stderr)
		}
	}
	m := h.manifest("q")
	if st := m.Steps[pipeline.StepAuthenticate]; st == nil || st.State != pipeline.StateFailed || !strings.Contains(st.Error, "NOPE") {
		t.Errorf("authenticate step = %+v", st)
	}
	if st := m.Steps[pipeline.StepExtract]; st != nil {
		t.Errorf("extract step started: %+v", st)
	}
	if n := len(h.emu.Jobs()); n != 0 {
		t.Errorf("%d jobs created", n)
	}
	if n, _ := h.query("SELECT COUNT() FROM Migration_Status__c"); n != 0 {
		t.Errorf("%d tracker records written", n)
	}
}

// TestUploadRefusedForGood: when Salesforce refuses a batch's data with an
// answer a new job would get again (here 413, over the org's upload
// limit), the batch is not given job after job, and the run's error is
// Salesforce's refusal, not "job state ".
func TestUploadRefusedForGood(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 50}, sfemu.WithProcessing(sfemu.ProcessInstant, 0), sfemu.WithMaxUploadBytes(2000))
	code, _, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "big", "--conf", `{"parallel": 1}`)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if last := lines[len(lines)-1]; code != 1 || !strings.Contains(last, "batch 1 got no job") || !strings.Contains(last, "413") {
		t.Fatalf("exit %d, last line %q\n%s", code, last, stderr)
	}
	if n := len(h.jobsFor("Product2")); n != 1 {
		t.Errorf("%d jobs for a batch Salesforce refuses, want 1", n)
	}
	if b := h.manifest("big").Batches[0]; b.ErrorMessage == "" || len(b.PreviousJobs) != 1 {
		t.Errorf("batch = %+v", b)
	}
}
