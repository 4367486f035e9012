package plan_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the source database

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/plan"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// BenchmarkPlanEndToEnd runs a plan of many small tables (batches of 10
// rows) against the emulator over loopback HTTP with instant processing,
// and reports the wall time per batch: the plan's and the pipeline's own
// cost, which must not grow with the number of tables.
//
// Every table loads in one wave; the plan's parallel is twice the number of
// tables (two jobs in flight per table).
//
//	go test -run XXX -bench PlanEndToEnd -benchtime 1x -timeout 20m ./plan
//
// Measured on the 2-core build machine (shared; December 2026), one run each:
//
//	tables  batches/table  batches  wall time  per batch
//	     5             40      200      3.4 s    16.9 ms
//	    25             40    1,000     15.1 s    15.1 ms
//	     5            200    1,000     20.8 s    20.8 ms
//	    50            200   10,000    112.5 s    11.3 ms
//
// The time per batch does not grow with the number of tables (a second run
// of the 25-table case took 8.4 ms per batch: the machine is shared); it
// grows a little with the batches per table, whose manifest is larger.
func BenchmarkPlanEndToEnd(b *testing.B) {
	const rows = 10
	for _, c := range []struct{ tables, batches int }{{5, 40}, {25, 40}, {5, 200}, {50, 200}} {
		tables, batches := c.tables, c.batches
		b.Run(fmt.Sprintf("tables=%d/batches=%d", tables, batches), func(b *testing.B) {
			dir := b.TempDir()
			db := filepath.Join(dir, "src.db")
			conn, err := sql.Open("sqlite", db)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := conn.Exec(`CREATE TABLE ITEMS (ID TEXT PRIMARY KEY, GRP INTEGER, NAME TEXT)`); err != nil {
				b.Fatal(err)
			}
			tx, _ := conn.Begin()
			for t := range tables {
				for i := range batches * rows {
					if _, err := tx.Exec(`INSERT INTO ITEMS VALUES (?, ?, ?)`, fmt.Sprintf("T%02d-%05d", t, i), t, fmt.Sprintf("item %d of table %d", i, t)); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			conn.Close()
			var y strings.Builder
			y.WriteString("tables:\n")
			for t := range tables {
				fmt.Fprintf(&y, "  T%02d:\n    source: src\n    query: SELECT ID, NAME FROM ITEMS WHERE GRP = %d\n    order_by: ID\n    sf_object: Product2\n    external_id_field: External_Id__c\n    fields: {ID: External_Id__c, NAME: Name}\n", t, t)
			}
			cfg, err := pipeline.ParseTablesConfig(strings.NewReader(y.String()), "bench.yaml")
			if err != nil {
				b.Fatal(err)
			}
			emu := sfemu.New(sfemu.WithProcessing(sfemu.ProcessInstant, 0))
			srv := httptest.NewServer(emu)
			defer srv.Close()
			sf, _ := json.Marshal(map[string]any{"conn_type": "http", "host": srv.URL, "login": sfemu.TestClientID, "password": sfemu.TestClientSecret})
			src, _ := json.Marshal(map[string]any{"conn_type": "sqlite", "host": db})
			env := map[string]string{"AIRFLOW_CONN_SALESFORCE_API": string(sf), "AIRFLOW_CONN_SRC": string(src)}
			for i := 0; b.Loop(); i++ {
				sum, err := plan.Execute(b.Context(), plan.Options{WorkDir: dir, LogsDir: filepath.Join(dir, "logs"), RunID: fmt.Sprintf("bench-%d", i),
					Config: cfg, Conf: fmt.Sprintf(`{"batch_size": %d, "parallel": %d}`, rows, 2*tables), Getenv: func(k string) string { return env[k] },
					PollInterval: time.Millisecond})
				if err != nil || sum.Outcome != "succeeded" {
					b.Fatalf("plan: %v", err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N*tables*batches), "ms/batch")
		})
	}
}
