package extract

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/airflow"
)

// suiteCheckCountSample: Check compiles the query and finds the columns
// without reading or writing rows, Count counts them, Sample converts the
// first rows in key order and names values that cannot be written.
func suiteCheckCountSample(t *testing.T, h *engineHarness) {
	name := seqTable(t, h, 25)
	src := h.open(t)
	tbl := Table{Name: "SEQ", Query: "SELECT id, grp, payload FROM " + name + " WHERE id <= 20", OrderBy: []string{"id"}, Fields: seqFields()}
	cols, err := src.Check(t.Context(), tbl)
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != 2 || cols[0].Column != "id" || cols[0].Field != "External_Id__c" || cols[1].Kind != "text" && h.name != "sqlite" {
		t.Errorf("columns = %+v", cols)
	}
	n, err := src.Count(t.Context(), tbl)
	if err != nil || n != 20 {
		t.Errorf("count = %d, %v; want 20", n, err)
	}
	rows, err := src.Sample(t.Context(), tbl, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0].Key[0] != "1" || rows[2].Values[0] != "3" || !strings.HasPrefix(rows[1].Values[1], `"row 2, payload`) {
		t.Errorf("sample = %+v", rows)
	}
	// A value that cannot go into its field's type is named, and the sample goes on.
	bad := tbl
	bad.Fields = []Field{{Column: "id", Name: "External_Id__c"}, {Column: "payload", Name: "Launch_Date__c", Type: "date"}}
	rows, err = src.Sample(t.Context(), bad, 2)
	if err != nil || len(rows) != 2 || len(rows[0].Problems) != 1 || !strings.Contains(rows[0].Problems[0], `column payload -> Launch_Date__c: "row 1, payload z"`) {
		t.Errorf("sample of a text column into a date field = %+v, %v", rows, err)
	}
	// Unknown columns are configuration errors naming the column.
	missing := tbl
	missing.OrderBy = []string{"idd"}
	_, err = src.Check(t.Context(), missing)
	var ce *ColumnError
	if !errors.As(err, &ce) || ce.Name != "idd" || ce.What != "order_by column" || !ce.ConfigError() {
		t.Errorf("check with order_by idd: %v", err)
	}
	// A query that does not compile is a QueryError.
	broken := tbl
	broken.Query = "SELECT id, payload FROM " + name + " WHERE nope = 1"
	_, err = src.Check(t.Context(), broken)
	var qe *QueryError
	if !errors.As(err, &qe) {
		t.Errorf("check of a broken query: %v", err)
	}
	// Nothing was written anywhere: Check, Count and Sample take no directory.
}

// TestOpenRefusesNonDatabase: a file that is not a SQLite database fails at
// Open, naming the file, not later as a query error.
func TestOpenRefusesNonDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, []byte(strings.Repeat("plain text, not SQLite\n", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), airflow.Connection{ID: "erp", Type: "sqlite", Host: path})
	wantAll(t, err, path, "cannot be read as a SQLite database", "not a database")
}

// TestTypeProblem: columns whose type cannot go into the field's type are
// found without reading a value.
func TestTypeProblem(t *testing.T) {
	for _, c := range []struct {
		src    srcKind
		sfType string
		bad    bool
	}{
		{srcDate, "double", true}, {srcTimestamp, "boolean", true}, {srcInt, "date", true}, {srcBool, "datetime", true},
		{srcBinary, "string", true}, {srcMoney, "currency", true},
		{srcText, "date", false}, {srcInt, "boolean", false}, {srcDecimal, "currency", false}, {srcTimestamp, "date", false},
		{srcDate, "string", false}, {srcAuto, "date", false},
	} {
		if got := typeProblem(c.src, c.sfType) != ""; got != c.bad {
			t.Errorf("typeProblem(%s, %s) = %q", c.src, c.sfType, typeProblem(c.src, c.sfType))
		}
	}
}
