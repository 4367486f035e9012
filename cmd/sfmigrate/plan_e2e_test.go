package main

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/plan"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// planSample is the demo's four tables: ACCOUNTS (parent account: a
// self-reference; primary contact: a cycle with CONTACTS), CONTACTS,
// PRODUCTS and PRICES.
var planSample = sample{products: 200, prices: 500, accounts: 300, contacts: 400}

func lastLinePlan(t *testing.T, stdout string) plan.Summary {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var s plan.Summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil || !s.Plan {
		t.Fatalf("last stdout line is not a plan summary: %v\nstdout:\n%s", err, stdout)
	}
	return s
}

// sourcePairs reads key -> value (NULL: "") from the sample database.
func sourcePairs(t *testing.T, db, query string) map[string]string {
	t.Helper()
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k string
		var v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out[k] = v.String
	}
	return out
}

// orgPairs reads External_Id__c -> the external id of the record a lookup
// points to ("" when empty), by SOQL on the lookup's relationship.
func (h *harness) orgPairs(object, rel string) map[string]string {
	h.t.Helper()
	_, recs := h.query("SELECT External_Id__c, " + rel + ".External_Id__c FROM " + object)
	out := map[string]string{}
	for _, r := range recs {
		k, _ := r["External_Id__c"].(string)
		v := ""
		if parent, ok := r[rel].(map[string]any); ok {
			v, _ = parent["External_Id__c"].(string)
		}
		out[k] = v
	}
	return out
}

// checkPlanLanded asserts every source row of the four tables is in the org
// with every lookup pointing at the record the source row names.
func (h *harness) checkPlanLanded(s sample) {
	h.t.Helper()
	for _, c := range []struct {
		object, rel, query string
		n                  int
	}{
		{"Account", "Parent", "SELECT ACCOUNT_ID, PARENT_ID FROM ACCOUNTS", s.accounts},
		{"Account", "Primary_Contact__r", "SELECT ACCOUNT_ID, PRIMARY_CONTACT_ID FROM ACCOUNTS", s.accounts},
		{"Contact", "Account", "SELECT CONTACT_ID, ACCOUNT_ID FROM CONTACTS", s.contacts},
		{"Product_Price__c", "Product__r", "SELECT 'PP-' || printf('%08d', PRICE_ID), PRODUCT_ID FROM PRICES", s.prices},
	} {
		want := sourcePairs(h.t, h.db, c.query)
		got := h.orgPairs(c.object, c.rel)
		if len(want) != c.n || len(got) != c.n {
			h.t.Errorf("%s: source has %d rows, org %d records, want %d", c.object, len(want), len(got), c.n)
		}
		set, wrong := 0, 0
		for k, v := range want {
			if v != "" {
				set++
			}
			if got[k] != v {
				wrong++
				if wrong <= 3 {
					h.t.Errorf("%s %s: %s -> %q in the org, %q in the source", c.object, k, c.rel, got[k], v)
				}
			}
		}
		if set == 0 {
			h.t.Errorf("%s.%s: the sample sets no lookup: the check proves nothing", c.object, c.rel)
		}
	}
	if n, _ := h.query("SELECT COUNT() FROM Product2"); n != s.products {
		h.t.Errorf("org holds %d products, want %d", n, s.products)
	}
}

// checkPlanJobs asserts every batch of every step of the plan run has
// exactly one job in the org that carried it, and the org has no other job.
func (h *harness) checkPlanJobs(planID string) {
	h.t.Helper()
	st, err := plan.ReadState(h.dir, planID)
	if err != nil {
		h.t.Fatal(err)
	}
	inOrg := map[string]bool{}
	for _, j := range h.emu.Jobs() {
		inOrg[j.ID] = true
	}
	seen := map[string]string{}
	batches, possiblyOpen := 0, 0
	for _, s := range st.Plan.Steps {
		m, err := pipeline.ReadManifest(pipeline.RunDir(h.dir, planID), s.ID)
		if err != nil {
			h.t.Errorf("step %s: %v", s.ID, err)
			continue
		}
		possiblyOpen += len(m.PossiblyOpenJobs)
		for _, b := range m.Batches {
			if b.Empty() {
				continue
			}
			batches++
			if b.JobID == "" || seen[b.JobID] != "" || !inOrg[b.JobID] {
				h.t.Errorf("step %s batch %d: job %q missing, shared (with %s) or not in the org", s.ID, b.Index, b.JobID, seen[b.JobID])
			}
			seen[b.JobID] = s.ID
			if len(b.PreviousJobs) > 0 {
				h.t.Errorf("step %s batch %d: had earlier jobs %v", s.ID, b.Index, b.PreviousJobs)
			}
		}
	}
	// Jobs no manifest records come from a create whose answer was lost or
	// a kill before the id was written: empty, left alone, and counted.
	unknown := 0
	for _, j := range h.emu.Jobs() {
		if seen[j.ID] != "" {
			continue
		}
		unknown++
		if j.State != "Open" && j.State != "Aborted" || j.UploadedBytes != 0 || j.NumberRecordsProcessed != 0 {
			h.t.Errorf("job %s is in no manifest and is %+v; want only empty ones", j.ID, j)
		}
	}
	if unknown > possiblyOpen || len(inOrg)-unknown != batches {
		h.t.Errorf("the org has %d jobs (%d in no manifest, %d possibly open) for %d batches of the plan", len(inOrg), unknown, possiblyOpen, batches)
	}
}

func TestPlanLandsEveryRowAndLookup(t *testing.T) {
	t.Parallel()
	h := newHarness(t, planSample, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	// sfmigrate plan shows the order and writes nothing.
	code, stdout, stderr := h.main("plan", "--json")
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, stderr)
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, stdout)
	}
	if want := "[[ACCOUNTS PRODUCTS] [CONTACTS PRICES] [ACCOUNTS.pass2]]"; !p.Described || fmtWaves(p.Waves) != want {
		t.Errorf("waves %s, want %s (described %v)", fmtWaves(p.Waves), want, p.Described)
	}
	if _, err := os.Stat(h.dir); !os.IsNotExist(err) {
		t.Errorf("sfmigrate plan wrote %s", h.dir)
	}
	if len(h.emu.Jobs()) != 0 {
		t.Errorf("sfmigrate plan created jobs")
	}
	code, stdout, _ = h.main("plan")
	for _, w := range []string{"CONTACTS waits for ACCOUNTS: field Account.External_Id__c looks up Account, loaded by ACCOUNTS",
		"ACCOUNTS points at its own rows: field Parent.External_Id__c looks up Account", "ACCOUNTS.pass2 -> Account, pass 2: ACCOUNT_ID, PARENT_ID, PRIMARY_CONTACT_ID"} {
		if code != 0 || !strings.Contains(stdout, w) {
			t.Errorf("plan output lacks %q:\n%s", w, stdout)
		}
	}

	code, stdout, stderr = h.main("run", "--all-tables", "--run-id", "p", "--conf", `{"batch_size": 60, "parallel": 4, "max_jobs_in_flight": 4}`, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	s := lastLinePlan(t, stdout)
	if s.Outcome != "succeeded" || len(s.Steps) != 5 {
		t.Errorf("summary = %+v", s)
	}
	h.checkPlanLanded(planSample)
	h.checkPlanJobs("p")
	if st := h.trackerStatus("DEMO_PLAN"); st != "Uploaded" {
		t.Errorf("plan tracker = %q", st)
	}
	for _, ref := range []string{"ACCOUNTS", "CONTACTS", "PRODUCTS", "PRICES"} {
		if st := h.trackerStatus(ref); st != "Uploaded" {
			t.Errorf("tracker %s = %q", ref, st)
		}
	}
	// The steps of a wave shared the plan's 4 jobs in flight: two each,
	// uploading at most two files at once.
	m, err := pipeline.ReadManifest(pipeline.RunDir(h.dir, "p"), "ACCOUNTS")
	if err != nil {
		t.Fatal(err)
	}
	if v, p := m.Settings["max_jobs_in_flight"].Value, m.Settings["parallel"].Value; jsonText(v) != "2" || jsonText(p) != "2" {
		t.Errorf("ACCOUNTS ran with max_jobs_in_flight %v, parallel %v; want 2 and 2 (4 shared by 2 steps)", v, p)
	}
	// A rerun of a finished plan sends nothing.
	jobs := len(h.emu.Jobs())
	if code, _, stderr = h.main("run", "--run-id", "p"); code != 0 || len(h.emu.Jobs()) != jobs {
		t.Errorf("rerun: exit %d, jobs %d -> %d\n%s", code, jobs, len(h.emu.Jobs()), stderr)
	}
}

func fmtWaves(w [][]string) string {
	var parts []string
	for _, wave := range w {
		parts = append(parts, "["+strings.Join(wave, " ")+"]")
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// TestPlanParentFailureStopsOnlyItsBranch: products whose name is missing
// fail for good; their prices wait (skipped, exit 3) while the accounts and
// contacts branch loads. With on_parent_failure: continue, the rerun loads
// the prices, and those of the failed products fail.
func TestPlanParentFailureStopsOnlyItsBranch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, planSample, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	cfg, _ := os.ReadFile(h.tables)
	broken := strings.Replace(string(cfg), "    table: PRODUCTS\n", `    query: >-
      SELECT PRODUCT_ID, CASE WHEN CAST(substr(PRODUCT_ID, 3) AS INTEGER) % 10 = 0 THEN NULL ELSE NAME END AS NAME,
             PRODUCT_CODE, DESCRIPTION, FAMILY, ACTIVE, LIST_PRICE, LAUNCH_DATE, LAST_CHANGED FROM PRODUCTS
`, 1)
	if broken == string(cfg) {
		t.Fatal("the demo config changed: PRODUCTS is no longer a table entry")
	}
	os.WriteFile(h.tables, []byte(broken), 0o644)
	code, stdout, stderr := h.main("run", "--all-tables", "--run-id", "b", "--conf", `{"batch_size": 100, "record_retries": 0}`, "--json")
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s", code, stderr)
	}
	s := lastLinePlan(t, stdout)
	states := map[string]string{}
	for _, st := range s.Steps {
		states[st.ID] = st.State
	}
	want := map[string]string{"ACCOUNTS": "succeeded", "CONTACTS": "succeeded", "ACCOUNTS.pass2": "succeeded", "PRODUCTS": "partial", "PRICES": "skipped"}
	if jsonText(states) != jsonText(want) {
		t.Errorf("states %v, want %v", states, want)
	}
	if !strings.Contains(stderr, "PRICES skipped: waits for PRODUCTS, which ended with 20 failed") {
		t.Errorf("no reason for the skip:\n%s", stderr)
	}
	for _, j := range h.emu.Jobs() {
		if j.Object == "Product_Price__c" {
			t.Errorf("a Product_Price__c job exists: %+v", j)
		}
	}
	if n, _ := h.query("SELECT COUNT() FROM Contact"); n != planSample.contacts {
		t.Errorf("contacts in the org: %d", n)
	}
	if st := h.trackerStatus("DEMO_PLAN"); st != "In Progress" {
		t.Errorf("plan tracker = %q", st)
	}
	// The user decides the prices go anyway.
	os.WriteFile(h.tables, []byte(strings.Replace(broken, "    query: >-\n      SELECT 'PP-'", "    on_parent_failure: continue\n    query: >-\n      SELECT 'PP-'", 1)), 0o644)
	code, stdout, stderr = h.main("run", "--run-id", "b", "--json")
	if code != 3 {
		t.Fatalf("rerun: exit %d, want 3\n%s", code, stderr)
	}
	for _, st := range lastLinePlan(t, stdout).Steps {
		if st.ID == "PRICES" && (st.State != "partial" || st.Failed != 50 || st.Successful != 450) {
			t.Errorf("PRICES after continue: %+v", st)
		}
	}
}

// TestPlanRequiredCycleRefused: when Account.Primary_Contact__c and
// Contact.AccountId are both required, neither table can load first: the
// plan is refused (exit 2) naming the fields, and nothing is sent.
func TestPlanRequiredCycleRefused(t *testing.T) {
	t.Parallel()
	objs := sfemu.DefaultObjects()
	for i := range objs {
		for j := range objs[i].Fields {
			f := &objs[i].Fields[j]
			if f.Name == "Primary_Contact__c" || (objs[i].Name == "Contact" && f.Name == "AccountId") {
				f.Required = true
			}
		}
	}
	h := newHarness(t, planSample, sfemu.WithObjects(objs), sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	for _, cmd := range [][]string{{"plan"}, {"run", "--all-tables"}, {"run", "--tables", "ACCOUNTS,CONTACTS"}} {
		code, _, stderr := h.main(cmd[0], cmd[1:]...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", cmd, code, stderr)
		}
		for _, w := range []string{"ACCOUNTS.Primary_Contact__r.External_Id__c (Account.Primary_Contact__c, required)", "CONTACTS.Account.External_Id__c (Contact.AccountId, required)"} {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: message lacks %q:\n%s", cmd, w, stderr)
			}
		}
	}
	if jobs := h.emu.Jobs(); len(jobs) != 0 {
		t.Errorf("jobs were created: %+v", jobs)
	}
	if n, _ := h.query("SELECT COUNT() FROM Migration_Status__c"); n != 0 {
		t.Errorf("%d tracker records were written", n)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "runs")); !os.IsNotExist(err) {
		t.Errorf("a run directory was created")
	}
	// Without the cycle's tables the rest of the plan is fine.
	if code, _, stderr := h.main("run", "--tables", "PRODUCTS,PRICES", "--conf", `{"batch_size": 100}`); code != 0 {
		t.Errorf("PRODUCTS,PRICES: exit %d\n%s", code, stderr)
	}
}

func TestPlanUsageErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 10}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--table", "PRODUCTS", "--tables", "PRICES"}, "not both"},
		{[]string{"run", "--tables", "PRODUCT"}, "did you mean PRODUCTS?"},
		{[]string{"run", "--all-tables", "--conf", `{"sf_object": "Account"}`}, "sf_object (from run config (--conf)): cannot be given for a plan"},
		{[]string{"plan", "--tables", "NOPE"}, "--tables"},
		{[]string{"run", "--tables", "PRODUCTS", "--run-id", "pp", "--conf", `{"batch_size": 5}`}, ""},
		{[]string{"task", "upload", "--run-id", "pp"}, "run pp is a plan run"},
	} {
		code, _, stderr := h.main(c.args[0], c.args[1:]...)
		if c.want == "" { // a step of the test: must succeed
			if code != 0 {
				t.Fatalf("%v: exit %d\n%s", c.args, code, stderr)
			}
			continue
		}
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, want 2 and %q\n%s", c.args, code, c.want, stderr)
		}
	}
	if len(h.emu.Jobs()) != 2 {
		t.Errorf("%d jobs were created, want the plan's 2", len(h.emu.Jobs()))
	}
}

// TestPlanStepConfigsRunAsTasks: what an orchestrator does with
// 'sfmigrate plan --json --step-configs DIR' (examples/airflow_plan_dag.py):
// each step, in wave order, as plain single-table task steps with its own
// tables config and run id, lands every row and lookup.
func TestPlanStepConfigsRunAsTasks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, planSample, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	steps := filepath.Join(t.TempDir(), "steps")
	code, stdout, stderr := h.main("plan", "--json", "--step-configs", steps)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, stderr)
	}
	var p plan.Plan
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatal(err)
	}
	for _, wave := range p.Waves {
		for _, id := range wave {
			st := p.Step(id)
			runID := "dagrun." + id
			for _, step := range pipeline.Steps {
				args := []string{step, "--run-id", runID, "--tables-config", filepath.Join(steps, id+".yaml")}
				if step == pipeline.StepAuthenticate || step == pipeline.StepExtract {
					args = append(args, "--table", st.Table)
				}
				if step == pipeline.StepExtract {
					args = append(args, "--conf", `{"batch_size": 100}`)
				}
				if code, _, stderr := h.main("task", args...); code != 0 {
					t.Fatalf("%s task %s: exit %d\n%s", id, step, code, stderr)
				}
			}
		}
	}
	h.checkPlanLanded(planSample)
}
