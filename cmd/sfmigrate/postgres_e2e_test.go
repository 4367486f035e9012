package main

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// TestPostgresSourceEndToEnd runs a table from PostgreSQL, with the source
// connection given as the Airflow URI in AIRFLOW_CONN_POSTGRES_TEST (which
// scripts/test sets for a throwaway cluster it starts).
func TestPostgresSourceEndToEnd(t *testing.T) {
	t.Parallel()
	uri := os.Getenv("AIRFLOW_CONN_POSTGRES_TEST")
	if uri == "" {
		t.Skip("PostgreSQL end-to-end test skipped: AIRFLOW_CONN_POSTGRES_TEST is not set (scripts/test starts a throwaway cluster and sets it)")
	}
	db, err := pgconn.Connect(t.Context(), uri)
	if err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("sfm_e2e_products_%d", os.Getpid())
	if _, err := db.Exec(t.Context(), `CREATE TABLE `+table+` AS
		SELECT 'PG-' || lpad(g::text, 6, '0') AS pid,
		       'Name "' || g || '", Grüße' || CASE WHEN g % 7 = 0 THEN E'\nsecond line' ELSE '' END AS name,
		       (g * 1.25)::numeric(18,2) AS price,
		       timestamptz '2026-03-29 00:30:00+00' + g * interval '1 minute' AS changed,
		       CASE WHEN g % 5 = 0 THEN NULL ELSE date '2024-02-29' + g END AS launched
		FROM generate_series(1, 1500) g`).ReadAll(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec(context.Background(), "DROP TABLE IF EXISTS "+table).ReadAll() // best effort cleanup
		db.Close(context.Background())
	})
	h := newHarness(t, sample{products: 1, prices: 0}, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	h.env["AIRFLOW_CONN_POSTGRES_TEST"] = uri
	cfg := `tables:
  PG_PRODUCTS:
    source: postgres_test
    table: ` + table + `
    order_by: pid
    sf_object: Product2
    external_id_field: External_Id__c
    fields:
      pid: External_Id__c
      name: Name
      price: Price__c
      changed: Last_Changed__c
      launched: Launch_Date__c
`
	if err := os.WriteFile(h.tables, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := h.main("run", "--table", "PG_PRODUCTS", "--run-id", "pg", "--conf", `{"batch_size": 400}`, "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if s := lastLineSummary(t, stdout); s.Batches != 4 || s.Successful != 1500 {
		t.Errorf("summary = %+v", s)
	}
	if n, _ := h.query("SELECT COUNT() FROM Product2 WHERE External_Id__c LIKE 'PG-%'"); n != 1500 {
		// The emulator's SOQL subset may lack LIKE: count everything but the SQLite sample's one product.
		if all, _ := h.query("SELECT COUNT() FROM Product2"); all != 1500 {
			t.Errorf("org holds %d products, want 1500", all)
		}
	}
	_, recs := h.query("SELECT Name FROM Product2 WHERE External_Id__c = 'PG-000007'")
	if len(recs) != 1 || recs[0]["Name"] != "Name \"7\", Grüße\nsecond line" {
		t.Errorf("PG-000007 = %v", recs)
	}
}
