// Command sfmigrate moves rows from SQL databases into Salesforce through
// the Bulk API 2.0. See README.md for the two commands to start with.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() { os.Exit(realMain()) }

// realMain runs sfmigrate as a process: real environment, signals. Tests
// re-execute their own binary through it to run sfmigrate as a subprocess.
func realMain() int {
	// Airflow signals the whole process group on timeout or kill; SIGTERM and
	// Ctrl-C cancel the root context so every step can stop cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Main(ctx, os.Args[1:], Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Program: os.Args[0]})
}
