// Command sfmigrate moves rows from SQL databases into Salesforce through
// the Bulk API 2.0. See README.md for the two commands to start with.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
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
	if path := os.Getenv("SFMIGRATE_CPUPROFILE"); path != "" {
		// For performance work (docs/architecture.md §6).
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "sfmigrate: SFMIGRATE_CPUPROFILE: %v\n", err)
			return 2
		}
		defer stopProfile()
	}
	return Main(ctx, os.Args[1:], Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Program: os.Args[0]})
}

// startCPUProfile writes a CPU profile of the whole process to path
// until the returned function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("start the CPU profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "sfmigrate: SFMIGRATE_CPUPROFILE: %v\n", err)
		}
	}, nil
}
