package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestUnknownCommandSuggests: a mistyped command gets the likely one and
// the list, on one last line, not the whole help.
func TestUnknownCommandSuggests(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main(t.Context(), []string{"chek"}, Env{Stdout: &out, Stderr: &errb})
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	last := lines[len(lines)-1]
	if code != 2 || !strings.Contains(last, `unknown command "chek"; did you mean "check"?`) || len(lines) != 1 {
		t.Errorf("exit %d:\n%s", code, errb.String())
	}
}

// TestJSONForSettingErrors: with --json a run that cannot start still
// prints its JSON line (outcome failed, the error, exit code 2).
func TestJSONForSettingErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 1})
	for _, args := range [][]string{
		{"--table", "NOPE", "--json"},
		{"--table", "PRODUCTS", "--conf", `{"batch_size": 0}`, "--json"},
		{"--table", "PRODUCTS", "--tables-config", "/nonexistent/tables.yaml", "--json"},
	} {
		code, stdout, stderr := h.main("run", args...)
		var got struct {
			Outcome  string `json:"outcome"`
			Error    string `json:"error"`
			ExitCode int    `json:"exit_code"`
		}
		if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &got); err != nil || code != 2 || got.ExitCode != 2 || got.Outcome != "failed" || got.Error == "" {
			t.Errorf("%v: exit %d, stdout %q (%v)\n%s", args, code, stdout, err, stderr)
		}
	}
}

// TestNoOpRerunRate: rerunning a complete run processes nothing, and the
// summary says 0 records/s, not the whole run's records over a few ms.
func TestNoOpRerunRate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sample{products: 50})
	if code, _, stderr := h.main("run", "--table", "PRODUCTS", "--run-id", "once"); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := h.main("run", "--run-id", "once", "--json")
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s", code, stderr)
	}
	if s := lastLineSummary(t, stdout); s.Processed != 50 || s.RowsPerSecond != 0 {
		t.Errorf("rerun summary: processed %d, %v records/s; want 50 and 0", s.Processed, s.RowsPerSecond)
	}
}
