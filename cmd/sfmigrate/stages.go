package main

import "context"

// Every command runs in three stages, each of which a test can call alone:
//
//  1. parse(env, args) -> options: the flags and arguments into a plain
//     options value. Nothing is read or contacted (no file, variable but the
//     flags' documented defaults, network or database); --help prints the
//     usage and returns errHelp; a malformed command line is a usage error.
//  2. options.validate(): the checks the values allow without anything
//     outside them (ranges, flags that exclude each other, missing
//     arguments). A bad value is a usage error naming it (exit 2).
//  3. run(ctx, env, options): everything else: files, the org, the source.
//
// staged joins the three into the function the command table calls.

// cmdOptions is a command's options value.
type cmdOptions interface {
	validate() error
}

// jsonReporter is an options value with a --json flag: a validation error
// is then also printed as the JSON line an orchestrator reads (jsonError),
// as every other error that stops such a command before it starts.
type jsonReporter interface {
	jsonOutput() bool
}

// parseAndValidate runs the first two stages: the options of args, or the
// usage error that stops the command before it does anything.
func parseAndValidate[O cmdOptions](env Env, parse func(Env, []string) (O, error), args []string) (O, error) {
	o, err := parse(env, args)
	if err != nil {
		return o, err
	}
	if err := o.validate(); err != nil {
		if j, ok := any(o).(jsonReporter); ok {
			err = jsonError(env, j.jsonOutput(), err)
		}
		return o, err
	}
	return o, nil
}

// staged is a command's run function made of its three stages.
func staged[O cmdOptions](parse func(Env, []string) (O, error), run func(context.Context, Env, O) error) func(context.Context, Env, []string) error {
	return func(ctx context.Context, env Env, args []string) error {
		o, err := parseAndValidate(env, parse, args)
		if err != nil {
			return err
		}
		return run(ctx, env, o)
	}
}
