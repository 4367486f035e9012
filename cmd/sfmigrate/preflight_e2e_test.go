package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// TestConfigErrorsBeforeAnyWrite: each configuration mistake a new user
// makes is found before anything is written to the org, by `run` and by
// the first task step alike: exit 2, the message names the mistake, the
// emulator's request log holds no write (the tracker is untouched) and no
// tracker record exists.
func TestConfigErrorsBeforeAnyWrite(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(h *harness)
		want  []string // in stderr
	}{
		{"wrong order_by column", func(h *harness) {
			h.editTables("order_by: PRODUCT_ID\n", "order_by: PRODUCT_IDD\n")
		}, []string{`tables.PRODUCTS.order_by = "PRODUCT_IDD"`, "is not a column of the source's table PRODUCTS", "did you mean PRODUCT_ID?"}},
		{"mapped column the source lacks", func(h *harness) {
			h.editTables("      NAME: Name\n", "      NAMEX: Name\n")
		}, []string{`tables.PRODUCTS.fields.NAMEX = "Name"`, "maps source column NAMEX, which is not a column", "did you mean NAME?"}},
		{"file that is not a SQLite database", func(h *harness) {
			bad := filepath.Join(h.t.TempDir(), "notes.txt")
			os.WriteFile(bad, []byte(strings.Repeat("this is not a database\n", 200)), 0o644)
			conn, _ := json.Marshal(map[string]any{"conn_type": "sqlite", "host": bad})
			h.env["AIRFLOW_CONN_DEMO_ERP"] = string(conn)
		}, []string{"connection demo_erp", "cannot be read as a SQLite database", "not a database"}},
		{"unsupported api_version", func(h *harness) {
			sf, _ := json.Marshal(map[string]any{"conn_type": "http", "host": h.srv.URL, "login": sfemu.TestClientID,
				"password": sfemu.TestClientSecret, "extra": map[string]any{"api_version": "99.0"}})
			h.env["AIRFLOW_CONN_SALESFORCE_API"] = string(sf)
		}, []string{"v99.0", "does not offer that REST API version", "e.g. 66.0"}},
		{"start_batch past the end", func(h *harness) {
			h.extraFl = append(h.extraFl, "--conf", `{"batch_size": 10, "start_batch": 9}`)
		}, []string{"start_batch", "past the end", "50 rows, 5 batches of batch_size 10", "between 1 and 5"}},
	}
	for _, tc := range cases {
		for _, cmd := range [][]string{{"run", "--table", "PRODUCTS"}, {"task", "authenticate", "--table", "PRODUCTS", "--run-id", "first"}} {
			t.Run(tc.name+"/"+cmd[0], func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, sample{products: 50}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
				tc.setup(h)
				code, _, stderr := h.main(cmd[0], cmd[1:]...)
				t.Logf("stderr:\n%s", stderr)
				if code != 2 {
					t.Fatalf("exit %d, want 2\n%s", code, stderr)
				}
				for _, w := range tc.want {
					if !strings.Contains(stderr, w) {
						t.Errorf("stderr lacks %q:\n%s", w, stderr)
					}
				}
				if w := h.reqs.Writes(); len(w) != 0 {
					t.Errorf("writes sent to the org: %+v", w)
				}
				if n, _ := h.query("SELECT COUNT() FROM Migration_Status__c"); n != 0 {
					t.Errorf("%d tracker records exist", n)
				}
				// No empty run is left behind under a made-up id (a chosen
				// --run-id is kept for the rerun).
				if left, _ := os.ReadDir(filepath.Join(h.dir, "runs")); cmd[0] == "run" && len(left) != 0 {
					t.Errorf("run directories left: %v", left)
				}
			})
		}
	}
}

// TestZeroRowsQuery: a query that returns no rows ends with outcome
// "no rows", exit 0 and a warning; the tracker is not set to "Uploaded".
func TestZeroRowsQuery(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 20}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.editTables("    table: PRODUCTS\n", "    query: SELECT * FROM PRODUCTS WHERE 1 = 0\n")
	code, stdout, stderr := h.main("run", "--table", "PRODUCTS", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	s := lastLineSummary(t, stdout)
	if s.Outcome != "no rows" || s.Rows != 0 || len(s.Warnings) == 0 {
		t.Errorf("summary = %+v", s)
	}
	if st := h.trackerStatus("PRODUCTS"); st == "Uploaded" {
		t.Errorf("tracker %q after loading nothing", st)
	}
	if len(h.emu.Jobs()) != 0 {
		t.Errorf("jobs created")
	}
}

// editTables replaces old (which must occur) by new in the tables config.
func (h *harness) editTables(old, new string) {
	h.t.Helper()
	cfg, err := os.ReadFile(h.tables)
	if err != nil {
		h.t.Fatal(err)
	}
	if !strings.Contains(string(cfg), old) {
		h.t.Fatalf("tables config lacks %q", old)
	}
	if err := os.WriteFile(h.tables, []byte(strings.Replace(string(cfg), old, new, 1)), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// TestOracleConnectionWithoutService: an Oracle URI with host and port but
// no service name is a configuration error (exit 2) that says where the
// service name goes, not a tnsnames alias, and nothing reaches the org.
func TestOracleConnectionWithoutService(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 1})
	h.env["AIRFLOW_CONN_DEMO_ERP"] = "oracle://user:secret-pw@erp-db:1521"
	code, _, stderr := h.main("run", "--table", "PRODUCTS")
	t.Logf("stderr:\n%s", stderr)
	if code != 2 || !strings.Contains(stderr, "oracle://user:pass@erp-db:1521/SERVICE") || strings.Contains(stderr, "tnsnames") ||
		strings.Contains(stderr, "secret-pw") {
		t.Errorf("exit %d:\n%s", code, stderr)
	}
	if len(h.reqs.Requests()) != 0 {
		t.Errorf("requests sent: %+v", h.reqs.Requests())
	}
}
