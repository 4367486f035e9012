package extract

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sfmigrate/sfmigrate/airflow"
)

// engineHarness is one real database the shared suite runs against (SQLite
// always; PostgreSQL and Oracle when their test connection is set).
type engineHarness struct {
	name string
	conn airflow.Connection
	// exec runs setup statements (DDL, INSERT) on the database.
	exec func(t *testing.T, stmts ...string)
	// types maps the suite's logical column types to this engine's DDL.
	types map[string]string
	// boolLit renders a boolean literal.
	boolLit func(bool) string
	// decimalOut is the CSV text expected for a decimal literal stored in
	// a "decimal" column.
	decimalOut func(lit string) string
	// binLit is a literal for a "binary" column.
	binLit func() string
	// table returns a fresh table name, dropped when the test ends.
	table func(t *testing.T) string
}

// open opens a Source on the harness database, closed at the end of the test.
func (h *engineHarness) open(t *testing.T) *Source {
	t.Helper()
	src, err := Open(t.Context(), h.conn)
	if err != nil {
		t.Fatalf("open %s: %v", h.name, err)
	}
	t.Cleanup(func() {
		if err := src.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return src
}

// createTable creates table name with the given logical columns and rows
// (each a list of SQL literals).
func (h *engineHarness) createTable(t *testing.T, name string, cols [][2]string, rows [][]string) {
	t.Helper()
	var defs []string
	for _, c := range cols {
		typ, ok := h.types[c[1]]
		if !ok {
			t.Fatalf("harness %s has no type %q", h.name, c[1])
		}
		defs = append(defs, c[0]+" "+typ)
	}
	stmts := []string{"CREATE TABLE " + name + " (" + strings.Join(defs, ", ") + ")"}
	for _, r := range rows {
		stmts = append(stmts, "INSERT INTO "+name+" VALUES ("+strings.Join(r, ", ")+")")
	}
	h.exec(t, stmts...)
}

// sqlStr is a SQL string literal.
func sqlStr(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// readCSV parses a batch file with encoding/csv (the reference reader) and
// checks the file-level rules: no BOM, LF line endings, no CR anywhere.
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		t.Errorf("%s starts with a BOM", path)
	}
	if bytes.IndexByte(data, '\r') >= 0 {
		t.Errorf("%s contains a CR", path)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("%s does not end with LF", path)
	}
	r := csv.NewReader(bytes.NewReader(data))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return recs
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// runSuite runs every engine-independent extraction test against h.
func runSuite(t *testing.T, h *engineHarness) {
	t.Run("Values", func(t *testing.T) { suiteValues(t, h) })
	t.Run("SpecialText", func(t *testing.T) { suiteSpecialText(t, h) })
	t.Run("Batches", func(t *testing.T) { suiteBatches(t, h) })
	t.Run("ByteCap", func(t *testing.T) { suiteByteCap(t, h) })
	t.Run("Resume", func(t *testing.T) { suiteResume(t, h) })
	t.Run("ZeroRows", func(t *testing.T) { suiteZeroRows(t, h) })
	t.Run("Errors", func(t *testing.T) { suiteErrors(t, h) })
	t.Run("Cancel", func(t *testing.T) { suiteCancel(t, h) })
	t.Run("SourceTimeZone", func(t *testing.T) { suiteTimeZone(t, h) })
	t.Run("QueryForm", func(t *testing.T) { suiteQueryForm(t, h) })
	t.Run("QueryErrors", func(t *testing.T) { suiteQueryErrors(t, h) })
	t.Run("RejectedRows", func(t *testing.T) { suiteRejectedRows(t, h) })
	t.Run("RejectLimit", func(t *testing.T) { suiteRejectLimit(t, h) })
	t.Run("Truncate", func(t *testing.T) { suiteTruncate(t, h) })
	t.Run("OnlyKeys", func(t *testing.T) { suiteOnlyKeys(t, h) })
	t.Run("CheckCountSample", func(t *testing.T) { suiteCheckCountSample(t, h) })
}

// suiteValues checks the Bulk API form of every column type.
func suiteValues(t *testing.T, h *engineHarness) {
	name := h.table(t)
	cols := [][2]string{
		{"id", "int"}, {"code", "text"}, {"price", "decimal"}, {"qty", "int"}, {"ratio", "float"},
		{"active", "bool"}, {"launch", "date"}, {"updated", "timestamp"}, {"note", "text"}, {"body", "bigtext"},
	}
	big := strings.Repeat("x", 70_000) + "é" // over 64 KiB: CLOB / text kept whole
	rows := [][]string{
		{"1", sqlStr("A-1"), sqlStr("1234.5000"), "7", "0.1", h.boolLit(true), sqlStr("2024-02-29"), sqlStr("2024-03-01 23:59:58.123456"), sqlStr("plain"), sqlStr(big)},
		{"2", sqlStr("A-2"), sqlStr("-0.0001"), "-3", "1e-07", h.boolLit(false), sqlStr("1999-12-31"), sqlStr("2000-01-01 00:00:00"), "NULL", "NULL"},
		{"3", sqlStr("A-3"), sqlStr("99999999999999.9999"), "0", "123456789.125", h.boolLit(true), sqlStr("2020-01-01"), sqlStr("2020-06-15 12:00:00.999"), sqlStr("x"), sqlStr("short")},
	}
	h.createTable(t, name, cols, rows)
	src := h.open(t)
	tb := Table{Name: "VALS", From: name, OrderBy: []string{"id"}, Fields: []Field{
		{Column: "id", Name: "Id__c"}, {Column: "code", Name: "External_Id__c"}, {Column: "price", Name: "Price__c"},
		{Column: "qty", Name: "Qty__c"}, {Column: "ratio", Name: "Ratio__c"}, {Column: "active", Name: "IsActive", Type: "boolean"},
		{Column: "launch", Name: "Launch_Date__c", Type: "date"}, {Column: "updated", Name: "Last_Changed__c"},
		{Column: "note", Name: "Note__c"}, {Column: "body", Name: "Body__c"},
	}}
	dir := t.TempDir()
	res, err := src.Extract(t.Context(), tb, Options{Dir: dir, BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 3 || len(res.Batches) != 1 {
		t.Fatalf("got %d rows in %d batches, want 3 in 1", res.Rows, len(res.Batches))
	}
	got := readCSV(t, res.Batches[0].Path)
	want := [][]string{
		{"Id__c", "External_Id__c", "Price__c", "Qty__c", "Ratio__c", "IsActive", "Launch_Date__c", "Last_Changed__c", "Note__c", "Body__c"},
		{"1", "A-1", h.decimalOut("1234.5000"), "7", "0.1", "true", "2024-02-29", "2024-03-01T23:59:58.123Z", "plain", big},
		{"2", "A-2", h.decimalOut("-0.0001"), "-3", "0.0000001", "false", "1999-12-31", "2000-01-01T00:00:00.000Z", "", ""},
		{"3", "A-3", h.decimalOut("99999999999999.9999"), "0", "123456789.125", "true", "2020-01-01", "2020-06-15T12:00:00.999Z", "x", "short"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("batch file (-want +got):\n%.3000s", diff)
	}
}

// suiteSpecialText checks that every CSV special character round-trips and
// NULL handling in both modes.
func suiteSpecialText(t *testing.T, h *engineHarness) {
	name := h.table(t)
	values := []string{
		`comma, inside`, `quote " inside`, `""`, "line\nbreak", "crlf\r\nbreak", "lone\rcr",
		" leading and trailing ", "ünïcødé 日本語 🚀", `#`, `a,"b",c` + "\n",
	}
	var rows [][]string
	for i, v := range values {
		rows = append(rows, []string{fmt.Sprint(i + 1), sqlStr(v)})
	}
	rows = append(rows, []string{fmt.Sprint(len(values) + 1), "NULL"})
	h.createTable(t, name, [][2]string{{"id", "int"}, {"val", "text"}}, rows)
	src := h.open(t)
	for _, mode := range []NullMode{NullKeep, NullClear} {
		t.Run(mode.String(), func(t *testing.T) {
			tb := Table{Name: "TXT", From: name, OrderBy: []string{"id"}, NullAs: mode,
				Fields: []Field{{Column: "id", Name: "Id__c"}, {Column: "val", Name: "Val__c"}}}
			res, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			got := readCSV(t, res.Batches[0].Path)
			want := [][]string{{"Id__c", "Val__c"}}
			for i, v := range values {
				// CR LF and lone CR become LF (documented in format.go).
				v = strings.ReplaceAll(strings.ReplaceAll(v, "\r\n", "\n"), "\r", "\n")
				want = append(want, []string{fmt.Sprint(i + 1), v})
			}
			null := ""
			if mode == NullClear {
				null = "#N/A"
			}
			want = append(want, []string{fmt.Sprint(len(values) + 1), null})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// seqTable creates a table of n rows: id 1..n, grp = id % 3, and a payload.
func seqTable(t *testing.T, h *engineHarness, n int) string {
	t.Helper()
	name := h.table(t)
	rows := make([][]string, n)
	for i := range rows {
		id := i + 1
		rows[i] = []string{fmt.Sprint(id), fmt.Sprint(id % 3), sqlStr(fmt.Sprintf("row %d, payload %s", id, strings.Repeat("z", id%17)))}
	}
	h.createTable(t, name, [][2]string{{"id", "int"}, {"grp", "int"}, {"payload", "text"}}, rows)
	return name
}

func seqFields() []Field {
	return []Field{{Column: "id", Name: "External_Id__c"}, {Column: "payload", Name: "Name"}}
}

// suiteBatches checks file naming, row counts, checksums, positions and the
// OnBatch contract.
func suiteBatches(t *testing.T, h *engineHarness) {
	name := seqTable(t, h, 2500)
	src := h.open(t)
	dir := filepath.Join(t.TempDir(), "runs", "r1", "batches") // created by Extract
	var seen []Batch
	var progress atomic.Int64
	res, err := src.Extract(t.Context(), Table{Name: "SEQ", From: name, OrderBy: []string{"id"}, Fields: seqFields()}, Options{
		Dir: dir, BatchSize: 1000, Start: Position{BatchIndex: 1},
		OnBatch: func(ctx context.Context, b Batch) error {
			// The file is complete and final when OnBatch runs.
			if _, err := os.Stat(b.Path); err != nil {
				t.Errorf("OnBatch(%d): %v", b.Index, err)
			}
			if _, err := os.Stat(b.Path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("OnBatch(%d): temp file still there (%v)", b.Index, err)
			}
			if got := fileSHA(t, b.Path); got != b.SHA256 {
				t.Errorf("batch %d: SHA256 %s, file hashes to %s", b.Index, b.SHA256, got)
			}
			seen = append(seen, b)
			return nil
		},
		OnRows: func(n int64) { progress.Store(n) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(res.Batches, seen); diff != "" {
		t.Errorf("OnBatch calls differ from Result (-result +onbatch):\n%s", diff)
	}
	if res.Rows != 2500 || progress.Load() != 2500 {
		t.Errorf("rows %d, progress %d; want 2500", res.Rows, progress.Load())
	}
	want := []struct {
		index    int
		rows     int64
		firstRow int64
		lastKey  string
	}{{1, 1000, 0, "1000"}, {2, 1000, 1000, "2000"}, {3, 500, 2000, "2500"}}
	if len(res.Batches) != len(want) {
		t.Fatalf("%d batches, want %d", len(res.Batches), len(want))
	}
	for i, w := range want {
		b := res.Batches[i]
		if b.Index != w.index || b.Rows != w.rows || b.FirstRow != w.firstRow || len(b.LastKey) != 1 || b.LastKey[0] != w.lastKey {
			t.Errorf("batch %d = %+v, want index %d rows %d first row %d last key %s", i, b, w.index, w.rows, w.firstRow, w.lastKey)
		}
		if wantPath := filepath.Join(dir, fmt.Sprintf("SEQ_%05d.csv", w.index)); b.Path != wantPath {
			t.Errorf("path %s, want %s", b.Path, wantPath)
		}
		fi, err := os.Stat(b.Path)
		if err != nil || fi.Size() != b.Bytes {
			t.Errorf("batch %d: size %v (%v), reported %d", b.Index, fi, err, b.Bytes)
		}
		recs := readCSV(t, b.Path)
		if int64(len(recs)-1) != b.Rows || recs[0][0] != "External_Id__c" || recs[1][0] != fmt.Sprint(w.firstRow+1) {
			t.Errorf("batch %d content: %d records, first %v", b.Index, len(recs), recs[1])
		}
	}
	if got := listDir(t, dir); !cmp.Equal(got, []string{"SEQ_00001.csv", "SEQ_00002.csv", "SEQ_00003.csv"}) {
		t.Errorf("dir holds %v", got)
	}
}

// suiteByteCap checks that files roll over before exceeding MaxBytes and
// that no row is lost or repeated across the split.
func suiteByteCap(t *testing.T, h *engineHarness) {
	name := seqTable(t, h, 400)
	src := h.open(t)
	tb := Table{Name: "CAP", From: name, OrderBy: []string{"id"}, Fields: seqFields()}
	full, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	const maxBytes = 1500
	res, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: 10_000, MaxBytes: maxBytes})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Batches) < 5 {
		t.Fatalf("%d batches: the byte cap did not split the %d-byte table", len(res.Batches), full.Batches[0].Bytes)
	}
	var rows [][]string
	var next int64
	for _, b := range res.Batches {
		if b.Bytes > maxBytes {
			t.Errorf("batch %d has %d bytes, cap %d", b.Index, b.Bytes, maxBytes)
		}
		if b.FirstRow != next {
			t.Errorf("batch %d starts at row %d, want %d", b.Index, b.FirstRow, next)
		}
		next += b.Rows
		recs := readCSV(t, b.Path)
		if last := recs[len(recs)-1][0]; b.LastKey[0] != last {
			t.Errorf("batch %d: LastKey %v, last row id %s", b.Index, b.LastKey, last)
		}
		rows = append(rows, recs[1:]...)
	}
	if diff := cmp.Diff(readCSV(t, full.Batches[0].Path)[1:], rows); diff != "" {
		t.Errorf("rows across capped files differ from one file (-want +got):\n%.2000s", diff)
	}
}

// suiteResume checks that starting from a position (keyset or offset)
// writes exactly the files the full run wrote from there.
func suiteResume(t *testing.T, h *engineHarness) {
	name := seqTable(t, h, 1000)
	src := h.open(t)
	for _, keys := range [][]string{{"id"}, {"grp", "id"}} {
		t.Run(strings.Join(keys, "_"), func(t *testing.T) {
			tb := Table{Name: "RES", From: name, OrderBy: keys, Fields: seqFields()}
			full, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: 300, Start: Position{BatchIndex: 1}})
			if err != nil {
				t.Fatal(err)
			}
			if len(full.Batches) != 4 {
				t.Fatalf("%d batches, want 4", len(full.Batches))
			}
			for k := 1; k < len(full.Batches); k++ {
				prev := full.Batches[k-1]
				for _, mode := range []string{"keyset", "offset"} {
					st := Position{BatchIndex: prev.Index + 1, Row: prev.FirstRow + prev.Rows}
					if mode == "keyset" {
						st.AfterKey = prev.LastKey
					}
					res, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: 300, Start: st})
					if err != nil {
						t.Fatalf("%s from batch %d: %v", mode, st.BatchIndex, err)
					}
					if len(res.Batches) != len(full.Batches)-k {
						t.Fatalf("%s from batch %d: %d batches, want %d", mode, st.BatchIndex, len(res.Batches), len(full.Batches)-k)
					}
					for i, b := range res.Batches {
						w := full.Batches[k+i]
						if b.Index != w.Index || b.SHA256 != w.SHA256 || b.FirstRow != w.FirstRow || !cmp.Equal(b.LastKey, w.LastKey) {
							t.Errorf("%s from batch %d: got %+v, want %+v", mode, st.BatchIndex, b, w)
						}
					}
				}
			}
		})
	}
}

func suiteZeroRows(t *testing.T, h *engineHarness) {
	name := seqTable(t, h, 10)
	src := h.open(t)
	dir := filepath.Join(t.TempDir(), "batches")
	called := false
	res, err := src.Extract(t.Context(), Table{Name: "NONE", Query: "SELECT id, payload FROM " + name + " WHERE id > 100", OrderBy: []string{"id"}, Fields: seqFields()},
		Options{Dir: dir, BatchSize: 5, OnBatch: func(context.Context, Batch) error { called = true; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 0 || len(res.Batches) != 0 || called {
		t.Errorf("zero rows: got %+v (OnBatch called: %v)", res, called)
	}
	if got := listDir(t, dir); len(got) != 0 {
		t.Errorf("zero rows left files: %v", got)
	}
	// Resuming past the last row is the same.
	res, err = src.Extract(t.Context(), Table{Name: "NONE", From: name, OrderBy: []string{"id"}, Fields: seqFields()},
		Options{Dir: dir, BatchSize: 5, Start: Position{BatchIndex: 3, Row: 10, AfterKey: []string{"10"}}})
	if err != nil || res.Rows != 0 || len(res.Batches) != 0 {
		t.Errorf("resume after the end: %+v, %v", res, err)
	}
}

func suiteErrors(t *testing.T, h *engineHarness) {
	name := h.table(t)
	h.createTable(t, name, [][2]string{{"id", "int"}, {"grp", "int"}, {"code", "text"}, {"bin", "binary"}}, [][]string{
		{"1", "1", sqlStr("aaaa"), "NULL"},
		{"2", "1", sqlStr("bbbbbbbbbbbb"), "NULL"},
		{"3", "2", "NULL", h.binLit()},
	})
	src := h.open(t)
	base := Table{Name: "ERR", From: name, OrderBy: []string{"id"}, Fields: []Field{{Column: "id", Name: "Id__c"}, {Column: "code", Name: "Code__c"}}}
	cases := []struct {
		name   string
		change func(*Table)
		check  func(t *testing.T, err error)
	}{
		{"unknown column", func(tb *Table) { tb.Fields[1].Column = "nope" }, func(t *testing.T, err error) {
			wantAll(t, err, `column "nope" is not a column of the source`, "(columns: ", "ERR")
		}},
		{"unknown order_by", func(tb *Table) { tb.OrderBy = []string{"nope"} }, func(t *testing.T, err error) {
			wantAll(t, err, `order_by column "nope"`)
		}},
		{"not unique", func(tb *Table) { tb.OrderBy = []string{"grp"} }, func(t *testing.T, err error) {
			if !errors.Is(err, ErrOrderBy) {
				t.Errorf("err = %v, want ErrOrderBy", err)
			}
			wantAll(t, err, "rows 0 and 1", "=1", "add columns to order_by")
		}},
		{"null key", func(tb *Table) { tb.OrderBy = []string{"code", "id"} }, func(t *testing.T, err error) {
			if !errors.Is(err, ErrOrderBy) {
				t.Errorf("err = %v, want ErrOrderBy", err)
			}
		}},
		{"too long", func(tb *Table) { tb.Fields[1].Length = 10 }, func(t *testing.T, err error) {
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *ValueError", err)
			}
			if ve.Table != "ERR" || ve.Row != 1 || !strings.Contains(ve.Key, "=2") || !strings.Contains(strings.ToLower(ve.Column), "code") || ve.Field != "Code__c" {
				t.Errorf("ValueError = %+v", ve)
			}
			wantAll(t, err, "12 characters", "limit of 10", `"bbbbbbbbbbbb"`, "fix:")
		}},
		{"binary", func(tb *Table) { tb.Fields[1].Column = "bin" }, func(t *testing.T, err error) {
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *ValueError", err)
			}
			if ve.Row != 2 || !strings.Contains(strings.ToLower(ve.Column), "bin") {
				t.Errorf("ValueError = %+v", ve)
			}
			wantAll(t, err, "binary", "fix:")
		}},
		{"bad resume key", func(tb *Table) {}, nil},
		{"row over the byte cap", func(tb *Table) { tb.Name = "ERR_CAP" }, func(t *testing.T, err error) {
			wantAll(t, err, "row 1 (", "=2)", "more than a batch file may hold (25 bytes")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := base
			tb.Fields = append([]Field(nil), base.Fields...)
			c.change(&tb)
			dir := t.TempDir()
			opts := Options{Dir: dir, BatchSize: 1}
			if tb.Name == "ERR_CAP" {
				opts.MaxBytes = 25 // header "Id__c,Code__c\n" + "1,aaaa\n" fit, "2,bbbbbbbbbbbb\n" does not
			}
			if c.check == nil {
				opts.Start.AfterKey = []string{"1", "2"}
			}
			_, err := src.Extract(t.Context(), tb, opts)
			if err == nil {
				t.Fatal("no error")
			}
			if c.check != nil {
				c.check(t, err)
			}
			for _, n := range listDir(t, dir) {
				if strings.HasSuffix(n, ".tmp") {
					t.Errorf("left %s behind", n)
				}
			}
		})
	}
}

func wantAll(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

// suiteCancel stops an extraction from OnBatch (back-pressure gone wrong,
// Ctrl-C): finished files stay, the unfinished one is removed.
func suiteCancel(t *testing.T, h *engineHarness) {
	name := seqTable(t, h, 1000)
	src := h.open(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	res, err := src.Extract(ctx, Table{Name: "CAN", From: name, OrderBy: []string{"id"}, Fields: seqFields()}, Options{
		Dir: dir, BatchSize: 100,
		OnBatch: func(ctx context.Context, b Batch) error {
			if b.Index == 1 {
				cancel()
			}
			return nil
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(res.Batches) != 2 {
		t.Errorf("%d batches finished, want 2 (0 and 1)", len(res.Batches))
	}
	for _, n := range listDir(t, dir) {
		if strings.HasSuffix(n, ".tmp") {
			t.Errorf("left %s behind", n)
		}
	}
	// An OnBatch error stops the extraction too and is returned.
	boom := errors.New("upload queue closed")
	_, err = src.Extract(t.Context(), Table{Name: "CAN", From: name, OrderBy: []string{"id"}, Fields: seqFields()}, Options{
		Dir: t.TempDir(), BatchSize: 100, OnBatch: func(context.Context, Batch) error { return boom },
	})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want the OnBatch error", err)
	}
	// The source stays usable after a stopped extraction.
	res, err = src.Extract(t.Context(), Table{Name: "CAN", From: name, OrderBy: []string{"id"}, Fields: seqFields()}, Options{Dir: t.TempDir(), BatchSize: 600})
	if err != nil || res.Rows != 1000 {
		t.Errorf("after cancel: %+v, %v", res, err)
	}
}

// suiteTimeZone checks SourceTimeZone: zone-less timestamps are read in it,
// dates never move.
func suiteTimeZone(t *testing.T, h *engineHarness) {
	name := h.table(t)
	h.createTable(t, name, [][2]string{{"id", "int"}, {"d", "date"}, {"ts", "timestamp"}}, [][]string{
		{"1", sqlStr("2024-07-01"), sqlStr("2024-07-01 00:30:00")}, // CEST, UTC+2
		{"2", sqlStr("2024-01-15"), sqlStr("2024-01-15 12:00:00")}, // CET, UTC+1
	})
	src := h.open(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	res, err := src.Extract(t.Context(), Table{Name: "TZ", From: name, OrderBy: []string{"id"}, SourceTimeZone: berlin,
		Fields: []Field{{Column: "d", Name: "D__c", Type: "date"}, {Column: "ts", Name: "Ts__c"}, {Column: "ts", Name: "TsDate__c", Type: "date"}}},
		Options{Dir: t.TempDir(), BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"D__c", "Ts__c", "TsDate__c"},
		{"2024-07-01", "2024-06-30T22:30:00.000Z", "2024-07-01"},
		{"2024-01-15", "2024-01-15T11:00:00.000Z", "2024-01-15"},
	}
	if diff := cmp.Diff(want, readCSV(t, res.Batches[0].Path)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// suiteQueryForm checks a configured query (with a trailing ';' and comment,
// an alias and a case-insensitive column match).
func suiteQueryForm(t *testing.T, h *engineHarness) {
	name := seqTable(t, h, 20)
	src := h.open(t)
	q := "SELECT id AS item_id, payload FROM " + name + " WHERE grp = 1 ; -- only group 1\n"
	res, err := src.Extract(t.Context(), Table{Name: "Q", Query: q, OrderBy: []string{"ITEM_ID"},
		Fields: []Field{{Column: "Item_Id", Name: "External_Id__c"}}}, Options{Dir: t.TempDir(), BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	got := readCSV(t, res.Batches[0].Path)
	want := [][]string{{"External_Id__c"}, {"1"}, {"4"}, {"7"}, {"10"}, {"13"}, {"16"}, {"19"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// suiteQueryErrors: a query or table the database refuses comes back as a
// *QueryError naming the setting, showing the query as configured and the
// database's message — never the SQL Extract builds around it — and
// counting as a configuration problem. A refusal for another reason (here a
// cancelled context) is not one.
func suiteQueryErrors(t *testing.T, h *engineHarness) {
	name := seqTable(t, h, 3)
	src := h.open(t)
	fields := []Field{{Column: "id", Name: "External_Id__c"}}
	cases := []struct {
		name, query, from string
		setting, mention  string // the QueryError's Setting; a word the database's message must contain
	}{
		{"syntax error", "SELEC id FROM " + name, "", "query", ""},
		{"unknown column", "SELECT id, nmae\nFROM " + name + " ;", "", "query", "nmae"},
		{"unknown table", "SELECT id FROM no_such_table_qe", "", "query", "no_such_table_qe"},
		{"unknown table by name", "", "no_such_table_qe", "table", "no_such_table_qe"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := Table{Name: "QE", Query: c.query, From: c.from, OrderBy: []string{"id"}, Fields: fields}
			dir := t.TempDir()
			_, err := src.Extract(t.Context(), tb, Options{Dir: dir, BatchSize: 10})
			var qe *QueryError
			if !errors.As(err, &qe) {
				t.Fatalf("err = %v (%T), want *QueryError", err, err)
			}
			want := c.query
			if c.from != "" {
				want = c.from
			}
			if qe.Table != "QE" || qe.Setting != c.setting || qe.Query != want || qe.Engine != src.Dialect() || qe.Message == "" || qe.Err == nil {
				t.Errorf("QueryError = %+v", qe)
			}
			if !qe.ConfigError() {
				t.Error("ConfigError() = false, want true: the tables config must change")
			}
			msg := err.Error()
			wantAll(t, err, "tables.QE."+c.setting, qe.Message)
			if c.from != "" {
				wantAll(t, err, `"`+c.from+`"`)
			} else {
				wantAll(t, err, oneLine(c.query, 500))
			}
			if c.mention != "" && !strings.Contains(strings.ToLower(qe.Message), c.mention) {
				t.Errorf("database message %q does not mention %q", qe.Message, c.mention)
			}
			for _, internal := range []string{"sfm_q", "SELECT * FROM", "prepare:", "WHERE 1 = 0", "\n", "position"} {
				if strings.Contains(msg, internal) {
					t.Errorf("message shows %q, internal to Extract: %s", internal, msg)
				}
			}
			if n := listDir(t, dir); len(n) != 0 {
				t.Errorf("files written: %v", n)
			}
		})
	}
	t.Run("cancelled is not a query error", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := src.Extract(ctx, Table{Name: "QE", Query: "SELEC broken", OrderBy: []string{"id"}, Fields: fields},
			Options{Dir: t.TempDir(), BatchSize: 10})
		var qe *QueryError
		if err == nil || errors.As(err, &qe) {
			t.Errorf("err = %v, want a failure that is not a *QueryError", err)
		}
	})
}
