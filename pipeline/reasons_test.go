package pipeline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMergeResultsAndReasons(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "T_00001_failed.csv")
	b := filepath.Join(dir, "T_00002_failed.csv")
	os.WriteFile(a, []byte("\"sf__Id\",\"sf__Error\",Name\n\"\",\"REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --\",\"\"\n"), 0o644)
	os.WriteFile(b, []byte("\"sf__Id\",\"sf__Error\",Name\n\"\",\"INVALID_FIELD:Foreign key external ID: X not found:--\",\"two\nlines\"\n"+
		"\"\",\"REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --\",\"\"\n"), 0o644)
	path, err := mergeTableResults(dir, "T", ResultFailed, []string{a, b})
	if err != nil || path != filepath.Join(dir, "T_failed.csv") {
		t.Fatalf("merge: %q, %v", path, err)
	}
	got, _ := os.ReadFile(path)
	// One header; each record with the attempt that decided it (1: the
	// batches had no follow-ups).
	want := "sf__Id,sf__Error,Name,sfmigrate__attempt\n,REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --,,1\n" +
		",INVALID_FIELD:Foreign key external ID: X not found:--,\"two\nlines\",1\n" +
		",REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --,,1\n"
	if d := cmp.Diff(want, string(got)); d != "" {
		t.Errorf("merged file (-want +got):\n%s", d)
	}
	reasons := failureReasons([]string{a, b})
	wantR := []FailureReason{
		{Code: "REQUIRED_FIELD_MISSING", Count: 2, Example: "REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --"},
		{Code: "INVALID_FIELD", Count: 1, Example: "INVALID_FIELD:Foreign key external ID: X not found:--"},
	}
	if d := cmp.Diff(wantR, reasons); d != "" {
		t.Errorf("reasons (-want +got):\n%s", d)
	}
	// A per-batch file gone (say, removed by hand): the merged file stays.
	os.Remove(a)
	if p, err := mergeTableResults(dir, "T", ResultFailed, []string{a, b}); err != nil || p != path {
		t.Errorf("merge with a file missing: %q, %v", p, err)
	}
	if again, _ := os.ReadFile(path); string(again) != want {
		t.Errorf("merged file changed after a per-batch file went missing")
	}
}
