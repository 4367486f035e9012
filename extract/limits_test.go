package extract

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestSQLiteFieldAndRecordLimits checks Salesforce's per-field (131,072)
// and per-record (400,000) character limits on the real engine, counting
// characters, not bytes (1- to 4-byte UTF-8 mixed).
func TestSQLiteFieldAndRecordLimits(t *testing.T) {
	mixed := strings.Repeat("aé日🚀", maxFieldChars/4) // exactly 131,072 characters, 327,680 bytes
	h := sqliteHarness(t)
	h.exec(t, "CREATE TABLE l (id INTEGER, a TEXT, b TEXT, c TEXT, d TEXT)",
		"INSERT INTO l VALUES (1, "+sqlStr(mixed)+", "+sqlStr(mixed)+", "+sqlStr(mixed)+", 'x')", // 393,219 characters with commas: fits
		"INSERT INTO l VALUES (2, "+sqlStr(mixed+"b")+", NULL, NULL, NULL)",
		"INSERT INTO l VALUES (3, "+sqlStr(strings.Repeat("x", 100_000))+", "+sqlStr(strings.Repeat("x", 100_000))+", "+
			sqlStr(strings.Repeat("x", 100_000))+", "+sqlStr(strings.Repeat("x", 100_000))+")") // 400,004 characters
	src := h.open(t)
	extract := func(id int, fields ...Field) (Result, error) {
		return src.Extract(t.Context(), Table{Name: "LIM", Query: "SELECT * FROM l WHERE id = " + strconv.Itoa(id), OrderBy: []string{"id"}, Fields: fields},
			Options{Dir: t.TempDir(), BatchSize: 10})
	}
	res, err := extract(1, Field{Column: "a", Name: "A__c"}, Field{Column: "b", Name: "B__c"}, Field{Column: "c", Name: "C__c"}, Field{Column: "d", Name: "D__c"})
	if err != nil {
		t.Fatal(err)
	}
	if got := readCSV(t, res.Batches[0].Path)[1]; got[0] != mixed || got[1] != mixed || got[2] != mixed || got[3] != "x" {
		t.Error("values at the field limit were not written whole")
	}

	_, err = extract(2, Field{Column: "a", Name: "A__c"})
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Row != 0 || ve.Key != "id=2" || ve.Field != "A__c" {
		t.Fatalf("err = %v, want a ValueError for row 0 (id=2), field A__c", err)
	}
	wantAll(t, err, "131073 characters, more than the field limit of 131072", "fix:")

	_, err = extract(2, Field{Column: "d", Name: "D__c", Length: 80}, Field{Column: "a", Name: "A__c", Length: 200_000})
	wantAll(t, err, "131073 characters", "limit of 131072") // a describe length above Salesforce's limit does not raise it

	_, err = extract(3, Field{Column: "a", Name: "A__c"}, Field{Column: "b", Name: "B__c"}, Field{Column: "c", Name: "C__c"}, Field{Column: "d", Name: "D__c"})
	wantAll(t, err, "row 0 (id=3)", "(whole row)", "record exceeds the Bulk API limit of 400000 characters")
}

// TestSQLiteByteCapExact: files fill up to exactly MaxBytes, never past it.
func TestSQLiteByteCapExact(t *testing.T) {
	h := sqliteHarness(t)
	var stmts []string
	stmts = append(stmts, "CREATE TABLE b (id INTEGER, v TEXT)")
	for i := 1; i <= 10; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO b VALUES (%d, 'vvvvvvv')", i)) // rows "N,vvvvvvv\n": 10 bytes (11 for id 10)
	}
	h.exec(t, stmts...)
	src := h.open(t)
	const header = len("Id__c,V__c\n")
	res, err := src.Extract(t.Context(), Table{Name: "CAP", From: "b", OrderBy: []string{"id"}, Fields: []Field{{Column: "id", Name: "Id__c"}, {Column: "v", Name: "V__c"}}},
		Options{Dir: t.TempDir(), BatchSize: 100, MaxBytes: int64(header + 3*10)})
	if err != nil {
		t.Fatal(err)
	}
	var sizes, rows []int64
	for _, b := range res.Batches {
		fi, err := os.Stat(b.Path)
		if err != nil || fi.Size() != b.Bytes {
			t.Fatalf("batch %d: %v, size %v vs %d", b.Index, err, fi, b.Bytes)
		}
		sizes, rows = append(sizes, b.Bytes), append(rows, b.Rows)
	}
	// Three 10-byte rows fill a file exactly; the 11-byte row 10 opens a fourth.
	if fmt.Sprint(rows) != "[3 3 3 1]" || fmt.Sprint(sizes) != fmt.Sprintf("[%d %d %d %d]", header+30, header+30, header+30, header+11) {
		t.Errorf("rows per file %v, sizes %v (cap %d)", rows, sizes, header+30)
	}
}

// TestSQLiteByteCapDefault fills files up to the default cap (90 MB) with
// rows of 780 kB — the biggest a record can be: three fields of 130,000
// two-byte characters — and checks the rollover at real size: no file over
// the cap, every row once, in order.
func TestSQLiteByteCapDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~100 MB")
	}
	h := sqliteHarness(t)
	const n = 130
	big := "replace(hex(zeroblob(65000)), '0', 'é')" // 130,000 characters
	h.exec(t, "CREATE TABLE big (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c TEXT)",
		fmt.Sprintf(`INSERT INTO big WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d)
			SELECT i, %s, %s, %s FROM s`, n, big, big, big))
	src := h.open(t)
	res, err := src.Extract(t.Context(), Table{Name: "BIG", From: "big", OrderBy: []string{"id"},
		Fields: []Field{{Column: "id", Name: "Id__c"}, {Column: "a", Name: "A__c"}, {Column: "b", Name: "B__c"}, {Column: "c", Name: "C__c"}}},
		Options{Dir: t.TempDir(), BatchSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Batches) != 2 || res.Rows != n {
		t.Fatalf("%d rows in %d files, want %d rows in 2", res.Rows, len(res.Batches), n)
	}
	next := 1
	for _, b := range res.Batches {
		data, err := os.ReadFile(b.Path)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(data)) != b.Bytes || b.Bytes > DefaultMaxBytes {
			t.Errorf("batch %d: %d bytes on disk, %d reported, cap %d", b.Index, len(data), b.Bytes, DefaultMaxBytes)
		}
		lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
		for _, l := range lines[1:] {
			id, _, _ := bytes.Cut(l, []byte(","))
			if string(id) != strconv.Itoa(next) || len(l) != len(strconv.Itoa(next))+3*(1+260_000) {
				t.Fatalf("batch %d: row %q... where id %d was due", b.Index, l[:min(len(l), 20)], next)
			}
			next++
		}
	}
	if first := res.Batches[0]; first.Bytes+int64(len(strconv.Itoa(int(first.Rows+1)))+3*260_001+1) <= DefaultMaxBytes {
		t.Errorf("the first file (%d bytes) rolled over while the next row still fitted", first.Bytes)
	}
}
