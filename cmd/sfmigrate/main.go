// Command sfmigrate moves rows from SQL databases into Salesforce through
// the Bulk API 2.0. See README.md for the two commands to start with.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Airflow signals the whole process group on timeout or kill; SIGTERM and
	// Ctrl-C cancel the root context so every step can stop cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
