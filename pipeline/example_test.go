package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/sfmigrate/sfmigrate/internal/demo"
	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// Example migrates the demo's PRODUCTS table into the emulator.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sfmigrate-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "erp.db")
	if _, err := demo.Generate(ctx, db, demo.Options{Products: 250}); err != nil {
		panic(err)
	}
	srv := httptest.NewServer(sfemu.New(sfemu.WithProcessing(sfemu.ProcessInstant, 0)))
	defer srv.Close()

	// The connections, as Airflow would set them for a task.
	sf, _ := json.Marshal(map[string]string{"conn_type": "http", "host": srv.URL, "login": sfemu.TestClientID, "password": sfemu.TestClientSecret})
	env := map[string]string{
		"AIRFLOW_CONN_SALESFORCE_API": string(sf),
		"AIRFLOW_CONN_DEMO_ERP":       `{"conn_type": "sqlite", "host": "` + db + `"}`,
		"AIRFLOW_VAR_BATCH_SIZE":      "100",
	}
	tables, err := pipeline.ParseTablesConfig(strings.NewReader(demo.TablesYAML()), "tables.yaml")
	if err != nil {
		panic(err)
	}
	r, err := pipeline.Prepare(pipeline.Options{
		WorkDir: dir, LogsDir: filepath.Join(dir, "logs"), RunID: "example", PollInterval: 1e6,
		Inputs: pipeline.Inputs{Table: "PRODUCTS", Getenv: func(k string) string { return env[k] }, Tables: tables},
	})
	if err != nil {
		panic(err)
	}
	defer r.Close()
	s, err := r.Run(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Outcome, s.Batches, "batches,", s.Successful, "records, tracker", s.TrackerStatus)
	fmt.Println("batch_size from", r.Manifest().Settings["batch_size"].Source)
	// Output:
	// succeeded 3 batches, 250 records, tracker Uploaded
	// batch_size from AIRFLOW_VAR_BATCH_SIZE
}
