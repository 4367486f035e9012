package main

// End-to-end tests of what an Airflow deployment relies on: the tracker and
// auth commands behind the provider's Python interface, run ids as Airflow
// makes them, run config given to some steps only, and unknown run config
// keys.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

func TestAuthCheck(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 1})
	code, stdout, stderr := h.plain("auth", "check")
	if code != 0 || !strings.Contains(stdout, "instance_url: "+h.srv.URL) || !strings.Contains(stdout, "token_type: Bearer") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout, "access_token") {
		t.Errorf("token printed without --print-token:\n%s", stdout)
	}
	code, stdout, _ = h.plain("auth", "check", "--json", "--print-token")
	var got map[string]string
	if code != 0 || json.Unmarshal([]byte(stdout), &got) != nil {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
	if got["access_token"] == "" || got["instance_url"] != h.srv.URL || got["token_type"] != "Bearer" {
		t.Errorf("auth check --json --print-token = %v", got)
	}
	// The token works: the emulator's query endpoint accepts it.
	if _, err := queryWithToken(t, got["instance_url"], got["access_token"], "SELECT COUNT() FROM Product2"); err != nil {
		t.Errorf("the printed token is refused: %v", err)
	}

	bad := func(conn map[string]any) string {
		b, _ := json.Marshal(conn)
		return string(b)
	}
	for name, tt := range map[string]struct {
		conn string
		want []string
	}{
		"wrong secret": {bad(map[string]any{"conn_type": "http", "host": h.srv.URL, "login": sfemu.TestClientID, "password": "nope"}),
			[]string{"refused", "400", "invalid_client", "client secret"}},
		"unknown client": {bad(map[string]any{"conn_type": "http", "host": h.srv.URL, "login": "nobody", "password": "nope"}),
			[]string{"refused", "invalid_client_id", "client id"}},
		"no login": {bad(map[string]any{"conn_type": "http", "host": h.srv.URL, "password": "x"}),
			[]string{"salesforce_api login", "AIRFLOW_CONN_SALESFORCE_API", "client id"}},
		"no host": {bad(map[string]any{"conn_type": "http", "login": "x", "password": "x"}),
			[]string{"salesforce_api host", "My Domain URL"}},
		"not set": {"", []string{"connection salesforce_api", "is not set"}},
	} {
		h.env["AIRFLOW_CONN_SALESFORCE_API"] = tt.conn
		code, stdout, stderr := h.plain("auth", "check", "--print-token")
		if code != 2 || stdout != "" {
			t.Errorf("%s: exit %d (want 2), stdout %q", name, code, stdout)
		}
		for _, w := range tt.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr does not mention %q:\n%s", name, w, stderr)
			}
		}
		if strings.Contains(stderr, "nope") {
			t.Errorf("%s: the secret was printed:\n%s", name, stderr)
		}
	}
}

func TestTrackerCommands(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 1})
	run := func(args ...string) (int, string, string) {
		t.Helper()
		return h.plain(append(args, "--tables-config", h.tables)...)
	}
	// updateOnly on a record that does not exist: explained, exit 2, nothing created.
	code, _, stderr := run("tracker", "set", "NEW_REF", "Uploaded", "--update-only")
	for _, w := range []string{`"NEW_REF"`, "does not exist", "--update-only never creates one", "tracker set NEW_REF"} {
		if code != 2 || !strings.Contains(stderr, w) {
			t.Errorf("update-only on a missing record: exit %d, stderr does not mention %q:\n%s", code, w, stderr)
		}
	}
	if n, _ := h.query("SELECT COUNT() FROM Migration_Status__c"); n != 0 {
		t.Errorf("%d tracker records after a failed update-only", n)
	}
	// Upsert creates it, with typed fields.
	code, stdout, stderr := run("tracker", "set", "NEW_REF", "Not Started", "--field", "Records_Total__c=12", "--field", "Message__c=from the CLI", "--json")
	if code != 0 || !strings.Contains(stdout, `"status":"Not Started"`) {
		t.Fatalf("upsert: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = run("tracker", "set", "NEW_REF", "In Progress", "--update-only")
	if code != 0 {
		t.Fatalf("update-only: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr = run("tracker", "get", "NEW_REF")
	var rec struct {
		Ref, Status string
		Fields      map[string]any
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &rec) != nil {
		t.Fatalf("get: exit %d\n%s%s", code, stdout, stderr)
	}
	if rec.Ref != "NEW_REF" || rec.Status != "In Progress" || rec.Fields["Message__c"] != "from the CLI" || rec.Fields["Records_Total__c"] != json.Number("12") && rec.Fields["Records_Total__c"] != 12.0 {
		t.Errorf("get = %+v", rec)
	}
	if got := h.trackerStatus("NEW_REF"); got != "In Progress" {
		t.Errorf("org says %q", got)
	}
	// Problems name what to fix.
	for name, tt := range map[string]struct {
		args []string
		code int
		want []string
	}{
		"unknown field":     {[]string{"tracker", "set", "NEW_REF", "x", "--field", "Mesage__c=x"}, 2, []string{"no field Mesage__c", "did you mean Message__c?"}},
		"field type":        {[]string{"tracker", "set", "NEW_REF", "x", "--field", "Records_Total__c=many"}, 2, []string{"Records_Total__c", `"many"`, "not a number"}},
		"field not K=V":     {[]string{"tracker", "set", "NEW_REF", "x", "--field", "Message__c"}, 2, []string{"not K=V"}},
		"fields+updateOnly": {[]string{"tracker", "set", "NEW_REF", "x", "--update-only", "--field", "Message__c=y"}, 2, []string{"--update-only sets the status only"}},
		"no status":         {[]string{"tracker", "set", "NEW_REF"}, 2, []string{"want REF and STATUS"}},
		"get missing":       {[]string{"tracker", "get", "NOPE"}, 1, []string{`External_Ref__c = "NOPE"`, "tracker set NOPE"}},
		"unknown action":    {[]string{"tracker", "delete", "NEW_REF"}, 2, []string{`unknown action "delete"`}},
	} {
		code, _, stderr := run(tt.args...)
		if code != tt.code {
			t.Errorf("%s: exit %d, want %d\n%s", name, code, tt.code, stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr does not mention %q:\n%s", name, w, stderr)
			}
		}
	}
	h.env["AIRFLOW_CONN_SALESFORCE_API"] = `{"conn_type": "http", "host": "` + h.srv.URL + `", "login": "` + sfemu.TestClientID + `", "password": "wrong"}`
	if code, _, stderr := run("tracker", "get", "NEW_REF"); code != 2 || !strings.Contains(stderr, "client secret") {
		t.Errorf("bad secret: exit %d\n%s", code, stderr)
	}
}

// TestAirflowStyleTasks runs the five steps as an Airflow DAG does, with a
// run id holding '~' and '/', the run config given to the extract task only
// (with a key sfmigrate does not know) and a Variable that differs from
// it: every step continues with the run's recorded settings.
func TestAirflowStyleTasks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 25})
	h.env["AIRFLOW_VAR_BATCH_SIZE"] = "7"
	id := "manual__2026-12-05T01:02:03+00:00~retry/1"
	code, _, stderr := h.main("task", "authenticate", "--table", "PRODUCTS", "--run-id", id)
	if code != 0 {
		t.Fatalf("authenticate: exit %d\n%s", code, stderr)
	}
	code, _, stderr = h.main("task", "extract", "--run-id", id, "--conf", `{"batch_size": 10, "notify_email": "ops@example.com"}`)
	if code != 0 {
		t.Fatalf("extract: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, `warning: run config (--conf): unknown key "notify_email" ignored`) {
		t.Errorf("no warning about the unknown key:\n%s", stderr)
	}
	for _, step := range []string{"upload", "collect-results"} {
		if code, _, stderr := h.main("task", step, "--run-id", id); code != 0 {
			t.Fatalf("%s: exit %d\n%s", step, code, stderr)
		}
	}
	code, stdout, stderr := h.main("task", "update-status", "--run-id", id, "--json")
	if code != 0 {
		t.Fatalf("update-status: exit %d\n%s", code, stderr)
	}
	s := h.checkAllLanded(stdout, 25)
	if s.RunID != id || s.Batches != 3 {
		t.Errorf("summary run id %q, %d batches; want %q and 3 (batch_size 10 from the run config)", s.RunID, s.Batches, id)
	}
	dirName := "manual__2026-12-05T01:02:03+00:00%7Eretry%2F1"
	if _, err := os.Stat(filepath.Join(h.dir, "runs", dirName, "manifest.json")); err != nil {
		t.Error(err)
	}
	if s.SummaryFile != filepath.Join(h.logs, dirName, "summary.json") {
		t.Errorf("summary file %q", s.SummaryFile)
	}
	m, err := pipeline.ReadManifest(h.dir, id)
	if err != nil || m.RunID != id || m.Settings["batch_size"].Value != float64(10) {
		t.Errorf("manifest: %v, run id %q, batch_size %+v", err, m.RunID, m.Settings["batch_size"])
	}
}

// TestChangedSettingRefusedBeforeAnyWrite: a later step given another
// value explicitly is refused naming the setting, both values and their
// sources, before it writes anything.
func TestChangedSettingRefusedBeforeAnyWrite(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 12})
	for _, step := range []string{"authenticate", "extract"} {
		if code, _, stderr := h.main("task", step, "--table", "PRODUCTS", "--run-id", "chg", "--conf", `{"batch_size": 5}`); code != 0 {
			t.Fatalf("%s: exit %d\n%s", step, code, stderr)
		}
	}
	before, _ := os.ReadFile(filepath.Join(h.dir, "runs", "chg", "manifest.json"))
	calls := h.emu.APIUsage()
	code, _, stderr := h.main("task", "upload", "--run-id", "chg", "--conf", `{"batch_size": 6}`)
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s", code, stderr)
	}
	for _, w := range []string{`batch_size = "6" (from run config (--conf))`, "changed", "recorded batch_size = 5 (from run config (--conf))", "same batch_size"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr does not mention %q:\n%s", w, stderr)
		}
	}
	after, _ := os.ReadFile(filepath.Join(h.dir, "runs", "chg", "manifest.json"))
	if string(before) != string(after) || h.emu.APIUsage() != calls {
		t.Error("the refused step wrote the manifest or called Salesforce")
	}
	// A status_ref override after the tracker was marked: refused the same way.
	code, _, stderr = h.main("task", "upload", "--run-id", "chg", "--conf", `{"batch_size": 5, "status_ref": "OTHER"}`)
	if code != 2 || !strings.Contains(stderr, `status_ref = "OTHER"`) || !strings.Contains(stderr, `tracker record "PRODUCTS" is already marked "In Progress"`) {
		t.Errorf("status_ref change: exit %d\n%s", code, stderr)
	}
	// A known key with a bad value stops the first step before anything is written.
	code, _, stderr = h.main("task", "authenticate", "--table", "PRODUCTS", "--run-id", "bad", "--conf", `{"batch_size": "lots", "extra": 1}`)
	if code != 2 || !strings.Contains(stderr, `batch_size = "lots"`) {
		t.Errorf("bad value: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(pipeline.RunDir(h.dir, "bad")); !os.IsNotExist(err) {
		t.Errorf("the refused run left a directory: %v", err)
	}
}

// queryWithToken runs one SOQL query with a bearer token as another tool
// holding the token would.
func queryWithToken(t *testing.T, instanceURL, token, soql string) (map[string]any, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, instanceURL+"/services/data/v66.0/query?q="+url.QueryEscape(soql), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	var out map[string]any
	return out, doJSON(req, &out)
}

// plain runs sfmigrate in-process with args alone (no harness flags).
func (h *harness) plain(args ...string) (code int, stdout, stderr string) {
	h.t.Helper()
	var out, errb strings.Builder
	code = Main(h.t.Context(), args, Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return h.env[k] }})
	return code, out.String(), errb.String()
}
