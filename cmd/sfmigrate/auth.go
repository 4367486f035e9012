package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/salesforce"
)

const authHelp = `
Signs in with the salesforce_api connection (OAuth 2.0 client credentials) and prints
where the org's data calls go and the token type, so a connection can be checked before
a run. The access token itself is printed only with --print-token (for tools that call
other Salesforce APIs with it; treat the output as a secret).

` + connectionHelp + `
Examples:
  sfmigrate auth check
  sfmigrate auth check --json
  sfmigrate auth check --json --print-token     # {"access_token": ..., "instance_url": ..., "token_type": ...}

Exit codes: 0 signed in; 2 a missing or malformed connection field, or credentials
Salesforce refuses (the message says what to check); 1 anything else (no answer).
`

// authOptions is what 'sfmigrate auth check' prints.
type authOptions struct {
	json, printToken bool
}

func parseAuth(env Env, args []string) (*authOptions, error) {
	o := &authOptions{}
	fs := newFlagSet(env, "auth", "sfmigrate auth check [--json] [--print-token]", authHelp)
	fs.BoolVar(&o.json, "json", false, "print one JSON object")
	fs.BoolVar(&o.printToken, "print-token", false, "also print the access token (a secret: only for tools that need it)")
	if len(args) == 0 || args[0] != "check" {
		if err := parseFlags(env, fs, args); err != nil {
			return nil, err
		}
		return nil, usageErrorf("auth: missing action: sfmigrate auth check [--json] [--print-token] (see 'sfmigrate auth --help')")
	}
	if err := parseFlags(env, fs, args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("auth check: unexpected argument %q (see 'sfmigrate auth --help')", fs.Arg(0))
	}
	return o, nil
}

// validate has nothing to check: the flags are switches, and the
// connection is the org's to judge.
func (o *authOptions) validate() error { return nil }

func runAuth(ctx context.Context, env Env, o *authOptions) error {
	sf, err := pipeline.OpenSalesforce(ctx, env.getenv, salesforce.TrackerConfig{}, nil)
	if err != nil {
		return err
	}
	s := sf.Session
	out := map[string]any{"instance_url": s.InstanceURL, "token_type": s.TokenType, "login_url": sf.Conns.LoginURL,
		"connection": pipeline.SalesforceConnID}
	if !s.IssuedAt.IsZero() {
		out["issued_at"] = s.IssuedAt.UTC().Format(time.RFC3339)
	}
	if s.OrgID != "" {
		out["org_id"] = s.OrgID
	}
	if s.UserID != "" {
		out["user_id"] = s.UserID
	}
	if o.printToken {
		out["access_token"] = s.AccessToken()
	}
	if o.json {
		data, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("encode session: %w", err)
		}
		fmt.Fprintf(env.Stdout, "%s\n", data)
		return nil
	}
	fmt.Fprintf(env.Stdout, "signed in with connection %s at %s\n", pipeline.SalesforceConnID, sf.Conns.LoginURL)
	fmt.Fprintf(env.Stdout, "instance_url: %s\ntoken_type: %s\n", s.InstanceURL, s.TokenType)
	if s.OrgID != "" {
		fmt.Fprintf(env.Stdout, "org_id: %s\n", s.OrgID)
	}
	if o.printToken {
		fmt.Fprintf(env.Stdout, "access_token: %s\n", s.AccessToken())
	}
	return nil
}
