package pipeline_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/internal/demo"
	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// BenchmarkRun measures a whole run (extract, upload, results, status) of
// the demo's PRICES table, 50,000 rows, against the emulator over loopback
// HTTP with instant job processing: the pipeline's own cost. In 10 batches
// it is mostly extraction and HTTP; in 100 the per-batch bookkeeping
// (manifest writes, one job and three downloads per batch) shows.
//
//	go test -run XXX -bench Run -benchtime 3x ./pipeline
func BenchmarkRun(b *testing.B) {
	dir := b.TempDir()
	db := filepath.Join(dir, "erp.db")
	const products, prices = 5000, 50000
	if _, err := demo.Generate(b.Context(), db, demo.Options{Products: products, Prices: prices}); err != nil {
		b.Fatal(err)
	}
	tables, err := pipeline.ParseTablesConfig(strings.NewReader(demo.TablesYAML()), "demo")
	if err != nil {
		b.Fatal(err)
	}
	emu := sfemu.New(sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	srv := httptest.NewServer(emu)
	defer srv.Close()
	sf, _ := json.Marshal(map[string]any{"conn_type": "http", "host": srv.URL, "login": sfemu.TestClientID, "password": sfemu.TestClientSecret})
	src, _ := json.Marshal(map[string]any{"conn_type": "sqlite", "host": db})
	env := map[string]string{"AIRFLOW_CONN_SALESFORCE_API": string(sf), "AIRFLOW_CONN_DEMO_ERP": string(src)}
	run := func(table, runID string, batchSize int) *pipeline.Summary {
		r, err := pipeline.Prepare(pipeline.Options{WorkDir: dir, LogsDir: filepath.Join(dir, "logs"), RunID: runID, PollInterval: 1e6,
			Inputs: pipeline.Inputs{Table: table, Conf: fmt.Sprintf(`{"batch_size": %d}`, batchSize), Getenv: func(k string) string { return env[k] }, Tables: tables}})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		s, err := r.Run(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	run(demo.ProductsTable, "products", 5000) // prices look their products up
	for _, batches := range []int{10, 100} {
		b.Run(fmt.Sprintf("batches=%d", batches), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				s := run(demo.PricesTable, fmt.Sprintf("prices-%d-%d", batches, i), prices/batches)
				if s.Successful != prices || s.Batches != batches {
					b.Fatalf("summary = %+v", s)
				}
			}
			b.ReportMetric(float64(prices)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
	os.RemoveAll(dir)
}
