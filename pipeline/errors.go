package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
)

// ConfigError reports a missing or malformed setting. It names the setting,
// the value (never a secret), where the value came from and how to fix it.
// Every ConfigError is raised before any call to Salesforce, so a run that
// fails with one has sent nothing. The command line maps it to exit code 2.
type ConfigError struct {
	Setting string // e.g. "batch_size", "tables.PRODUCT_PRICE.order_by", "connection salesforce_api"
	Value   string // the offending value as given ("" when missing)
	Source  string // where it came from: "run config (--conf)", "AIRFLOW_VAR_BATCH_SIZE", "tables.yaml", ...
	Problem string // what is wrong with it
	Fix     string // what to do about it
	Err     error  // underlying error, if any
}

// Error names the setting, the value, the source, the problem and the fix.
// Every part that can hold what a user wrote is bounded (excerpt): a
// 10 MB value yields a one-line message, not 10 MB of stderr.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(excerpt.N(e.Setting, 2*excerpt.Limit))
	if e.Value != "" {
		b.WriteString(" = ")
		b.WriteString(excerpt.Quote(e.Value))
	}
	if e.Source != "" {
		fmt.Fprintf(&b, " (from %s)", excerpt.N(e.Source, 4*excerpt.Limit))
	}
	b.WriteString(": ")
	b.WriteString(excerpt.N(e.Problem, 4*excerpt.Limit))
	if e.Err != nil && !strings.Contains(e.Problem, e.Err.Error()) {
		b.WriteString(": ")
		b.WriteString(excerpt.N(e.Err.Error(), 4*excerpt.Limit))
	}
	if e.Fix != "" {
		b.WriteString("; fix: ")
		b.WriteString(excerpt.N(e.Fix, 4*excerpt.Limit))
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *ConfigError) Unwrap() error { return e.Err }

// ConfigError marks the error as a configuration problem (exit code 2).
func (e *ConfigError) ConfigError() bool { return true }

// PartialError reports a run that finished but in which some records failed
// or were never processed. The tracker status is then "In Progress". The
// command line maps it to exit code 3.
type PartialError struct {
	Failed      int64 // records rejected by Salesforce
	Unprocessed int64 // records never processed (failed or aborted jobs)
	Missing     int64 // extracted records that no job accounts for
	Failures    int   // batches whose job did not complete
	Rejected    int64 // source rows whose values could not be sent (rejected files)
	Status      string
}

func (e *PartialError) Error() string {
	parts := []string{}
	if e.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d records failed", e.Failed))
	}
	if e.Unprocessed > 0 {
		parts = append(parts, fmt.Sprintf("%d records unprocessed", e.Unprocessed))
	}
	if e.Missing > 0 {
		parts = append(parts, fmt.Sprintf("%d records not accounted for by any job", e.Missing))
	}
	if e.Failures > 0 {
		parts = append(parts, fmt.Sprintf("%d batch jobs did not complete", e.Failures))
	}
	if e.Rejected > 0 {
		parts = append(parts, fmt.Sprintf("%d rows rejected before upload", e.Rejected))
	}
	if len(parts) == 0 {
		parts = append(parts, "not every record succeeded")
	}
	see := "the failed and unprocessed result files"
	if e.Rejected > 0 {
		see = "the failed, unprocessed and rejected files"
	}
	return fmt.Sprintf("run finished with problems: %s; tracker status %q (see %s)",
		strings.Join(parts, ", "), e.Status, see)
}

// PartialFailure marks the error as "finished, but not every record
// succeeded" (exit code 3).
func (e *PartialError) PartialFailure() bool { return true }

// Exit codes of a run, as docs/design.md §4 fixes them for orchestrators.
const (
	ExitOK      = 0 // every record succeeded
	ExitFailure = 1 // any other failure, a stop (Ctrl-C, SIGTERM) included
	ExitConfig  = 2 // bad usage or configuration
	ExitPartial = 3 // the run finished but some records failed or were unprocessed
)

// Outcome classifies the error a run or step ended with: the outcome word
// of the summary and the process exit code. It is the one place where an
// error becomes an exit code; the command line adds only its own usage
// errors. In order: a partial result (3), a stop from outside (1, even when
// the last failure before the stop was a configuration one: nothing is
// wrong with the settings of a run that was stopped), a configuration
// problem (2), anything else (1).
func Outcome(err error) (outcome string, code int) {
	var pe interface{ PartialFailure() bool }
	var ce interface{ ConfigError() bool }
	switch {
	case err == nil:
		return "succeeded", ExitOK
	case errors.As(err, &pe) && pe.PartialFailure():
		return "partial", ExitPartial
	case errors.Is(err, ErrInterrupted):
		return "interrupted", ExitFailure
	case errors.As(err, &ce) && ce.ConfigError():
		return "failed", ExitConfig
	}
	return "failed", ExitFailure
}

// ErrInterrupted is returned (wrapped) when a run stopped because its context
// was cancelled (Ctrl-C, SIGTERM). The manifest is consistent; rerunning the
// same run id resumes.
var ErrInterrupted = errors.New("interrupted")

// interrupted reports whether ctx ended because the run was stopped from
// outside (Ctrl-C, SIGTERM, a deadline) rather than because a step running
// alongside failed (errgroup cancels with that step's error as the cause).
func interrupted(ctx context.Context) bool {
	if ctx.Err() == nil {
		return false
	}
	cause := context.Cause(ctx)
	return errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded)
}

// stopped returns nil while ctx is live; otherwise why the step `what`
// stopped: ErrInterrupted (wrapped) when the run was stopped, else a note
// that a step alongside failed (that step's error is the run's error).
func stopped(ctx context.Context, what string) error {
	switch {
	case ctx.Err() == nil:
		return nil
	case interrupted(ctx):
		return &interruptedError{step: what}
	}
	return fmt.Errorf("%s stopped: %w", what, ErrSiblingFailed)
}

// ErrSiblingFailed is wrapped by the error of a step that stopped because
// a step running alongside it failed (in Run, upload stops when extract
// fails); the other step's error is the run's error.
var ErrSiblingFailed = errors.New("a step running alongside failed")

// fixError adds what to do to an error whose message says what went wrong
// but not how to fix it. config marks a configuration problem (exit code
// 2): retrying without changing a setting cannot help.
type fixError struct {
	err    error
	fix    string
	config bool
}

func (e *fixError) Error() string {
	if e.fix == "" {
		return e.err.Error()
	}
	return e.err.Error() + "; fix: " + e.fix
}

// Unwrap returns the underlying error.
func (e *fixError) Unwrap() error { return e.err }

// ConfigError reports whether the error is a configuration problem.
func (e *fixError) ConfigError() bool { return e.config }

// interruptedError is a step stopped from outside. It reads "interrupted
// during STEP"; err, the step's last failure as the context ended, is kept
// for errors.Is/As but not shown.
type interruptedError struct {
	step string
	err  error
}

func (e *interruptedError) Error() string { return "interrupted during step " + e.step }

// Unwrap returns ErrInterrupted and the step's own error.
func (e *interruptedError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrInterrupted}
	}
	return []error{ErrInterrupted, e.err}
}
