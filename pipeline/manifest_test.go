package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunStoreRoundTripAndLock(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenRun(dir, "r-1", func(m *Manifest) { m.Table = "T" })
	if err != nil {
		t.Fatal(err)
	}
	// A second opener is refused while the first holds the lock.
	if _, err := OpenRun(dir, "r-1", nil); err == nil || !strings.Contains(err.Error(), "in use by another sfmigrate process") {
		t.Fatalf("second open: err = %v", err)
	}
	err = st.Update(func(m *Manifest) error {
		m.Batches = append(m.Batches, &BatchState{Index: 2, Rows: 5}, &BatchState{Index: 1, Rows: 3, JobID: "750x", JobState: "JobComplete", Processed: 3, Failed: 1})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(st.Dir(), "manifest.json.tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary manifest left behind: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := OpenRun(dir, "r-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	m := st2.Snapshot()
	if m.Table != "T" || len(m.Batches) != 2 || m.Batches[0].Index != 1 {
		t.Fatalf("reloaded manifest = %+v", m)
	}
	tot := m.Totals()
	if tot.Rows != 8 || tot.Successful != 2 || tot.Failed != 1 || tot.Jobs != 1 || tot.JobsDone != 1 {
		t.Errorf("totals = %+v", tot)
	}
}

func TestReadManifestRefusesNewerAndDamaged(t *testing.T) {
	dir := t.TempDir()
	run := RunDir(dir, "r")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(run, "manifest.json"), []byte(`{"version": 99, "run_id": "r"}`), 0o644)
	if _, err := ReadManifest(dir, "r"); err == nil || !strings.Contains(err.Error(), "newer sfmigrate") {
		t.Errorf("newer: err = %v", err)
	}
	os.WriteFile(filepath.Join(run, "manifest.json"), []byte(`{"version": 1, "run_`), 0o644)
	if _, err := ReadManifest(dir, "r"); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged: err = %v", err)
	}
}

func TestValidateRunID(t *testing.T) {
	for _, ok := range []string{"PRODUCT-20261125T193831Z", "manual__2026-11-25T19:38:31.123456+00:00", "r1"} {
		if err := ValidateRunID(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "..", "a/b", "-x", "a b", strings.Repeat("x", 201)} {
		if err := ValidateRunID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
