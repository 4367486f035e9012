package pipeline

import (
	"errors"
	"fmt"
	"testing"
)

// One classification decides both the summary's exit code and the
// process's: a stop that lands while a configuration error is being
// reported is a stop (1), a partial result wrapped in anything is 3.
func TestOutcome(t *testing.T) {
	cfg := &ConfigError{Setting: "batch_size", Problem: "out of range"}
	for _, tc := range []struct {
		name    string
		err     error
		outcome string
		code    int
	}{
		{"nil", nil, "succeeded", 0},
		{"partial", fmt.Errorf("step update-status: %w", &PartialError{Failed: 2}), "partial", 3},
		{"config", fmt.Errorf("prepare: %w", cfg), "failed", 2},
		{"stop during a config error", &interruptedError{step: "authenticate", err: cfg}, "interrupted", 1},
		{"other", errors.New("connection reset"), "failed", 1},
	} {
		outcome, code := Outcome(tc.err)
		if outcome != tc.outcome || code != tc.code {
			t.Errorf("%s: Outcome = %q, %d; want %q, %d", tc.name, outcome, code, tc.outcome, tc.code)
		}
	}
}

func TestBatchLabel(t *testing.T) {
	for idx, want := range map[int]string{7: "7", followUpIndex(7, 2): "7 (attempt 2)", followUpIndex(12345, 4): "12345 (attempt 4)"} {
		if got := BatchLabel(idx); got != want {
			t.Errorf("BatchLabel(%d) = %q, want %q", idx, got, want)
		}
	}
}
