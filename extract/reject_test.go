package extract

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// badRowsTable creates ids 1..10 with a text column; rows 2, 4, 5, 6 and 10
// hold values that cannot be sent: too long for a 5-character field, the
// text #N/A, or bytes.
func badRowsTable(t *testing.T, h *engineHarness) string {
	t.Helper()
	name := h.table(t)
	rows := [][]string{}
	for id := 1; id <= 10; id++ {
		val, bin := sqlStr(fmt.Sprintf("v%d", id)), "NULL"
		switch id {
		case 2:
			val = sqlStr("much too long")
		case 4:
			val = sqlStr("#N/A")
		case 5:
			bin = h.binLit()
		case 6, 10:
			val = sqlStr("ünïcødé!")
		}
		rows = append(rows, []string{fmt.Sprint(id), val, bin})
	}
	h.createTable(t, name, [][2]string{{"id", "int"}, {"val", "text"}, {"bin", "binary"}}, rows)
	return name
}

func badRowsSpec(name string) Table {
	return Table{Name: "BAD", From: name, OrderBy: []string{"id"}, Fields: []Field{
		{Column: "id", Name: "External_Id__c"}, {Column: "val", Name: "Name", Length: 5}, {Column: "bin", Name: "Blob__c"},
	}}
}

// suiteRejectedRows: with RejectDir, each bad row is left out of its batch
// file and written to the batch's rejected file; the others are written;
// batch positions count both, so resuming after any batch, by key or by
// offset, gives the same files; extracting a batch again replaces its
// rejected file instead of adding to it.
func suiteRejectedRows(t *testing.T, h *engineHarness) {
	name := badRowsTable(t, h)
	src := h.open(t)
	tb := badRowsSpec(name)

	_, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: 3})
	var ve *ValueError
	if !errors.As(err, &ve) || ve.Row != 1 {
		t.Fatalf("without RejectDir: err = %v, want the *ValueError of row 1", err)
	}

	dir, rej := t.TempDir(), filepath.Join(t.TempDir(), "logs")
	// A rejected file an earlier attempt left for batch 3, whose rows are
	// all fine now.
	if err := os.MkdirAll(rej, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(rej, "BAD_00003_rejected.csv")
	if err := os.WriteFile(stale, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := src.Extract(t.Context(), tb, Options{Dir: dir, RejectDir: rej, BatchSize: 3, MaxRejected: -1, Start: Position{BatchIndex: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 5 || res.Rejected != 5 || len(res.Batches) != 4 {
		t.Fatalf("result: %d rows, %d rejected, %d batches; want 5, 5, 4", res.Rows, res.Rejected, len(res.Batches))
	}
	type pos struct {
		Rows, Rejected, FirstRow int64
		LastKey                  []string
		HasFile, HasRejected     bool
	}
	var got []pos
	for _, b := range res.Batches {
		got = append(got, pos{b.Rows, b.Rejected, b.FirstRow, b.LastKey, b.Path != "", b.RejectedPath != ""})
	}
	want := []pos{
		{2, 1, 0, []string{"3"}, true, true},
		{0, 3, 3, []string{"6"}, false, true}, // every row rejected: no batch file
		{3, 0, 6, []string{"9"}, true, false},
		{0, 1, 9, []string{"10"}, false, true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("batches (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale rejected file of batch 3 is still there: %v", err)
	}
	if diff := cmp.Diff([][]string{{"External_Id__c", "Name", "Blob__c"}, {"1", "v1", ""}, {"3", "v3", ""}}, readCSV(t, res.Batches[0].Path)); diff != "" {
		t.Errorf("batch 1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"BAD_00001.csv", "BAD_00003.csv"}, listDir(t, dir)); diff != "" {
		t.Errorf("batch dir (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"BAD_00001_rejected.csv", "BAD_00002_rejected.csv", "BAD_00004_rejected.csv"}, listDir(t, rej)); diff != "" {
		t.Errorf("rejected dir (-want +got):\n%s", diff)
	}
	for _, p := range append(listPaths(dir), listPaths(rej)...) {
		if fi, err := os.Lstat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", p, fi.Mode(), err)
		}
	}
	var rows []Rejected
	for _, b := range res.Batches {
		if b.RejectedPath == "" {
			continue
		}
		r, err := ReadRejected(b.RejectedPath, 1)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r...)
	}
	if len(rows) != 5 {
		t.Fatalf("rejected rows: %+v", rows)
	}
	check := func(r Rejected, key, column, value string, n int, reason string) {
		t.Helper()
		if r.Key[0] != key || r.Column != column || r.Value != value || r.ValueBytes != n || !strings.Contains(r.Reason, reason) || r.Fix == "" {
			t.Errorf("rejected row = %+v; want key %s, column %s, value %q (%d bytes), reason with %q", r, key, column, value, n, reason)
		}
	}
	check(rows[0], "2", "val", "much too long", 13, "value has 13 characters, more than the field limit of 5")
	check(rows[1], "4", "val", "#N/A", 4, "would clear the Salesforce field")
	// The bytes as the engine delivers them (PostgreSQL: its hex text).
	check(rows[2], "5", "bin", rows[2].Value, rows[2].ValueBytes, "cannot be sent")
	check(rows[3], "6", "val", "ünïcødé!", 12, "value has 8 characters")
	if rows[0].Field != "Name" || rows[2].Field != "Blob__c" {
		t.Errorf("fields: %q, %q", rows[0].Field, rows[2].Field)
	}
	first, err := os.ReadFile(res.Batches[0].RejectedPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(first), "id,column,field,value,value_bytes,reason,fix\n") {
		t.Errorf("rejected file header:\n%s", first)
	}

	// Resuming after every batch, by key and by offset, gives the same
	// batches and rejected files as the full run.
	for i, b := range res.Batches[:len(res.Batches)-1] {
		for _, byKey := range []bool{true, false} {
			start := Position{BatchIndex: b.Index + 1, Row: b.FirstRow + b.Rows + b.Rejected}
			if byKey {
				start.AfterKey = b.LastKey
			}
			d2, r2 := t.TempDir(), t.TempDir()
			res2, err := src.Extract(t.Context(), tb, Options{Dir: d2, RejectDir: r2, BatchSize: 3, MaxRejected: -1, Start: start})
			if err != nil {
				t.Fatal(err)
			}
			tail := res.Batches[i+1:]
			if len(res2.Batches) != len(tail) {
				t.Fatalf("resume after batch %d (by key %v): %d batches, want %d", b.Index, byKey, len(res2.Batches), len(tail))
			}
			for j, b2 := range res2.Batches {
				w := tail[j]
				if b2.Index != w.Index || b2.Rows != w.Rows || b2.Rejected != w.Rejected || b2.FirstRow != w.FirstRow || b2.SHA256 != w.SHA256 ||
					!cmp.Equal(b2.LastKey, w.LastKey) {
					t.Errorf("resume after batch %d (by key %v): batch %+v, want %+v", b.Index, byKey, b2, w)
				}
				if w.RejectedPath != "" && fileSHA(t, b2.RejectedPath) != fileSHA(t, w.RejectedPath) {
					t.Errorf("resume after batch %d: rejected file of batch %d differs", b.Index, w.Index)
				}
			}
		}
	}

	// The same batches extracted again into the same directories: each
	// rejected file is replaced whole, no row appears twice.
	before := fileSHA(t, res.Batches[1].RejectedPath)
	if _, err := src.Extract(t.Context(), tb, Options{Dir: dir, RejectDir: rej, BatchSize: 3, MaxRejected: -1, Start: Position{BatchIndex: 1}}); err != nil {
		t.Fatal(err)
	}
	if after := fileSHA(t, res.Batches[1].RejectedPath); after != before {
		t.Errorf("rejected file of batch 2 changed when the batch was extracted again")
	}
	if r, _ := ReadRejected(res.Batches[1].RejectedPath, 1); len(r) != 3 {
		t.Errorf("batch 2 has %d rejected rows after a second extraction, want 3", len(r))
	}
}

func listPaths(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, filepath.Join(dir, e.Name()))
	}
	return out
}

// suiteRejectLimit: once more rows than MaxRejected were rejected the batch
// holding the last one is finished and reported, then extraction stops with
// a *RejectLimitError; resuming after that batch goes on with the rest.
func suiteRejectLimit(t *testing.T, h *engineHarness) {
	name := badRowsTable(t, h)
	src := h.open(t)
	dir, rej := t.TempDir(), t.TempDir()
	var reported []Batch
	res, err := src.Extract(t.Context(), badRowsSpec(name), Options{Dir: dir, RejectDir: rej, BatchSize: 3, MaxRejected: 1,
		OnBatch: func(_ context.Context, b Batch) error { reported = append(reported, b); return nil }})
	var le *RejectLimitError
	if !errors.As(err, &le) || le.Rejected != 2 || le.Limit != 1 || le.Last == nil || le.Last.Row != 3 {
		t.Fatalf("err = %v, want a *RejectLimitError after 2 rows, the last row 3", err)
	}
	wantAll(t, err, "BAD", "2 rows rejected, more than the limit of 1", "row 3 (id=4)")
	// Batch 0 (rows 0-2) and batch 1 cut short after row 3 (id 4).
	if len(res.Batches) != 2 || len(reported) != 2 || res.Batches[1].FirstRow != 3 || res.Batches[1].Rejected != 1 ||
		res.Batches[1].Rows != 0 || !cmp.Equal(res.Batches[1].LastKey, []string{"4"}) {
		t.Fatalf("batches %+v (reported %d)", res.Batches, len(reported))
	}
	last := res.Batches[1]
	res2, err := src.Extract(t.Context(), badRowsSpec(name), Options{Dir: dir, RejectDir: rej, BatchSize: 3, MaxRejected: -1,
		Start: Position{BatchIndex: last.Index + 1, Row: last.FirstRow + last.Rows + last.Rejected, AfterKey: last.LastKey}})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Rows != 3 || res2.Rejected != 3 || res2.Batches[0].FirstRow != 4 {
		t.Errorf("resumed: %d rows, %d rejected, first batch %+v; want 3, 3, from row 4", res2.Rows, res2.Rejected, res2.Batches[0])
	}
}

// suiteTruncate: Field.Truncate cuts text over the field length to the
// length in characters (CR LF counting as one, as the check counts it) and
// counts the values cut; text within the length is untouched.
func suiteTruncate(t *testing.T, h *engineHarness) {
	name := h.table(t)
	h.createTable(t, name, [][2]string{{"id", "int"}, {"val", "text"}}, [][]string{
		{"1", sqlStr("abcdefgh")}, {"2", sqlStr("ünïcødé")}, {"3", sqlStr("ab\r\ncdefg")}, {"4", sqlStr("short")}, {"5", sqlStr("🚀🚀🚀🚀🚀🚀")},
	})
	src := h.open(t)
	tb := Table{Name: "TR", From: name, OrderBy: []string{"id"}, Fields: []Field{
		{Column: "id", Name: "External_Id__c"}, {Column: "val", Name: "Name", Length: 5, Truncate: true},
	}}
	res, err := src.Extract(t.Context(), tb, Options{Dir: t.TempDir(), BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"External_Id__c", "Name"}, {"1", "abcde"}, {"2", "ünïcø"}, {"3", "ab\ncd"}, {"4", "short"}, {"5", "🚀🚀🚀🚀🚀"}}
	if diff := cmp.Diff(want, readCSV(t, res.Batches[0].Path)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if res.Truncated != 4 || res.Batches[0].Truncated != 4 {
		t.Errorf("truncated %d (batch %d), want 4", res.Truncated, res.Batches[0].Truncated)
	}
}

// suiteOnlyKeys: OnlyKeys re-extracts just the rows with those keys, in
// order, BatchSize kept rows per file, for single and composite keys, and
// reports the keys no row has.
func suiteOnlyKeys(t *testing.T, h *engineHarness) {
	name := seqTable(t, h, 60)
	src := h.open(t)
	keys := NewKeySet()
	for _, k := range []string{"42", "7", "23", "999", "60"} {
		keys.Add([]string{k})
	}
	res, err := src.Extract(t.Context(), Table{Name: "SEQ", From: name, OrderBy: []string{"id"}, Fields: seqFields()},
		Options{Dir: t.TempDir(), BatchSize: 2, Start: Position{BatchIndex: 5}, OnlyKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 4 || len(res.Batches) != 2 || res.Batches[0].Index != 5 || !cmp.Equal(res.Missing, [][]string{{"999"}}) {
		t.Fatalf("result %+v", res)
	}
	var ids []string
	for _, b := range res.Batches {
		for _, r := range readCSV(t, b.Path)[1:] {
			ids = append(ids, r[0])
		}
	}
	if diff := cmp.Diff([]string{"7", "23", "42", "60"}, ids); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if b := res.Batches[0]; b.FirstRow != 6 || !cmp.Equal(b.LastKey, []string{"23"}) {
		t.Errorf("first batch positions: %+v", b)
	}

	// Composite key.
	ck := NewKeySet()
	ck.Add([]string{"2", "5"})  // grp = id % 3
	ck.Add([]string{"0", "12"}) //
	ck.Add([]string{"1", "12"}) // no such row
	res, err = src.Extract(t.Context(), Table{Name: "SEQ", From: name, OrderBy: []string{"grp", "id"}, Fields: seqFields()},
		Options{Dir: t.TempDir(), BatchSize: 10, OnlyKeys: ck})
	if err != nil {
		t.Fatal(err)
	}
	got := readCSV(t, res.Batches[0].Path)[1:]
	if len(got) != 2 || got[0][0] != "12" || got[1][0] != "5" || !cmp.Equal(res.Missing, [][]string{{"1", "12"}}) {
		t.Errorf("composite: rows %v, missing %v", got, res.Missing)
	}

	_, err = src.Extract(t.Context(), Table{Name: "SEQ", From: name, OrderBy: []string{"id"}, Fields: seqFields()},
		Options{Dir: t.TempDir(), BatchSize: 10, OnlyKeys: ck})
	wantAll(t, err, "has 2 values but order_by has 1 columns")
}

// TestSQLiteRejectsNULAndInvalidUTF8: the two text faults only SQLite can
// store are rejected rows too, shown escaped in the rejected file.
func TestSQLiteRejectsNULAndInvalidUTF8(t *testing.T) {
	h := sqliteHarness(t)
	name := h.table(t)
	h.createTable(t, name, [][2]string{{"id", "int"}, {"val", "text"}}, [][]string{
		{"1", "'ok'"}, {"2", "CAST(X'61FF62' AS TEXT)"}, {"3", "CAST(X'610062' AS TEXT)"}, {"4", "'fine'"},
	})
	src := h.open(t)
	rej := t.TempDir()
	res, err := src.Extract(t.Context(), Table{Name: "S", From: name, OrderBy: []string{"id"},
		Fields: []Field{{Column: "id", Name: "External_Id__c"}, {Column: "val", Name: "Name"}}},
		Options{Dir: t.TempDir(), RejectDir: rej, BatchSize: 10, MaxRejected: -1})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"External_Id__c", "Name"}, {"1", "ok"}, {"4", "fine"}}, readCSV(t, res.Batches[0].Path)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	rows, err := ReadRejected(res.Batches[0].RejectedPath, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Value != `a\xffb` || !strings.Contains(rows[0].Reason, "invalid UTF-8 at byte 1") ||
		rows[1].Value != `a\x00b` || !strings.Contains(rows[1].Reason, "NUL byte at byte 1") {
		t.Errorf("rejected rows: %+v", rows)
	}
}

// TestPlantedLinkRefused: a link at a batch or rejected file's path, or a
// batch directory that is a link, is an error naming the path; the link's
// target is never written.
func TestPlantedLinkRefused(t *testing.T) {
	h := sqliteHarness(t)
	name := badRowsTable(t, h)
	src := h.open(t)
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, link string }{
		{"batch file", "dir/BAD_00001.csv"},
		{"rejected file", "rej/BAD_00001_rejected.csv"},
		{"batch dir", "dir"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			for _, d := range []string{"dir", "rej"} {
				if c.link != d {
					if err := os.Mkdir(filepath.Join(base, d), 0o700); err != nil {
						t.Fatal(err)
					}
				}
			}
			link := filepath.Join(base, c.link)
			to := target
			if c.link == "dir" {
				to = t.TempDir()
			}
			if err := os.Symlink(to, link); err != nil {
				t.Fatal(err)
			}
			_, err := src.Extract(t.Context(), badRowsSpec(name), Options{Dir: filepath.Join(base, "dir"), RejectDir: filepath.Join(base, "rej"),
				BatchSize: 3, MaxRejected: -1, Start: Position{BatchIndex: 1}})
			if !errors.Is(err, ErrLink) {
				t.Fatalf("err = %v, want ErrLink", err)
			}
			wantAll(t, err, link, "remove it")
			if data, _ := os.ReadFile(target); string(data) != "precious\n" {
				t.Errorf("the link's target was written: %q", data)
			}
		})
	}
}

// TestRejectedFileFormat: keys and values with CSV specials, control
// characters and bytes that are not UTF-8 round-trip through a rejected
// file readably, the value bounded to 100 characters.
func TestRejectedFileFormat(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                       "plain",
		"a,b \"q\"\nc\r\td":           `a,b "q"\nc\r\td`,
		"a\x00b\xffc\x7f":             `a\x00b\xffc\x7f`,
		"ünï 🚀\u2028\u200b":           "ünï 🚀\u2028\\u200b",
		strings.Repeat("é", 150):      strings.Repeat("é", 100),
		strings.Repeat("x", 99) + "é": strings.Repeat("x", 99) + "é",
	} {
		if got := excerpt([]byte(in)); got != want {
			t.Errorf("excerpt(%q) = %q, want %q", in, got, want)
		}
	}
	path := filepath.Join(t.TempDir(), "r.csv")
	data := append(rejectedHeader([]string{" A", "B"}), rejectedLine([]string{"x,\"y\"\nz", "k\x00"}, "COL", "F__c", `v "1"`, 7, "reason, with comma", "fix\nit")...)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	rows, err := ReadRejected(path, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []Rejected{{Key: []string{"x,\"y\"\nz", `k\x00`}, Column: "COL", Field: "F__c", Value: `v "1"`, ValueBytes: 7, Reason: "reason, with comma", Fix: "fix\nit"}}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(string(data), "A,B,column,field,value,value_bytes,reason,fix\n") {
		t.Errorf("header: %q", data)
	}
	if _, err := ReadRejected(path, 1); err == nil {
		t.Error("read with the wrong number of key columns: no error")
	}
}
