package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResumeCommand(t *testing.T) {
	for _, c := range []struct {
		program string
		args    []string
		want    string
	}{
		{"./sfmigrate", []string{"run", "--table", "PRODUCTS", "--tables-config", "sfmigrate-demo/tables.yaml", "--poll-interval", "50ms"},
			"./sfmigrate run --table PRODUCTS --tables-config sfmigrate-demo/tables.yaml --poll-interval 50ms --run-id PRODUCTS-1"},
		{"sfmigrate", []string{"run", "--run-id", "old", "--conf", `{"batch_size": 5000}`},
			`sfmigrate run --run-id PRODUCTS-1 --conf '{"batch_size": 5000}'`},
		{"/tmp/go-build123/b001/exe/sfmigrate", []string{"task", "upload", "--run-id=x y"}, "go run ./cmd/sfmigrate task upload --run-id PRODUCTS-1"},
		{"", []string{"run", "--table", "it's"}, `sfmigrate run --table 'it'\''s' --run-id PRODUCTS-1`},
	} {
		if got := resumeCommand(c.program, c.args, "PRODUCTS-1"); got != c.want {
			t.Errorf("resumeCommand(%q, %q)\n got %s\nwant %s", c.program, c.args, got, c.want)
		}
	}
}

// TestDefaultTablesConfigLabelled: a missing tables.yaml that the user did
// not name is reported as the default, with the flag that changes it.
func TestDefaultTablesConfigLabelled(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	_, err := loadTables(defaultTablesConfig)
	if err == nil || !strings.Contains(err.Error(), "default (--tables-config FILE changes it)") {
		t.Errorf("err = %v", err)
	}
	_, err = loadTables(filepath.Join(dir, "mine.yaml"))
	if err == nil || !strings.Contains(err.Error(), "from --tables-config") {
		t.Errorf("err = %v", err)
	}
}

// TestDefaultLogsDirLabelled: a default --logs-dir that cannot be used is
// said to be the default, with the flag that changes it.
func TestDefaultLogsDirLabelled(t *testing.T) {
	h := newHarness(t, sample{products: 1})
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile(filepath.Join(dir, "salesforce"), []byte("a file, not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := Main(t.Context(), []string{"run", "--table", "PRODUCTS", "--tables-config", h.tables, "--work-dir", h.dir},
		Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return h.env[k] }})
	if code != 2 || !strings.Contains(errb.String(), "default (--logs-dir DIR changes it)") {
		t.Errorf("exit %d:\n%s", code, errb.String())
	}
}
