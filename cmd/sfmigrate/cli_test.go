package main

import (
	"bytes"
	"strings"
	"testing"
)

func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(t.Context(), args, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

func TestMainUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"no args", nil, exitUsage, "", "Usage: sfmigrate COMMAND"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{"help", []string{"--help"}, exitOK, "Exit codes:", ""},
		{"version", []string{"version"}, exitOK, "sfmigrate ", ""},
		{"version help", []string{"version", "--help"}, exitOK, "Usage: sfmigrate version", ""},
		{"bad flag", []string{"version", "--nope"}, exitUsage, "", "flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr: %s)", code, tt.wantCode, stderr)
			}
			if !strings.Contains(stdout, tt.wantStdout) {
				t.Errorf("stdout = %q, want it to contain %q", stdout, tt.wantStdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestRunAndTaskUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"task without step", []string{"task"}, "missing STEP"},
		{"task unknown step", []string{"task", "deploy", "--run-id", "x"}, `unknown step "deploy"`},
		{"task flags first", []string{"task", "--run-id", "x", "upload"}, "the STEP comes first"},
		{"task without run id", []string{"task", "upload"}, "--run-id is required"},
		{"run extra argument", []string{"run", "--table", "T", "extra"}, `unexpected argument "extra"`},
		{"run bad duration", []string{"run", "--poll-interval", "fast"}, "invalid value"},
		{"both conf flags", []string{"run", "--conf", "{}", "--conf-file", "c.json"}, "--conf or --conf-file"},
		{"demo bad size", []string{"demo", "--products", "0"}, "--products must be at least 1"},
		{"misspelt flag", []string{"run", "--tabel", "T"}, "did you mean --table?"},
		{"flag without dash", []string{"task", "upload", "--runid", "x"}, "did you mean --run-id?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runMain(t, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 mentioning %q", code, stderr, tt.want)
			}
		})
	}
}
