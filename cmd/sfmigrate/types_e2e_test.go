package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
