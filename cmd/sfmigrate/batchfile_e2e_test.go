package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChangedBatchFileRefusedByUpload: a batch file written by an earlier
// process (the extract task) is hashed again before upload, and one that
// changed since is refused, naming the file; the run's own process skips
// that second reading only for the files it wrote itself.
func TestChangedBatchFileRefusedByUpload(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 25})
	id := "changed-file"
	for _, step := range []string{"authenticate", "extract"} {
		args := []string{"task", step, "--run-id", id}
		if step == "authenticate" {
			args = append(args, "--table", "PRODUCTS", "--conf", `{"batch_size": 10}`)
		}
		if code, _, stderr := h.main(args[0], args[1:]...); code != 0 {
			t.Fatalf("%s: exit %d\n%s", step, code, stderr)
		}
	}
	path := filepath.Join(h.dir, "runs", id, "batches", "PRODUCTS_00001.csv")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(data, data[len(data)-20:]...), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := h.main("task", "upload", "--run-id", id)
	if code == 0 || !strings.Contains(stderr, "PRODUCTS_00001.csv changed since it was extracted") {
		t.Fatalf("upload of a changed batch file: exit %d, want a refusal naming the file\n%s", code, stderr)
	}
	if n := len(h.emu.Jobs()); n != 0 {
		t.Errorf("%d jobs created, want none: the changed file comes first", n)
	}
}
