package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs the command-line scenarios in testdata/script/*.txtar:
// short stories of what a user types and what sfmigrate answers, meant to
// be read as documentation as much as to be run. Each runs in a fresh
// directory with no AIRFLOW_* variables but those the script sets.
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{Dir: "testdata/script"})
}
