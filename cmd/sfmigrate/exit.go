package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
)

// Exit codes, as design.md §4 fixes them for orchestrators.
const (
	exitOK      = 0 // every record succeeded
	exitFailure = 1 // any other failure
	exitUsage   = 2 // bad usage or configuration
	exitPartial = 3 // the run finished but some records failed or were unprocessed
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

// configError is implemented by errors from other packages that mean "the
// settings are wrong" (exit 2) without this package knowing their types.
type configError interface{ ConfigError() bool }

// partialError is implemented by errors that mean "the run finished but
// some records did not succeed" (exit 3).
type partialError interface{ PartialFailure() bool }

// exitCode reports err on w and maps it to the process exit code. It is the
// only place where errors become exit codes.
func exitCode(w io.Writer, err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	err = boundedError{err}
	var pe partialError
	if errors.As(err, &pe) && pe.PartialFailure() {
		fmt.Fprintf(w, "sfmigrate: %v\n", err)
		return exitPartial
	}
	var ue *usageError
	var ce configError
	if errors.As(err, &ue) || (errors.As(err, &ce) && ce.ConfigError()) {
		fmt.Fprintf(w, "sfmigrate: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(w, "sfmigrate: error: %v\n", err)
	return exitFailure
}

// maxMessage bounds what one error prints. Messages quote values as
// excerpts where they are made; this is the backstop for one that does not.
const maxMessage = 8 << 10

// boundedError prints err cut to maxMessage bytes (with its length).
type boundedError struct{ err error }

func (e boundedError) Error() string { return excerpt.N(e.err.Error(), maxMessage) }
func (e boundedError) Unwrap() error { return e.err }
