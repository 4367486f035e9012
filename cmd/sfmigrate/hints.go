package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sfmigrate/sfmigrate/pipeline"
)

// resumeCommand is the command line that continues run runID: the program
// as the user typed it ("./sfmigrate") and the arguments they gave, with
// --run-id set to the run's id, quoted for a POSIX shell, so that it can
// be pasted as it is.
func resumeCommand(program string, args []string, runID string) string {
	words := []string{programName(program)}
	replaced := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--run-id" || a == "-run-id":
			words = append(words, "--run-id", runID)
			i++ // its value
			replaced = true
			continue
		case strings.HasPrefix(a, "--run-id=") || strings.HasPrefix(a, "-run-id="):
			words = append(words, "--run-id", runID)
			replaced = true
			continue
		}
		words = append(words, a)
	}
	if !replaced {
		words = append(words, "--run-id", runID)
	}
	for i := 1; i < len(words); i++ {
		words[i] = shellQuote(words[i])
	}
	words[0] = shellQuote(words[0])
	return strings.Join(words, " ")
}

// programName is how to run sfmigrate again: as typed, except a binary
// that `go run` built in a temporary directory, which is gone by then.
func programName(program string) string {
	switch {
	case program == "":
		return "sfmigrate"
	case strings.Contains(filepath.ToSlash(program), "/go-build"):
		return "go run ./cmd/sfmigrate"
	}
	return program
}

// shellQuote quotes s for a POSIX shell when it holds anything but plain
// characters.
func shellQuote(s string) string {
	if s == "go run ./cmd/sfmigrate" {
		return s
	}
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// defaultTablesConfig is --tables-config when not given.
const defaultTablesConfig = "tables.yaml"

// loadTables reads the tables config; a problem with the default file
// says it is the default, not a value the user gave.
func loadTables(path string) (*pipeline.TablesConfig, error) {
	t, err := pipeline.LoadTablesConfig(path)
	var ce *pipeline.ConfigError
	if err != nil && path == defaultTablesConfig && errors.As(err, &ce) && ce.Source == "--tables-config" {
		ce.Source = "default (--tables-config FILE changes it)"
	}
	return t, err
}

// jsonError prints, with --json, the JSON line an orchestrator reads even
// when the run never started (a setting, the tables config, a connection):
// {"outcome": "failed", "error": ..., "exit_code": 2}. It returns err.
func jsonError(env Env, on bool, err error) error {
	if !on || err == nil {
		return err
	}
	data, jerr := json.Marshal(struct {
		Outcome  string `json:"outcome"`
		Error    string `json:"error"`
		ExitCode int    `json:"exit_code"`
	}{"failed", err.Error(), codeOf(err)})
	if jerr == nil {
		fmt.Fprintf(env.Stdout, "%s\n", data)
	}
	return err
}
