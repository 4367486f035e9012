package pipeline_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sfmigrate/sfmigrate/internal/demo"
	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// TestRunLeavesNoGoroutines: every goroutine a run starts (extractor,
// feeder, uploaders, waiters, the poller, the collector's workers, the
// stop-grace watcher) has an owner that waits for it: none is left once
// Run returns, after a run with follow-up jobs and after one stopped
// half way.
func TestRunLeavesNoGoroutines(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stop, async bool
	}{
		{"finished", false, false},
		{"stopped while jobs process", true, true},
		// Jobs end at once; the follow-ups wait 250ms to join the load
		// (followUpDelay) and the stop comes first: their timers end too.
		{"stopped with follow-ups due", true, false},
	} {
		stop := tc.stop
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "erp.db")
			if _, err := demo.Generate(t.Context(), db, demo.Options{Products: 600}); err != nil {
				t.Fatal(err)
			}
			processing := sfemu.WithProcessing(sfemu.ProcessInstant, 0)
			if tc.async {
				processing = sfemu.WithProcessing(sfemu.ProcessAsync, 300*time.Millisecond)
			}
			emu := sfemu.New(processing)
			emu.LockRecordsFor("Product2", 1, demo.ProductKey(5), demo.ProductKey(305)) // follow-ups
			srv := httptest.NewServer(emu)
			before := goleak.IgnoreCurrent()
			sf, _ := json.Marshal(map[string]string{"conn_type": "http", "host": srv.URL, "login": sfemu.TestClientID, "password": sfemu.TestClientSecret})
			env := map[string]string{
				"AIRFLOW_CONN_SALESFORCE_API": string(sf),
				"AIRFLOW_CONN_DEMO_ERP":       `{"conn_type": "sqlite", "host": "` + db + `"}`,
				"AIRFLOW_VAR_BATCH_SIZE":      "100",
			}
			tables, err := pipeline.ParseTablesConfig(strings.NewReader(demo.TablesYAML()), "tables.yaml")
			if err != nil {
				t.Fatal(err)
			}
			r, err := pipeline.Prepare(pipeline.Options{
				WorkDir: dir, LogsDir: filepath.Join(dir, "logs"), RunID: "g", PollInterval: time.Millisecond, StopGrace: time.Second,
				Inputs: pipeline.Inputs{Table: "PRODUCTS", Getenv: func(k string) string { return env[k] }, Tables: tables},
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if stop {
				time.AfterFunc(150*time.Millisecond, cancel)
			}
			s, runErr := r.Run(ctx)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if !stop && (runErr != nil || s.Successful != 600 || s.FollowUpJobs != 2) {
				t.Fatalf("run: %v, summary %+v", runErr, s)
			}
			if stop && runErr == nil {
				t.Fatalf("the stopped run ended without an error: %+v", s)
			}
			// The server's own goroutines end with it; then nothing of the run may be left.
			srv.Close()
			emu.Close()
			goleak.VerifyNone(t, before)
		})
	}
}
