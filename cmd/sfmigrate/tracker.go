package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sfmigrate/sfmigrate/pipeline"
	"github.com/sfmigrate/sfmigrate/salesforce"
)

// connectionHelp says where the commands that only talk to the org get
// their credentials.
const connectionHelp = `Connection: AIRFLOW_CONN_SALESFORCE_API (URI or JSON form), login = client id,
password = client secret, host = My Domain URL, as for 'sfmigrate run'.
`

const trackerHelp = `
Reads or writes the status-tracker record whose external id is REF, in the object the
tables config's status_tracker section names (default Migration_Status__c, external id
External_Ref__c, status Status__c).

  tracker get REF                      print the record as one JSON object
  tracker set REF STATUS               upsert: set the status, creating the record if missing
  tracker set REF STATUS --field K=V   also set field K (API name) to V; V is converted to the
                                       field's type (number, checkbox true/false); K= clears it
  tracker set REF STATUS --update-only set the status of an existing record only, never create
                                       one (updateOnly=true, as update-status does)

` + connectionHelp + `
Examples:
  sfmigrate tracker set PRODUCT_PRICE "Not Started" --tables-config examples/tables.yaml
  sfmigrate tracker set PRODUCT_PRICE Uploaded --update-only
  sfmigrate tracker get PRODUCT_PRICE

Exit codes: 0 done; 2 bad usage, tables config or connection, credentials Salesforce
refuses, a field the tracker object lacks, or (--update-only) no record with REF;
1 anything else (get: no record with REF, network, Salesforce errors).
`

// fieldFlags collects repeated --field K=V.
type fieldFlags []string

func (f *fieldFlags) String() string     { return strings.Join(*f, ",") }
func (f *fieldFlags) Set(v string) error { *f = append(*f, v); return nil }

// trackerUsage is the synopsis of 'sfmigrate tracker'.
const trackerUsage = "sfmigrate tracker get REF | tracker set REF STATUS [--field K=V ...] [--update-only] [flags]"

// trackerOptions is the tracker record 'sfmigrate tracker' reads or sets.
type trackerOptions struct {
	action string   // get or set
	args   []string // REF, and STATUS for set
	// tablesConfig names the tables config; tablesConfigSet says it was
	// given (the default file may be missing: the defaults apply).
	tablesConfig    string
	tablesConfigSet bool
	fields          []string // --field K=V
	updateOnly      bool
	json            bool
}

func parseTracker(env Env, args []string) (*trackerOptions, error) {
	o := &trackerOptions{}
	var fields fieldFlags
	fs := newFlagSet(env, "tracker", trackerUsage, trackerHelp)
	fs.StringVar(&o.tablesConfig, "tables-config", "tables.yaml", "tables config whose status_tracker section names the tracker object (defaults apply when the default file does not exist)")
	fs.Var(&fields, "field", "set: also set tracker field K (API name) to V, repeatable; K= clears the field")
	fs.BoolVar(&o.updateOnly, "update-only", false, "set: only update an existing record (updateOnly=true); never create one")
	fs.BoolVar(&o.json, "json", false, "set: print the result as one JSON object (get always prints JSON)")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := parseFlags(env, fs, args); err != nil {
			return nil, err
		}
		return nil, usageErrorf("tracker: missing action: %s (see 'sfmigrate tracker --help')", trackerUsage)
	}
	o.action = args[0]
	// Flags may come before or after the positional arguments.
	pos, err := parseInterleaved(env, fs, args[1:])
	if err != nil {
		return nil, err
	}
	o.args, o.fields = pos, fields
	fs.Visit(func(f *flag.Flag) { o.tablesConfigSet = o.tablesConfigSet || f.Name == "tables-config" })
	return o, nil
}

func (o *trackerOptions) validate() error {
	action, pos, fields := o.action, o.args, o.fields
	switch {
	case action != "get" && action != "set":
		return usageErrorf("tracker: unknown action %q; use get or set (see 'sfmigrate tracker --help')", action)
	case action == "get" && len(pos) != 1:
		return usageErrorf("tracker get: want exactly one REF, got %d arguments: sfmigrate tracker get REF", len(pos))
	case action == "set" && len(pos) != 2:
		return usageErrorf("tracker set: want REF and STATUS, got %d arguments: sfmigrate tracker set REF STATUS (quote a status with spaces: \"In Progress\")", len(pos))
	case action == "get" && (len(fields) > 0 || o.updateOnly):
		return usageErrorf("tracker get: --field and --update-only belong to tracker set")
	case o.updateOnly && len(fields) > 0:
		return usageErrorf("tracker set: --update-only sets the status only; leave out --field %s, or drop --update-only to upsert the fields too", fields[0])
	}
	if strings.TrimSpace(pos[0]) == "" {
		return usageErrorf("tracker %s: REF is empty; give the tracker record's external id, e.g. PRODUCT_PRICE", action)
	}
	if action == "set" && strings.TrimSpace(pos[1]) == "" {
		return usageErrorf("tracker set: STATUS is empty; give the status to write, e.g. \"In Progress\"")
	}
	for _, kv := range fields {
		if k, _, ok := strings.Cut(kv, "="); !ok || strings.TrimSpace(k) == "" {
			return usageErrorf("tracker set: --field %q is not K=V; write --field Message__c=\"text\" (K is the field's API name)", kv)
		}
	}
	return nil
}

func runTracker(ctx context.Context, env Env, o *trackerOptions) error {
	action, ref, updateOnly := o.action, o.args[0], o.updateOnly
	tracker, err := trackerConfig(o.tablesConfig, o.tablesConfigSet)
	if err != nil {
		return err
	}
	sf, err := pipeline.OpenSalesforce(ctx, env.getenv, tracker, nil)
	if err != nil {
		return err
	}
	if action == "get" {
		rec, err := getTracker(ctx, sf.Client, tracker, ref)
		if err != nil {
			return err
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode tracker record: %w", err)
		}
		fmt.Fprintf(env.Stdout, "%s\n", data)
		return nil
	}
	status := o.args[1]
	if updateOnly {
		err := sf.Client.UpdateStatus(ctx, ref, status)
		if errors.Is(err, salesforce.ErrTrackerRecordNotFound) {
			return &pipeline.ConfigError{Setting: "tracker record", Value: ref, Source: "REF argument", Err: err,
				Problem: "does not exist, and --update-only never creates one",
				Fix:     fmt.Sprintf("create it first (in Salesforce, or with 'sfmigrate tracker set %s \"Not Started\"' without --update-only), or check REF and the tables config's status_tracker section", ref)}
		}
		if err != nil {
			return trackerError(err)
		}
	} else {
		values, err := fieldValues(ctx, sf.Client, tracker, o.fields)
		if err != nil {
			return err
		}
		if err := sf.Client.UpsertStatus(ctx, ref, status, values); err != nil {
			return trackerError(err)
		}
	}
	if o.json {
		data, _ := json.Marshal(map[string]any{"ref": ref, "status": status, "object": tracker.SFObject, "update_only": updateOnly}) // plain strings always marshal
		fmt.Fprintf(env.Stdout, "%s\n", data)
	} else {
		fmt.Fprintf(env.Stdout, "%s %s = %q: %s set to %q\n", tracker.SFObject, tracker.ExternalIDField, ref, tracker.StatusField, status)
	}
	return nil
}

// parseInterleaved parses flags that may stand between positional
// arguments and returns the positional ones.
func parseInterleaved(env Env, fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(env, fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// trackerConfig reads the status_tracker section of the tables config. The
// default file may be missing (the defaults apply); one named with
// --tables-config must exist.
func trackerConfig(path string, given bool) (salesforce.TrackerConfig, error) {
	if !given {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return salesforce.TrackerConfig{}.WithDefaults(), nil
		}
	}
	cfg, err := pipeline.LoadTablesConfig(path)
	if err != nil {
		return salesforce.TrackerConfig{}, err
	}
	return cfg.StatusTracker, nil
}

// trackerError marks errors about the tracker's definition (an object or
// field the org lacks) as configuration problems: retrying cannot help.
func trackerError(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "has no field") || strings.Contains(msg, "does not exist in the org") ||
		strings.Contains(msg, "is not an External ID field") || strings.Contains(msg, "is not updateable") ||
		strings.Contains(msg, "must not be in the body") || strings.Contains(msg, "goes in the status argument") ||
		strings.Contains(msg, "reference ") && strings.Contains(msg, "contains") || strings.Contains(msg, "the reference is empty") {
		return &configErr{err}
	}
	return err
}

// configErr makes any error a configuration problem (exit 2).
type configErr struct{ error }

func (e *configErr) Unwrap() error     { return e.error }
func (e *configErr) ConfigError() bool { return true }

// fieldValues turns --field K=V into the JSON values the tracker's fields
// take, by their describe type.
func fieldValues(ctx context.Context, c *salesforce.Client, t salesforce.TrackerConfig, kvs []string) (map[string]any, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	d, err := c.Describe(ctx, t.SFObject)
	if err != nil {
		return nil, trackerError(fmt.Errorf("describe tracker object %s: %w", t.SFObject, err))
	}
	out := map[string]any{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=") // K=V: checked by validate
		k = strings.TrimSpace(k)
		f := d.Field(k)
		if f == nil {
			return nil, &pipeline.ConfigError{Setting: "--field", Value: k, Source: "command line",
				Problem: fmt.Sprintf("%s has no field %s", t.SFObject, k),
				Fix:     "use the API name of a field of " + t.SFObject + withGuess(pipeline.Suggest(k, fieldNames(d)))}
		}
		val, err := convertField(f, v)
		if err != nil {
			return nil, &pipeline.ConfigError{Setting: "--field " + k, Value: v, Source: "command line", Problem: err.Error(),
				Fix: "give a value of the field's type (" + f.Type + ")"}
		}
		out[f.Name] = val
	}
	return out, nil
}

func withGuess(g string) string {
	if g == "" {
		return ""
	}
	return " (did you mean " + g + "?)"
}

func fieldNames(d *salesforce.SObjectDescribe) []string {
	names := make([]string, len(d.Fields))
	for i, f := range d.Fields {
		names[i] = f.Name
	}
	return names
}

// convertField converts a command-line value to the JSON value of a field
// of type f.Type; "" clears the field (null).
func convertField(f *salesforce.FieldDescribe, v string) (any, error) {
	if v == "" {
		return nil, nil
	}
	switch f.Type {
	case "double", "currency", "percent":
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return nil, fmt.Errorf("not a number (field %s is %s)", f.Name, f.Type)
		}
		return json.Number(strconv.FormatFloat(x, 'f', -1, 64)), nil
	case "int", "long":
		x, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("not a whole number (field %s is %s)", f.Name, f.Type)
		}
		return x, nil
	case "boolean":
		x, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("not true or false (field %s is a checkbox)", f.Name)
		}
		return x, nil
	}
	return v, nil
}

// getTracker reads the tracker record with external id ref: its id, the
// reference, the status and the optional fields the tables config names.
func getTracker(ctx context.Context, c *salesforce.Client, t salesforce.TrackerConfig, ref string) (map[string]any, error) {
	fields := []string{"Id", t.ExternalIDField, t.StatusField}
	for _, f := range []string{t.RunIDField, t.RecordsTotalField, t.RecordsFailedField, t.MessageField} {
		if f != "" {
			fields = append(fields, f)
		}
	}
	soql := fmt.Sprintf("SELECT %s FROM %s WHERE %s = '%s'", strings.Join(fields, ", "), t.SFObject, t.ExternalIDField, soqlEscape(ref))
	var recs []map[string]any
	if _, err := c.Query(ctx, soql, func(r map[string]any) error { recs = append(recs, r); return nil }); err != nil {
		return nil, trackerError(fmt.Errorf("read tracker record %q: %w", ref, err))
	}
	switch len(recs) {
	case 0:
		return nil, fmt.Errorf("tracker: no %s record has %s = %q; create it with 'sfmigrate tracker set %s STATUS', or check REF and the tables config's status_tracker section",
			t.SFObject, t.ExternalIDField, ref, ref)
	case 1:
	default:
		return nil, fmt.Errorf("tracker: %d %s records have %s = %q; make the field unique and remove the duplicates", len(recs), t.SFObject, t.ExternalIDField, ref)
	}
	rec := recs[0]
	delete(rec, "attributes")
	out := map[string]any{"object": t.SFObject, "ref": ref, "status": rec[t.StatusField], "fields": rec}
	return out, nil
}

// soqlEscape escapes a value for a single-quoted SOQL string literal.
func soqlEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\t", `\t`).Replace(s)
}
