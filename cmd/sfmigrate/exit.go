package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
	"github.com/sfmigrate/sfmigrate/pipeline"
)

// Exit codes (pipeline.Outcome decides them; design.md §4).
const (
	exitOK      = pipeline.ExitOK
	exitFailure = pipeline.ExitFailure
	exitUsage   = pipeline.ExitConfig
	exitPartial = pipeline.ExitPartial
)

const exitCodesHelp = `Exit codes:
  0  every record succeeded
  3  the run finished, but some records failed or were unprocessed (tracker status "In Progress")
  2  bad usage or configuration: a setting, the tables config, a connection, credentials
     Salesforce refuses, a field the object lacks, a step run too early (this command sent
     no data; fix what the message names and rerun)
  1  any other failure
`

// errHelp is returned after --help printed the usage; it maps to exit 0.
var errHelp = errors.New("help requested")

// usageError marks a problem with flags, arguments or configuration.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// exitCode reports err on w and maps it to the process exit code:
// pipeline.Outcome decides, and a usage error of this package is exit 2.
func exitCode(w io.Writer, err error) int {
	code := codeOf(err)
	err = boundedError{err}
	switch code {
	case exitOK:
	case exitFailure:
		fmt.Fprintf(w, "sfmigrate: error: %v\n", err)
	default:
		fmt.Fprintf(w, "sfmigrate: %v\n", err)
	}
	return code
}

// codeOf is the exit code err maps to.
func codeOf(err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	_, code := pipeline.Outcome(err)
	var ue *usageError
	if errors.As(err, &ue) {
		code = exitUsage
	}
	return code
}

// maxMessage bounds what one error prints. Messages quote values as
// excerpts where they are made; this is the backstop for one that does not.
const maxMessage = 8 << 10

// boundedError prints err cut to maxMessage bytes (with its length).
type boundedError struct{ err error }

func (e boundedError) Error() string { return excerpt.N(e.err.Error(), maxMessage) }
func (e boundedError) Unwrap() error { return e.err }
