package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/internal/demo"
	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// Price lists too long for Product_Price__c.Price_List__c (40 characters).
const longPriceList = "A price list whose name is far too long for its field"

// newRetryHarness loads the demo products and runs the prices (run id pp,
// batches of 25) with 3 orphan prices (PP-101..103 reference products that
// do not exist: failed) and prices 7 and 55 too long (rejected): exit 3.
func newRetryHarness(t *testing.T, opts ...sfemu.Option) *harness {
	t.Helper()
	if len(opts) == 0 {
		opts = []sfemu.Option{sfemu.WithProcessing(sfemu.ProcessInstant, 0)}
	}
	h := newHarness(t, sample{products: 50, prices: 100, orphans: 3}, opts...)
	if code, _, stderr := h.mainProcessing("run", "--table", "PRODUCTS", "--run-id", "p"); code != 0 {
		t.Fatalf("products: exit %d\n%s", code, stderr)
	}
	db := openSQLite(t, h.db)
	if _, err := db.Exec(`UPDATE PRICES SET PRICE_LIST = ? WHERE PRICE_ID IN (7, 55)`, longPriceList); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := h.mainProcessing("run", "--table", "PRICES", "--run-id", "pp", "--conf", `{"batch_size": 25}`, "--json")
	if code != 3 {
		t.Fatalf("prices: exit %d, want 3\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	checkFinalOutcomes(t, s)
	if s.Rows != 103 || s.Successful != 98 || s.Failed != 3 || s.Rejected != 2 || len(s.RejectedFiles) != 2 {
		t.Fatalf("first run: summary = %+v", s)
	}
	return h
}

// fixSource makes the given orphan prices' products exist (inserted into the
// ERP and loaded by a products run) and shortens the too-long price lists.
func (h *harness) fixSource(runID string, orphans ...int) {
	h.t.Helper()
	db := openSQLite(h.t, h.db)
	for _, i := range orphans {
		if _, err := db.Exec(`INSERT INTO PRODUCTS (PRODUCT_ID, NAME, ACTIVE) VALUES (?, ?, 1)`, fmt.Sprintf("P-GONE-%d", i), fmt.Sprintf("Restored %d", i)); err != nil {
			h.t.Fatal(err)
		}
	}
	if _, err := db.Exec(`UPDATE PRICES SET PRICE_LIST = 'Fixed' WHERE PRICE_LIST = ?`, longPriceList); err != nil {
		h.t.Fatal(err)
	}
	if code, _, stderr := h.mainProcessing("run", "--table", "PRODUCTS", "--run-id", runID); code != 0 {
		h.t.Fatalf("products %s: exit %d\n%s", runID, code, stderr)
	}
}

// finalOutcome reads the final result files of an extracted batch and
// returns, by price key, its outcome and the attempt that decided it.
func finalOutcome(t *testing.T, b *pipeline.BatchState) map[string]string {
	t.Helper()
	if b.Final == nil {
		t.Fatalf("batch %d has no merged final results: %+v", b.Index, b)
	}
	out := map[string]string{}
	for _, kind := range []string{"successful", "failed", "unprocessed"} {
		if b.Final[kind] == nil || b.Final[kind].Rows == 0 {
			continue // no file for no rows
		}
		header, rows := csvRows(t, b.Final[kind].Path)
		if int64(len(rows)) != b.Final[kind].Rows {
			t.Errorf("batch %d final %s: %d rows, manifest says %d", b.Index, kind, len(rows), b.Final[kind].Rows)
		}
		key := slices.Index(header, "External_Id__c")
		for _, r := range rows {
			if _, dup := out[r[key]]; dup {
				t.Errorf("batch %d: %s appears twice in the final results", b.Index, r[key])
			}
			out[r[key]] = kind + " " + r[len(r)-1]
		}
	}
	return out
}

// TestRetryFailedAfterFixingSource: permanent failures and rejected rows
// are loaded by --retry-failed once fixed at the source, in two rounds; the
// summary, tracker, result files and org agree.
func TestRetryFailedAfterFixingSource(t *testing.T) {
	t.Parallel()
	h := newRetryHarness(t)

	// Round 1: the text is fixed and two of the three products restored.
	h.fixSource("p2", 101, 102)
	code, stdout, stderr := h.main("run", "--run-id", "pp", "--retry-failed", "--json")
	if code != 3 {
		t.Fatalf("round 1: exit %d, want 3\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	checkFinalOutcomes(t, s)
	if s.Rows != 103 || s.Successful != 102 || s.Failed != 1 || s.Rejected != 0 || s.RetryRounds != 1 || len(s.RejectedFiles) != 0 || len(s.FailedFiles) != 1 {
		t.Errorf("round 1: summary = %+v", s)
	}
	for _, w := range []string{"retry round 1: looking up 5 rows", "3 failed, 0 unprocessed, 2 rejected", "5 rows found again, in 3 follow-up batches"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("round 1: stderr lacks %q:\n%s", w, stderr)
		}
	}
	if _, rows := csvRows(t, filepath.Join(h.logs, "pp", "PRICES_failed.csv")); len(rows) != 1 || rows[0][2] != demo.PriceKey(103) {
		t.Errorf("round 1: the table's failed file holds %v, want %s alone", rows, demo.PriceKey(103))
	}
	_, recs := h.query("SELECT Status__c, Records_Total__c, Records_Failed__c FROM Migration_Status__c WHERE External_Ref__c = 'PRICES'")
	if len(recs) != 1 || recs[0]["Status__c"] != "In Progress" || recs[0]["Records_Total__c"] != 103.0 || recs[0]["Records_Failed__c"] != 1.0 {
		t.Errorf("round 1: tracker = %v", recs)
	}
	m := h.manifest("pp")
	if fu := m.Batch(1).FollowUp; fu == 0 || m.Batch(fu).Via != "retry-failed" || m.Batch(fu).Attempt != 2 || m.Batch(1).RetriedRejected != 1 {
		t.Errorf("round 1: batch 1 = %+v", m.Batch(1))
	}

	// Round 2: the last product restored.
	h.fixSource("p3", 103)
	code, stdout, stderr = h.main("run", "--run-id", "pp", "--retry-failed", "--json")
	if code != 0 {
		t.Fatalf("round 2: exit %d, want 0\n%s", code, stderr)
	}
	s = lastLineSummary(t, stdout)
	checkFinalOutcomes(t, s)
	if s.Rows != 103 || s.Successful != 103 || s.Failed != 0 || s.Rejected != 0 || s.Outcome != "succeeded" || s.TrackerStatus != "Uploaded" ||
		s.RetryRounds != 2 || len(s.FailedFiles)+len(s.RejectedFiles)+len(s.UnprocessedFiles) != 0 {
		t.Errorf("round 2: summary = %+v", s)
	}
	if !strings.Contains(stderr, "retry round 2: looking up 1 rows") {
		t.Errorf("round 2 does not look up the one row left:\n%s", stderr)
	}
	if st := h.trackerStatus("PRICES"); st != "Uploaded" {
		t.Errorf("tracker = %q", st)
	}
	var onDisk pipeline.Summary
	data, err := os.ReadFile(filepath.Join(h.logs, "pp", "summary.json"))
	if err != nil || json.Unmarshal(data, &onDisk) != nil || onDisk.Successful != 103 || onDisk.RetryRounds != 2 {
		t.Errorf("summary.json: %v %+v", err, onDisk)
	}
	if n, _ := h.query("SELECT COUNT() FROM Product_Price__c"); n != 103 {
		t.Errorf("org holds %d prices, want 103", n)
	}
	for _, i := range []int{7, 55} {
		_, recs := h.query("SELECT Price_List__c FROM Product_Price__c WHERE External_Id__c = '" + demo.PriceKey(i) + "'")
		if len(recs) != 1 || recs[0]["Price_List__c"] != "Fixed" {
			t.Errorf("price %d: %v", i, recs)
		}
	}
	for _, i := range []int{101, 102, 103} {
		_, recs := h.query("SELECT Product__c FROM Product_Price__c WHERE External_Id__c = '" + demo.PriceKey(i) + "'")
		_, prod := h.query(fmt.Sprintf("SELECT Id FROM Product2 WHERE External_Id__c = 'P-GONE-%d'", i))
		if len(recs) != 1 || len(prod) != 1 || recs[0]["Product__c"] != prod[0]["Id"] {
			t.Errorf("price %d links to %v, product is %v", i, recs, prod)
		}
	}
	// The final result files show each row once, with the attempt that
	// landed it.
	m = h.manifest("pp")
	b1 := finalOutcome(t, m.Batch(1))
	if len(b1) != 25 || b1[demo.PriceKey(7)] != "successful 2" || b1[demo.PriceKey(1)] != "successful 1" {
		t.Errorf("batch 1 final outcomes: %d rows, PP-7 %q, PP-1 %q", len(b1), b1[demo.PriceKey(7)], b1[demo.PriceKey(1)])
	}
	b5 := finalOutcome(t, m.Batch(5))
	if want := map[string]string{demo.PriceKey(101): "successful 2", demo.PriceKey(102): "successful 2", demo.PriceKey(103): "successful 3"}; !mapsEqual(b5, want) {
		t.Errorf("batch 5 final outcomes = %v, want %v", b5, want)
	}
	h.checkOneJobPerBatch("pp", "Product_Price__c")
	if _, err := os.Stat(filepath.Join(h.logs, "pp", "PRICES_failed.csv")); !os.IsNotExist(err) {
		t.Errorf("the table's failed file is still there with no row failed: %v", err)
	}

	// Nothing left: a third round changes nothing.
	code, _, stderr = h.main("run", "--run-id", "pp", "--retry-failed")
	if code != 0 || !strings.Contains(stderr, "no failed, unprocessed or rejected rows to retry") {
		t.Errorf("round 3: exit %d\n%s", code, stderr)
	}
	if h.manifest("pp").RetryRounds != 2 {
		t.Errorf("round 3 was recorded")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRetryFailedKeyGone: a row deleted at the source keeps its failed
// outcome; the warning names it and nothing is recorded.
func TestRetryFailedKeyGone(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 20, prices: 10, orphans: 1}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	if code, _, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "p"); code != 0 {
		t.Fatalf("products: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := h.main("run", "--table", "PRICES", "--run-id", "pp"); code != 3 {
		t.Fatalf("prices: exit %d, want 3\n%s", code, stderr)
	}
	if _, err := openSQLite(t, h.db).Exec(`DELETE FROM PRICES WHERE PRICE_ID = 11`); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := h.main("run", "--run-id", "pp", "--retry-failed", "--json")
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	checkFinalOutcomes(t, s)
	if s.Failed != 1 || s.Successful != 10 || s.RetryRounds != 0 {
		t.Errorf("summary = %+v", s)
	}
	if !strings.Contains(stderr, "1 of the 1 rows to retry are no longer at the source") || !strings.Contains(stderr, demo.PriceKey(11)) {
		t.Errorf("no warning naming the row gone:\n%s", stderr)
	}
}

// TestRetryFailedRefusals: --retry-failed is refused (exit 2, naming the
// cause and the fix) without a run, for a run not finished, with frozen
// settings changed, for a table extracted by offset and for order_by
// columns not mapped to fields.
func TestRetryFailedRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 30, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	expect := func(what string, want []string, args ...string) {
		t.Helper()
		code, _, stderr := h.main("run", args...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2\n%s", what, code, stderr)
		}
		for _, w := range want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", what, w, stderr)
			}
		}
	}
	expect("no run", []string{"no run with this id", "nope"}, "--run-id", "nope", "--retry-failed")
	expect("no run id", []string{"--retry-failed", "--run-id"}, "--table", "PRODUCTS", "--retry-failed")
	if code, _, stderr := h.main("task", "authenticate", "--run-id", "half", "--table", "PRODUCTS"); code != 0 {
		t.Fatalf("authenticate: exit %d\n%s", code, stderr)
	}
	expect("not finished", []string{"has not finished", "sfmigrate run --run-id half"}, "--run-id", "half", "--retry-failed")
	if code, _, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "done", "--conf", `{"batch_size": 10}`); code != 0 {
		t.Fatalf("products: exit %d\n%s", code, stderr)
	}
	expect("frozen setting", []string{"batch_size", "changing it would make its batches mean other rows"},
		"--run-id", "done", "--retry-failed", "--conf", `{"batch_size": 7}`)

	// A key column without a type holds numbers as text: its keys do not
	// read back exactly, so the table is extracted by offset.
	db := openSQLite(t, h.db)
	if _, err := db.Exec(`CREATE TABLE NUMS (K, NAME TEXT)`); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if _, err := db.Exec(`INSERT INTO NUMS VALUES (?, ?)`, fmt.Sprint(i*10), fmt.Sprintf("Num %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	extra := `
  NUMS:
    source: demo_erp
    table: NUMS
    order_by: K
    sf_object: Product2
    external_id_field: External_Id__c
    fields:
      K: External_Id__c
      NAME: Name
  NAMES:
    source: demo_erp
    table: NUMS
    order_by: K
    sf_object: Product2
    operation: insert
    fields:
      NAME: Name
`
	tables, err := os.ReadFile(h.tables)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.tables, append(tables, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"NUMS", "NAMES"} {
		if code, _, stderr := h.main("run", "--table", tbl, "--run-id", strings.ToLower(tbl), "--conf", `{"batch_size": 2}`); code != 0 {
			t.Fatalf("%s: exit %d\n%s", tbl, code, stderr)
		}
	}
	expect("offset", []string{"extracted by offset", "no key to find rows by", "start a new run"}, "--run-id", "nums", "--retry-failed")
	// NAMES's key reads back exactly once it is text.
	if _, err := db.Exec(`CREATE TABLE WORDS (K TEXT PRIMARY KEY, NAME TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO WORDS VALUES ('a', 'Alpha'), ('b', 'Beta')`); err != nil {
		t.Fatal(err)
	}
	words := strings.ReplaceAll(strings.SplitN(extra, "  NAMES:", 2)[1], "table: NUMS", "table: WORDS")
	if err := os.WriteFile(h.tables, append(tables, "\n  WORDS:"+words...), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := h.main("run", "--table", "WORDS", "--run-id", "words"); code != 0 {
		t.Fatalf("WORDS: exit %d\n%s", code, stderr)
	}
	expect("unmapped key", []string{"tables.WORDS.order_by = \"K\"", "not mapped to fields", "cannot be traced back"}, "--run-id", "words", "--retry-failed")
	// Nothing of a refused retry is recorded.
	if m := h.manifest("done"); m.RetryRounds != 0 || !m.StepDone(pipeline.StepUpdateStatus) {
		t.Errorf("a refused retry changed the run: %+v", m.Steps)
	}
}

// TestRetryFailedUnprocessedWithRecordRetries: the unprocessed rows of a
// job that ended Failed (record_retries 0 left them so) are loaded by
// --retry-failed, and a lock error in the retry's follow-up is retried at
// record level like in any follow-up.
func TestRetryFailedUnprocessedWithRecordRetries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 300, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.emu.FailNextJob("InvalidBatch : Failed to process query: simulated")
	code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "un", "--conf", `{"batch_size": 100, "parallel": 1, "record_retries": 0}`, "--json")
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	checkFinalOutcomes(t, s)
	if s.Unprocessed != 100 || s.Successful != 200 || s.JobsFailed != 1 {
		t.Fatalf("first run: summary = %+v", s)
	}
	h.emu.LockRecordsFor("Product2", 1, demo.ProductKey(5))
	code, stdout, stderr = h.main("run", "--run-id", "un", "--retry-failed", "--conf", `{"record_retries": 2}`, "--json")
	if code != 0 {
		t.Fatalf("retry: exit %d, want 0\n%s", code, stderr)
	}
	s = lastLineSummary(t, stdout)
	checkFinalOutcomes(t, s)
	if s.Successful != 300 || s.Unprocessed != 0 || s.JobsFailed != 0 || s.FollowUpJobs != 2 || s.Retried != 101 || s.TrackerStatus != "Uploaded" {
		t.Errorf("retry: summary = %+v", s)
	}
	if !strings.Contains(stderr, "0 failed, 100 unprocessed, 0 rejected") {
		t.Errorf("retry does not tell what it looks up:\n%s", stderr)
	}
	if n, _ := h.query("SELECT COUNT() FROM Product2"); n != 300 {
		t.Errorf("org holds %d products, want 300", n)
	}
	m := h.manifest("un")
	var failedBatch *pipeline.BatchState
	for _, b := range m.Batches {
		if !b.IsFollowUp() && b.FollowUp != 0 {
			failedBatch = b
		}
	}
	if failedBatch == nil {
		t.Fatalf("no batch got a follow-up")
	}
	got := finalOutcome(t, failedBatch)
	if len(got) != 100 {
		t.Errorf("batch %d final results: %d rows, want 100", failedBatch.Index, len(got))
	}
	for key, outcome := range got {
		want := "successful 2"
		if key == demo.ProductKey(5) {
			want = "successful 3"
		}
		if outcome != want {
			t.Errorf("%s: %q, want %q", key, outcome, want)
		}
	}
	h.checkOneJobPerBatch("un", "Product2")
}
