package extract

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite" // database/sql driver, used only to build test databases

	"github.com/sfmigrate/sfmigrate/airflow"
)

var sqliteTableSeq atomic.Int64

// sqliteHarness builds a fresh SQLite database file for one test.
func sqliteHarness(t *testing.T) *engineHarness {
	t.Helper()
	path := filepath.Join(t.TempDir(), "source.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &engineHarness{
		name: "sqlite",
		conn: airflow.Connection{ID: "sqlite_test", Type: "sqlite", Host: path},
		exec: func(t *testing.T, stmts ...string) {
			t.Helper()
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range stmts {
				if _, err := tx.Exec(s); err != nil {
					t.Fatalf("%.200s: %v", s, err)
				}
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		},
		types: map[string]string{
			"int": "INTEGER", "text": "TEXT", "bigtext": "TEXT", "float": "REAL", "bool": "BOOLEAN",
			"date": "DATE", "timestamp": "DATETIME", "timestamptz": "TIMESTAMP", "binary": "BLOB",
			// SQLite keeps exact decimals only as text.
			"decimal": "TEXT",
		},
		boolLit:    func(b bool) string { return map[bool]string{true: "1", false: "0"}[b] },
		decimalOut: func(lit string) string { return lit },
		binLit:     func() string { return "X'DEADBEEF'" },
		table: func(t *testing.T) string {
			return fmt.Sprintf("t%d", sqliteTableSeq.Add(1))
		},
	}
}

func TestSQLite(t *testing.T) {
	runSuite(t, sqliteHarness(t))
}

func TestSQLiteSpecific(t *testing.T) {
	h := sqliteHarness(t)
	name := h.table(t)
	h.createTable(t, name, [][2]string{{"id", "int"}, {"txt", "text"}, {"d", "date"}, {"ts", "timestamp"}, {"n", "text"}}, [][]string{
		{"1", "CAST(X'61FF62' AS TEXT)", "'2024-01-01'", "'2024-01-01 10:00:00'", "'1'"},
		{"2", "'ok'", "1700000000", "'2024-01-01T10:00:00+02:00'", "'12.50'"},
		{"3", "'ok'", "'2024-13-01'", "'2024-01-01 10:00:00Z'", "'1.5e3'"},
		{"4", "'ok'", "'2024-01-01'", "'yesterday'", "'abc'"},
	})
	src := h.open(t)
	extract := func(f Field, start int64) error {
		_, err := src.Extract(t.Context(), Table{Name: "S", Query: "SELECT * FROM " + name + " WHERE id >= " + fmt.Sprint(start), OrderBy: []string{"id"},
			Fields: []Field{f}}, Options{Dir: t.TempDir(), BatchSize: 10})
		return err
	}
	t.Run("invalid UTF-8", func(t *testing.T) {
		err := extract(Field{Column: "txt", Name: "T__c"}, 1)
		var ve *ValueError
		if !errors.As(err, &ve) || ve.Row != 0 || ve.Key != "id=1" || !strings.Contains(ve.Column, "txt") {
			t.Fatalf("err = %v", err)
		}
		wantAll(t, err, "invalid UTF-8 at byte 1", `"a\xffb"`)
	})
	t.Run("number in a date column", func(t *testing.T) {
		wantAll(t, extract(Field{Column: "d", Name: "D__c"}, 2), "row 0 (id=2)", "a number is not a date/time", "unixepoch")
	})
	t.Run("impossible date", func(t *testing.T) {
		wantAll(t, extract(Field{Column: "d", Name: "D__c"}, 3), "id=3", `"2024-13-01"`, "not a date/time")
	})
	t.Run("zoned text in a DATETIME column", func(t *testing.T) {
		res, err := src.Extract(t.Context(), Table{Name: "S", Query: "SELECT * FROM " + name + " WHERE id <= 3", OrderBy: []string{"id"}, Fields: []Field{{Column: "ts", Name: "Ts__c"}}},
			Options{Dir: t.TempDir(), BatchSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		got := readCSV(t, res.Batches[0].Path)
		want := [][]string{{"Ts__c"}, {"2024-01-01T10:00:00.000Z"}, {"2024-01-01T08:00:00.000Z"}, {"2024-01-01T10:00:00.000Z"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		wantAll(t, extract(Field{Column: "ts", Name: "Ts__c"}, 4), "id=4", `"yesterday"`, "not a date/time")
	})
	t.Run("text into a number field", func(t *testing.T) {
		res, err := src.Extract(t.Context(), Table{Name: "S", Query: "SELECT * FROM " + name + " WHERE id <= 3", OrderBy: []string{"id"}, Fields: []Field{{Column: "n", Name: "N__c", Type: "double"}}},
			Options{Dir: t.TempDir(), BatchSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{{"N__c"}, {"1"}, {"12.50"}, {"1500"}}
		if diff := cmp.Diff(want, readCSV(t, res.Batches[0].Path)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		wantAll(t, extract(Field{Column: "n", Name: "N__c", Type: "double"}, 4), "id=4", `"abc"`, "not a decimal number")
	})
}

func TestSQLiteOpen(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		conn airflow.Connection
		want string
	}{
		{"no path", airflow.Connection{ID: "src", Type: "sqlite"}, "set the connection's host"},
		{"missing file", airflow.Connection{ID: "src", Type: "sqlite", Host: filepath.Join(dir, "nope.db")}, "nope.db (connection host)"},
		{"relative path from a three-slash URI", airflow.Connection{ID: "src", Type: "sqlite", Schema: "tmp/nope.db"}, "sqlite:////abs/path.db"},
		{"directory", airflow.Connection{ID: "src", Type: "sqlite", Host: dir}, "is a directory"},
		{"memory", airflow.Connection{ID: "src", Type: "sqlite", Host: ":memory:"}, "plain file path"},
		{"not a database", airflow.Connection{ID: "src", Type: "sqlite", Host: writeFile(t, dir, "junk.db", "this is not sqlite")}, ""},
		{"unknown type", airflow.Connection{ID: "src", Type: "mysql"}, "supported source types are sqlite, postgres and oracle"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, err := Open(t.Context(), c.conn)
			if err == nil && c.want == "" {
				// SQLite only notices a non-database file on first read.
				_, err = src.Extract(t.Context(), Table{Name: "X", From: "t", OrderBy: []string{"id"}, Fields: []Field{{Column: "id", Name: "Id"}}},
					Options{Dir: t.TempDir(), BatchSize: 1})
				src.Close()
				wantAll(t, err, "not a database")
				return
			}
			wantAll(t, err, c.want, "src")
		})
	}
	// The schema fallback (sqlite:////abs/path.db puts the path in schema).
	h := sqliteHarness(t)
	h.createTable(t, "t", [][2]string{{"id", "int"}}, nil)
	src, err := Open(t.Context(), airflow.Connection{ID: "s", Type: "sqlite", Schema: h.conn.Host})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Extract(t.Context(), Table{}, Options{}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Extract after Close: %v", err)
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSQLiteHugeRow writes a row larger than the 1 MiB write buffer.
func TestSQLiteHugeRow(t *testing.T) {
	h := sqliteHarness(t)
	big := strings.Repeat("🚀", 130_000) // 520,000 bytes, under the 131,072-character field limit
	h.createTable(t, "t", [][2]string{{"id", "int"}, {"a", "text"}, {"b", "text"}, {"c", "text"}}, [][]string{
		{"1", "'x'", "'y'", "'z'"},
		{"2", sqlStr(big), sqlStr(big), sqlStr(big + ",")},
		{"3", "'x'", "'y'", "'z'"},
	})
	src := h.open(t)
	res, err := src.Extract(t.Context(), Table{Name: "HUGE", From: "t", OrderBy: []string{"id"},
		Fields: []Field{{Column: "a", Name: "A"}, {Column: "b", Name: "B"}, {Column: "c", Name: "C"}}}, Options{Dir: t.TempDir(), BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	got := readCSV(t, res.Batches[0].Path)
	want := [][]string{{"A", "B", "C"}, {"x", "y", "z"}, {big, big, big + ","}, {"x", "y", "z"}}
	if !cmp.Equal(want, got) {
		t.Errorf("huge row did not round-trip (%d records)", len(got))
	}
	if fileSHA(t, res.Batches[0].Path) != res.Batches[0].SHA256 {
		t.Error("checksum does not match the file")
	}
}

func TestTableValidate(t *testing.T) {
	ok := Table{Name: "T", From: "t", OrderBy: []string{"id"}, Fields: []Field{{Column: "id", Name: "Id"}}}
	cases := []struct {
		name   string
		change func(*Table)
		want   string
	}{
		{"bad name", func(t *Table) { t.Name = "../x" }, "cannot name batch files"},
		{"no source", func(t *Table) { t.From = "" }, "neither query nor table"},
		{"both", func(t *Table) { t.Query = "SELECT 1" }, "both query and table"},
		{"injection", func(t *Table) { t.From = "t; DROP TABLE x" }, "is not a table name"},
		{"quoted table ok", func(t *Table) { t.From = `sales."Order Lines"` }, ""},
		{"no order", func(t *Table) { t.OrderBy = nil }, "order_by is empty"},
		{"blank order", func(t *Table) { t.OrderBy = []string{" "} }, "empty column name"},
		{"no fields", func(t *Table) { t.Fields = nil }, "no fields"},
		{"empty field", func(t *Table) { t.Fields[0].Name = "" }, "has an empty side"},
		{"bad field", func(t *Table) { t.Fields[0].Name = "A,B" }, "is not an API name"},
		{"twice", func(t *Table) { t.Fields = append(t.Fields, Field{Column: "x", Name: "ID"}) }, "mapped twice"},
		{"negative length", func(t *Table) { t.Fields[0].Length = -1 }, "negative length"},
		{"huge header", func(t *Table) {
			for i := range 2000 {
				t.Fields = append(t.Fields, Field{Column: "c", Name: fmt.Sprintf("Field_Number_%d__c", i)})
			}
		}, "header of"},
		{"null mode", func(t *Table) { t.NullAs = 7 }, "unknown null mode"},
	}
	for _, c := range cases {
		tb := ok
		tb.Fields = append([]Field(nil), ok.Fields...)
		c.change(&tb)
		err := tb.validate()
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
	src := &Source{eng: &sqliteEngine{}}
	for _, o := range []Options{{BatchSize: 1}, {Dir: "d"}, {Dir: "d", BatchSize: 1, MaxBytes: MaxUploadBytes + 1}, {Dir: "d", BatchSize: 1, Start: Position{Row: -1}}} {
		if _, err := src.Extract(t.Context(), ok, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

// TestFileErrorsNamePathOnce: an os error already names its operation and
// file ("write X.tmp: no space left on device"), so the messages around it
// must not name the file again. The failures are real: a directory in the
// way of a batch file is refused, and a missing database file fails its
// stat. A link planted at the temporary file (to /dev/full, which answers
// every write with ENOSPC) is replaced, not written through.
func TestFileErrorsNamePathOnce(t *testing.T) {
	h := sqliteHarness(t)
	h.createTable(t, "t", [][2]string{{"id", "int"}}, [][]string{{"1"}, {"2"}})
	src := h.open(t)
	table := Table{Name: "T", From: "t", OrderBy: []string{"id"}, Fields: []Field{{Column: "id", Name: "Id"}}}
	once := func(t *testing.T, err error, path string) {
		t.Helper()
		if err == nil {
			t.Fatal("no error")
		}
		if n := strings.Count(err.Error(), path); n != 1 {
			t.Errorf("%s appears %d times in %q, want once", path, n, err)
		}
	}
	t.Run("link at the temporary file", func(t *testing.T) {
		// A link planted where the batch is written is replaced, never
		// written through: /dev/full would fail every write.
		if _, err := os.Stat("/dev/full"); err != nil {
			t.Skip("no /dev/full on this system")
		}
		dir := t.TempDir()
		tmp := filepath.Join(dir, "T_00001.csv.tmp")
		if err := os.Symlink("/dev/full", tmp); err != nil {
			t.Fatal(err)
		}
		if _, err := src.Extract(t.Context(), table, Options{Dir: dir, BatchSize: 10, Start: Position{BatchIndex: 1}}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(filepath.Join(dir, "T_00001.csv"))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
			t.Fatalf("batch file: %v, %v; want a regular file with mode 0600", fi, err)
		}
	})
	t.Run("directory in the way", func(t *testing.T) {
		dir := t.TempDir()
		final := filepath.Join(dir, "T_00001.csv")
		if err := os.Mkdir(final, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(final, "keep"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := src.Extract(t.Context(), table, Options{Dir: dir, BatchSize: 10, Start: Position{BatchIndex: 1}})
		if !errors.Is(err, ErrLink) {
			t.Fatalf("err = %v, want ErrLink", err)
		}
		once(t, err, final+" ")
		wantAll(t, err, "finish batch file", "remove it")
		if _, err := os.Stat(final + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("temporary file left: %v", err)
		}
	})
	t.Run("missing database file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.db")
		_, err := Open(t.Context(), airflow.Connection{ID: "src", Type: "sqlite", Host: path})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want fs.ErrNotExist", err)
		}
		once(t, err, path)
	})
}
