package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
	"github.com/sfmigrate/sfmigrate/pipeline"
)

// Env is everything a command may touch outside its arguments. Tests build
// their own, so commands never read os.Stdout or os.Getenv directly.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv looks up an environment variable (AIRFLOW_CONN_*, AIRFLOW_VAR_*,
	// NO_COLOR, ...). Nil means "no variables set".
	Getenv func(string) string
	// Program is the command as the user typed it (os.Args[0], e.g.
	// "./sfmigrate"), for the commands sfmigrate tells them to run; ""
	// means "sfmigrate".
	Program string
}

func (e Env) getenv(key string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(key)
}

// command is one subcommand of sfmigrate.
type command struct {
	name    string
	summary string // one line for the top-level help
	// run executes the command. args excludes the command name.
	run func(ctx context.Context, env Env, args []string) error
}

// commands is every subcommand, by name: the one list of what the CLI
// offers. Each command's file holds its options type, its help and its
// three stages, joined here by staged: parseX (the flags into the
// options), the options' validate method, and runX (stages.go).
var commands = commandsByName([]*command{
	{name: "check", summary: "check a table's connections, mapping, query and data without writing anything", run: staged(parseCheck, runCheck)},
	{name: "demo", summary: "migrate a generated ERP sample into the built-in emulator (no setup)", run: staged(parseDemo, runDemo)},
	{name: "emulator", summary: "serve a local Salesforce org (OAuth, Bulk API 2.0, REST) for tests and rehearsals", run: staged(parseEmulator, runEmulator)},
	{name: "plan", summary: "show the order in which a tables config's tables load (nothing is sent)", run: staged(parsePlan, runPlan)},
	{name: "run", summary: "migrate one table, or a plan of several (--tables, --all-tables), end to end; resumes with --run-id", run: staged(parseRun, runRun)},
	{name: "task", summary: "run one step of a run (for orchestrators: one step per worker)", run: staged(parseTask, runTask)},
	{name: "tracker", summary: "read or set a status-tracker record (tracker get|set)", run: staged(parseTracker, runTracker)},
	{name: "auth", summary: "check the Salesforce connection: sign in and show the instance (auth check)", run: staged(parseAuth, runAuth)},
	{name: "version", summary: "print the version of sfmigrate", run: staged(parseVersion, runVersion)},
})

func commandsByName(list []*command) map[string]*command {
	m := make(map[string]*command, len(list))
	for _, c := range list {
		if _, dup := m[c.name]; dup {
			panic("sfmigrate: two commands named " + c.name)
		}
		m[c.name] = c
	}
	return m
}

// Main runs sfmigrate with args (without the program name) and returns the
// process exit code. It never calls os.Exit, so tests can run it in-process.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if len(args) == 0 {
		topUsage(env.Stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return exitCode(env.Stderr, c.run(ctx, env, []string{"--help"}))
			}
		}
		topUsage(env.Stdout)
		return exitOK
	case "-version", "--version":
		name = "version"
	}
	c, ok := commands[name]
	if !ok {
		names := make([]string, 0, len(commands))
		for n := range commands {
			names = append(names, n)
		}
		sort.Strings(names)
		hint := ""
		if guess := pipeline.Suggest(name, names); guess != "" {
			hint = fmt.Sprintf("; did you mean %q?", guess)
		}
		fmt.Fprintf(env.Stderr, "sfmigrate: unknown command %s%s (commands: %s; see 'sfmigrate --help')\n", excerpt.Quote(name), hint, strings.Join(names, ", "))
		return exitUsage
	}
	return exitCode(env.Stderr, c.run(ctx, env, args[1:]))
}

func topUsage(w io.Writer) {
	fmt.Fprintln(w, "sfmigrate moves rows from SQL databases into Salesforce through the Bulk API 2.0.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: sfmigrate COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'sfmigrate COMMAND --help' for a command's flags, settings and examples.")
	fmt.Fprintln(w)
	fmt.Fprint(w, exitCodesHelp)
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints usage (synopsis, flags, then the long help text) on --help.
func newFlagSet(env Env, name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: %s\n\n", synopsis)
		fmt.Fprintln(out, "Flags:")
		fs.PrintDefaults()
		if help != "" {
			fmt.Fprintln(out)
			fmt.Fprint(out, strings.TrimLeft(help, "\n"))
		}
	}
	return fs
}

// parseFlags parses args into fs. --help prints usage to stdout and returns
// errHelp; any other problem is a usage error (exit 2).
func parseFlags(env Env, fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(env.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(env.Stdout)
		fs.Usage()
		return errHelp
	}
	if err != nil {
		hint := ""
		if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
			if guess := closestFlag(fs, name); guess != "" {
				hint = "; did you mean --" + guess + "?"
			}
		}
		hint += durationHint(err)
		return usageErrorf("%s: %v%s (see 'sfmigrate %s --help')", fs.Name(), err, hint, fs.Name())
	}
	return nil
}

// closestFlag returns the flag of fs that name is most likely a typo of.
func closestFlag(fs *flag.FlagSet, name string) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return pipeline.Suggest(strings.TrimLeft(name, "-"), names)
}

// durationHint explains a duration flag given without a unit ("50"):
// Go's parser only says "parse error".
func durationHint(err error) string {
	msg := err.Error()
	v, ok := strings.CutPrefix(msg, "invalid value \"")
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, "\"")
	if v == "" || strings.Trim(v, "0123456789.") != "" {
		return ""
	}
	return "; a duration needs a unit: " + v + "ms or " + v + "s"
}
