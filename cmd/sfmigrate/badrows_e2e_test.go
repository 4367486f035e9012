package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/sfmigrate/sfmigrate/extract"
	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// badName is the NAME of row id when id is one of the bad rows: text too
// long for Product2.Name (255), a NUL, or bytes that are not UTF-8.
func badName(id int) string {
	switch id % 3 {
	case 0:
		return strings.Repeat("é", 256)
	case 1:
		return "a\x00b"
	}
	return "a\xffb"
}

// newBadRowsHarness is an items harness (itemsTables plus extra table
// settings) over ids I-01..I-<n>; the ids in bad get badName.
func newBadRowsHarness(t *testing.T, n int, bad []int, extra string, opts ...sfemu.Option) *harness {
	t.Helper()
	if len(opts) == 0 {
		opts = []sfemu.Option{sfemu.WithProcessing(sfemu.ProcessInstant, 0)}
	}
	h := newHarness(t, sample{products: 1}, opts...)
	path := filepath.Join(t.TempDir(), "items.db")
	db := openSQLite(t, path)
	if _, err := db.Exec(`CREATE TABLE ITEMS (ID TEXT PRIMARY KEY, NAME TEXT NOT NULL, LAUNCHED DATETIME, CHANGED DATETIME, ACTIVE INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for id := 1; id <= n; id++ {
		name := fmt.Sprintf("Item %d", id)
		if slices.Contains(bad, id) {
			name = badName(id)
		}
		if _, err := db.Exec(`INSERT INTO ITEMS VALUES (?, ?, NULL, NULL, 1)`, itemID(id), name); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(h.tables, []byte(itemsTables+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	conn, _ := json.Marshal(map[string]any{"conn_type": "sqlite", "host": path})
	h.env["AIRFLOW_CONN_ITEMS_DB"] = string(conn)
	return h
}

func itemID(id int) string { return fmt.Sprintf("I-%02d", id) }

// rejectedKeys reads every rejected file of the summary and returns the
// keys in them, sorted (a key rejected twice appears twice).
func rejectedKeys(t *testing.T, s pipeline.Summary) ([]string, []extract.Rejected) {
	t.Helper()
	var keys []string
	var all []extract.Rejected
	for _, f := range s.RejectedFiles {
		rows, err := extract.ReadRejected(f, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			keys = append(keys, r.Key[0])
		}
		all = append(all, rows...)
	}
	sort.Strings(keys)
	return keys, all
}

// checkModes asserts every file under dir is 0600.
func checkModes(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if d.Name() == "lock" {
			return nil // the run's lock file: empty
		}
		n++
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBadRowsRejectedAlone: rows with text too long for the field, a NUL or
// invalid UTF-8 are rejected alone into the rejected files, the rest land;
// a batch whose rows were all rejected gets no job; the run exits 3 with
// the tracker "In Progress"; every file holding source rows is 0600.
func TestBadRowsRejectedAlone(t *testing.T) {
	t.Parallel()
	bad := []int{2, 4, 5, 6}
	h := newBadRowsHarness(t, 10, bad, "")
	code, stdout, stderr := h.main("run", "--table", "ITEMS", "--run-id", "bad", "--conf", `{"batch_size": 2}`, "--keep-batches", "--json")
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	if s.Rejected != 4 || s.Successful != 6 || s.Rows != 6 || s.Failed != 0 || s.Outcome != "partial" || s.TrackerStatus != "In Progress" || s.Batches != 5 {
		t.Errorf("summary = %+v", s)
	}
	if st := h.trackerStatus("ITEMS"); st != "In Progress" {
		t.Errorf("tracker = %q", st)
	}
	if n, _ := h.query("SELECT COUNT() FROM Product2"); n != 6 {
		t.Errorf("org holds %d products, want 6", n)
	}
	for _, id := range bad {
		if n, _ := h.query("SELECT COUNT() FROM Product2 WHERE External_Id__c = '" + itemID(id) + "'"); n != 0 {
			t.Errorf("rejected row %s landed", itemID(id))
		}
	}
	keys, rows := rejectedKeys(t, s)
	if want := []string{"I-02", "I-04", "I-05", "I-06"}; !slices.Equal(keys, want) {
		t.Fatalf("rejected keys %v, want %v", keys, want)
	}
	reasons := map[string]string{}
	for _, r := range rows {
		reasons[r.Key[0]] = r.Column + " " + r.Field + " " + r.Value + " " + r.Reason
		if r.Fix == "" {
			t.Errorf("rejected row %s has no fix", r.Key[0])
		}
	}
	for id, want := range map[string]string{
		"I-02": `NAME Name a\xffb invalid UTF-8 at byte 1`,
		"I-04": `NAME Name a\x00b NUL byte at byte 1`,
		"I-05": `NAME Name a\xffb invalid UTF-8`,
		"I-06": "NAME Name " + strings.Repeat("é", 100) + " value has 256 characters, more than the field limit of 255",
	} {
		if !strings.HasPrefix(reasons[id], want) {
			t.Errorf("%s: %q, want it to start %q", id, reasons[id], want)
		}
	}
	m := h.manifest("bad")
	// Batch 3 (I-05, I-06) was rejected whole: no file, no job.
	b3 := m.Batch(3)
	if b3 == nil || !b3.Empty() || b3.Rejected != 2 || b3.File != "" || b3.JobID != "" || b3.FirstRow != 4 || b3.RejectedFile == "" {
		t.Errorf("batch 3 = %+v", b3)
	}
	if b1 := m.Batch(1); b1.Rows != 1 || b1.Rejected != 1 || b1.RejectedFile != filepath.Join(h.logs, "bad", "ITEMS_00001_rejected.csv") {
		t.Errorf("batch 1 = %+v", b1)
	}
	h.checkOneJobPerBatch("bad", "Product2")
	for _, w := range []string{"4 rows rejected before upload", "rejected", "ITEMS_00001_rejected.csv"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	if n := checkModes(t, filepath.Join(h.dir, "runs", "bad")) + checkModes(t, filepath.Join(h.logs, "bad")); n < 10 {
		t.Errorf("only %d files checked", n)
	}
}

// TestMaxRejectedRowsStops: more rejected rows than max_rejected_rows stop
// the run (exit 1) with the setting, its source and the rejected files
// named; resuming with a higher limit finishes it without repeating a
// rejected row.
func TestMaxRejectedRowsStops(t *testing.T) {
	t.Parallel()
	h := newBadRowsHarness(t, 10, []int{2, 4, 5, 6}, "")
	code, _, stderr := h.main("run", "--table", "ITEMS", "--run-id", "lim", "--conf", `{"batch_size": 2, "max_rejected_rows": 2}`)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	for _, w := range []string{"3 rows rejected, more than max_rejected_rows = 2 (from run config (--conf))", "ITEMS_*_rejected.csv", "row 4 (ID=I-05)", "--run-id lim"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	m := h.manifest("lim")
	if m.Extract.Done || m.Totals().Rejected != 3 || len(m.Batches) != 3 {
		t.Errorf("manifest after the stop: extract %+v, totals %+v, %d batches", m.Extract, m.Totals(), len(m.Batches))
	}
	// Resumed with the same limit: stops at once, nothing new extracted.
	code, _, stderr = h.main("run", "--run-id", "lim", "--conf", `{"batch_size": 2, "max_rejected_rows": 2}`)
	if code != 1 || !strings.Contains(stderr, "max_rejected_rows = 2") {
		t.Errorf("resume with the same limit: exit %d\n%s", code, stderr)
	}
	h.env["AIRFLOW_VAR_MAX_REJECTED_ROWS"] = "10"
	code, stdout, stderr := h.main("run", "--run-id", "lim", "--conf", `{"batch_size": 2}`, "--json")
	if code != 3 {
		t.Fatalf("resume: exit %d, want 3\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	keys, _ := rejectedKeys(t, s)
	if want := []string{"I-02", "I-04", "I-05", "I-06"}; !slices.Equal(keys, want) || s.Successful != 6 || s.Rejected != 4 {
		t.Errorf("after resume: rejected %v, summary %+v", keys, s)
	}
	if n, _ := h.query("SELECT COUNT() FROM Product2"); n != 6 {
		t.Errorf("org holds %d products, want 6", n)
	}
}

// TestTruncateLandsCutText: with truncate for the column, text longer than
// the field lands cut to the field's length and is counted; the run
// succeeds.
func TestTruncateLandsCutText(t *testing.T) {
	t.Parallel()
	h := newBadRowsHarness(t, 3, []int{3}, "    truncate: [NAME]\n")
	code, stdout, stderr := h.main("run", "--table", "ITEMS", "--run-id", "tr", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	if s.Truncated != 1 || s.Successful != 3 || s.Rejected != 0 || s.TrackerStatus != "Uploaded" {
		t.Errorf("summary = %+v", s)
	}
	_, recs := h.query("SELECT Name FROM Product2 WHERE External_Id__c = 'I-03'")
	if len(recs) != 1 || recs[0]["Name"] != strings.Repeat("é", 255) {
		t.Errorf("I-03 landed as %v, want 255 × é", recs)
	}
	if !strings.Contains(stderr, "1 values truncated") {
		t.Errorf("stderr does not report the truncation:\n%s", stderr)
	}
	// A column that is not mapped is a configuration error.
	if err := os.WriteFile(h.tables, []byte(itemsTables+"    truncate: [NAMEZ]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = h.main("run", "--table", "ITEMS", "--run-id", "tr2")
	if code != 2 || !strings.Contains(stderr, `tables.ITEMS.truncate = "NAMEZ"`) {
		t.Errorf("unknown truncate column: exit %d\n%s", code, stderr)
	}
}

// TestKillMidExtractionRejectsOnce: a run killed with SIGKILL while
// extracting and resumed lands every good row once and has every bad row
// in the rejected files exactly once; temporary files of the interrupted
// attempt (and only those) are removed.
func TestKillMidExtractionRejectsOnce(t *testing.T) {
	t.Parallel()
	bad := []int{3, 7, 9, 10, 15, 22, 31, 38}
	const n = 40
	h := newBadRowsHarness(t, n, bad, "", sfemu.WithProcessing(sfemu.ProcessManual, 0))
	cmd := h.command("run", "--table", "ITEMS", "--run-id", "k", "--conf", `{"batch_size": 2, "parallel": 1}`)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Jobs are held, so extraction waits with a few batches written.
	h.waitManifest("k", "some batches extracted, with rejected rows", func(m *pipeline.Manifest) bool {
		return len(m.Batches) >= 5 && !m.Extract.Done && m.Totals().Rejected >= 2
	}, cmd, &out)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed
	m := h.manifest("k")
	if m.Extract.Done {
		t.Fatalf("extraction finished before the kill: the point was not reached")
	}
	// What an attempt killed at other moments leaves, and a file that is
	// not sfmigrate's.
	ours := []string{
		filepath.Join(h.dir, "runs", "k", "manifest.json.tmp"),
		filepath.Join(h.dir, "runs", "k", "batches", "ITEMS_00019.csv.tmp"),
		filepath.Join(h.logs, "k", "ITEMS_00019_rejected.csv.tmp"),
		filepath.Join(h.logs, "k", ".ITEMS_00001_failed.csv.123456.tmp"),
	}
	theirs := filepath.Join(h.logs, "k", "notes.tmp")
	// The rejected file of the first batch not recorded, as if the killed
	// attempt had completed it just before dying: the batch extracted
	// again replaces (or removes) it.
	next := m.LastExtracted().Index + 1
	unrecorded := filepath.Join(h.logs, "k", fmt.Sprintf("ITEMS_%05d_rejected.csv", next))
	for _, p := range append(ours, theirs, unrecorded) {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("I-03,leftover\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := h.mainProcessing("run", "--run-id", "k", "--json")
	if code != 3 {
		t.Fatalf("resume: exit %d, want 3\nfirst run:\n%s\nresume:\n%s", code, out.String(), stderr)
	}
	s := lastLineSummary(t, stdout)
	keys, _ := rejectedKeys(t, s)
	var want []string
	for _, id := range bad {
		want = append(want, itemID(id))
	}
	if !slices.Equal(keys, want) {
		t.Errorf("rejected keys %v, want each of %v once", keys, want)
	}
	if s.Successful != n-int64(len(bad)) || s.Rejected != int64(len(bad)) {
		t.Errorf("summary = %+v", s)
	}
	if got, _ := h.query("SELECT COUNT() FROM Product2"); got != n-len(bad) {
		t.Errorf("org holds %d products, want %d", got, n-len(bad))
	}
	h.checkOneJobPerBatch("k", "Product2")
	for _, p := range ours {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover %s not removed: %v", p, err)
		}
	}
	if _, err := os.Stat(theirs); err != nil {
		t.Errorf("a file that is not sfmigrate's was touched: %v", err)
	}
	onDisk, _ := filepath.Glob(filepath.Join(h.logs, "k", "ITEMS_*_rejected.csv"))
	sort.Strings(onDisk)
	if !slices.Equal(onDisk, s.RejectedFiles) {
		t.Errorf("rejected files on disk %v, in the summary %v", onDisk, s.RejectedFiles)
	}
}

// TestPlantedSymlinkRefused: a symbolic link planted where a rejected,
// batch or result file goes, or in place of the batch directory, stops the
// run with an error naming it; the link's target is not written.
func TestPlantedSymlinkRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, link string }{
		{"rejected file", "logs/ITEMS_00001_rejected.csv"},
		{"batch file", "work/batches/ITEMS_00001.csv"},
		{"batch directory", "work/batches"},
		{"result file", "logs/ITEMS_00001_successful.csv"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newBadRowsHarness(t, 4, []int{2}, "")
			runID := "sl"
			link := strings.NewReplacer("logs/", filepath.Join(h.logs, runID)+"/", "work/", filepath.Join(h.dir, "runs", runID)+"/").Replace(c.link)
			if err := os.MkdirAll(filepath.Dir(link), 0o700); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(t.TempDir(), "target")
			if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			to := target
			if strings.HasSuffix(c.link, "batches") {
				to = filepath.Dir(target)
			}
			if err := os.Symlink(to, link); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := h.main("run", "--table", "ITEMS", "--run-id", runID)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, stderr)
			}
			for _, w := range []string{link, "is a symbolic link", "remove it"} {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if data, _ := os.ReadFile(target); string(data) != "precious\n" {
				t.Errorf("the link's target was written: %q", data)
			}
			if n := len(h.emu.Jobs()); n != 0 && !strings.Contains(c.link, "successful") {
				t.Errorf("%d jobs created", n)
			}
		})
	}
}
