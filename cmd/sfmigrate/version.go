package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info is used.
var version = ""

// versionOptions is empty: 'sfmigrate version' takes no flags.
type versionOptions struct{}

func parseVersion(env Env, args []string) (*versionOptions, error) {
	fs := newFlagSet(env, "version", "sfmigrate version", "")
	if err := parseFlags(env, fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("version: unexpected argument %q", fs.Arg(0))
	}
	return &versionOptions{}, nil
}

func (o *versionOptions) validate() error { return nil }

func runVersion(_ context.Context, env Env, _ *versionOptions) error {
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(env.Stdout, "sfmigrate %s\n", v)
	return nil
}
