package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sfmigrate/sfmigrate/airflow"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
	"github.com/sfmigrate/sfmigrate/salesforce"
)

// Defaults of the run settings that have one.
const (
	DefaultStartBatch = 1
	DefaultBatchSize  = 10000
	DefaultParallel   = 4
	// DefaultRecordRetries is how many follow-up jobs re-submit the rows
	// of a batch that failed for a transient reason (record_retries).
	DefaultRecordRetries = 3
	// MaxRecordRetries bounds record_retries: each follow-up waits longer.
	MaxRecordRetries = 10
	// DefaultMaxJobsInFlight is the most jobs a run keeps in the org at
	// once (max_jobs_in_flight): the window starts there and halves under
	// strain (salesforce.Window). An org processes about ten jobs at a
	// time and queues the rest; a job waiting in its queue costs a poll now
	// and then and its batch file on disk, so the default keeps the queue
	// full: measured on the emulator's realistic org (bench/peers), 12
	// left the org idle between waves, 25 did not.
	DefaultMaxJobsInFlight = 25
	// MaxMaxJobsInFlight bounds max_jobs_in_flight.
	MaxMaxJobsInFlight = 200
	// MaxBatchSize is the Bulk API's limit on records per ingest job
	// (150,000,000 per upload is far above; a single job's CSV must stay
	// under 100 MB, which the extractor enforces by bytes as well).
	MaxBatchSize = 10_000_000
	// MaxParallel bounds concurrent jobs: Salesforce processes a job's
	// internal batches in parallel already; more open jobs only add polling.
	MaxParallel = 100
)

// Sources of setting values, as recorded in the manifest and shown in errors.
const (
	SourceDefault = "default"
	SourceFlag    = "flag --table"
)

// runConfigKeys are the keys the run config (dag_run.conf) may carry.
var runConfigKeys = []string{"table", "start_batch", "batch_size", "parallel", "max_jobs_in_flight", "record_retries", "sf_object", "external_id_field", "status_ref", "operation", "max_rejected_rows"}

// Inputs is everything settings are resolved from.
type Inputs struct {
	// Table is the --table flag ("" when not given).
	Table string
	// Conf is the run config JSON (Airflow's dag_run.conf), "" when none.
	Conf string
	// ConfSource names where Conf came from, e.g. "--conf" or "--conf-file run.json".
	ConfSource string
	// Getenv reads AIRFLOW_VAR_* (and nothing else here). Nil: none set.
	Getenv func(string) string
	// Tables is the parsed tables config.
	Tables *TablesConfig
	// Resume, when not nil, is the manifest of the run being continued: its
	// table is used when none is given, and its batch-defining settings must
	// not change.
	Resume *Manifest
}

// Setting is one resolved value and where it came from.
type Setting struct {
	Value  any    `json:"value"`
	Source string `json:"source"`
}

// Settings are the resolved settings of one run.
type Settings struct {
	Table           string
	StartBatch      int    // first batch number (1-based): batch N starts at row (N-1)*BatchSize of the ordered query
	BatchSize       int    // rows per batch file
	Parallel        int    // jobs in flight at once
	RecordRetries   int    // follow-up jobs for rows that failed for a transient reason
	MaxJobsInFlight int    // most jobs in the org at once (the adaptive window's maximum)
	SFObject        string // target sObject
	ExternalIDField string // upsert key field
	Operation       string // Bulk API operation
	StatusRef       string // tracker record's external id
	// MaxRejectedRows stops the run once more source rows than this were
	// rejected (values that cannot be sent); -1: no limit (the default).
	MaxRejectedRows int64
	// TableConfig is the table's entry of the tables config.
	TableConfig *TableConfig
	// Tracker is the status tracker's definition.
	Tracker salesforce.TrackerConfig
	// Sources maps each setting name to its resolved value and source.
	Sources map[string]Setting
	// Warnings are problems that do not stop the run (unknown run config
	// keys, ignored).
	Warnings []string
}

// frozenSettings may not change when a run is resumed: they decide which
// rows go into which batch file and where the files go.
var frozenSettings = []string{"table", "start_batch", "batch_size", "sf_object", "external_id_field", "operation", "status_ref"}

// ResolveSettings applies the precedence of design.md §2: run config >
// AIRFLOW_VAR_* > default for start_batch, batch_size and parallel; run
// config > tables config for sf_object, external_id_field, status_ref and
// operation. Every problem is a *ConfigError.
func ResolveSettings(in Inputs) (*Settings, error) {
	getenv := in.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	confSrc := "run config"
	if in.ConfSource != "" {
		confSrc = "run config (" + in.ConfSource + ")"
	}
	conf, err := parseRunConfig(in.Conf, confSrc, in.ConfSource)
	if err != nil {
		return nil, err
	}
	s := &Settings{Sources: map[string]Setting{}}
	set := func(name string, v any, src string) { s.Sources[name] = Setting{Value: v, Source: src} }

	// table: --table, run config "table", or the resumed run's table.
	confTable, err := conf.str("table")
	if err != nil {
		return nil, err
	}
	switch {
	case in.Table != "" && confTable != "" && in.Table != confTable:
		return nil, &ConfigError{Setting: "table", Value: confTable, Source: confSrc,
			Problem: fmt.Sprintf("disagrees with --table %q", in.Table), Fix: "give the table once, or the same in both"}
	case in.Table != "":
		s.Table = in.Table
		set("table", s.Table, SourceFlag)
	case confTable != "":
		s.Table = confTable
		set("table", s.Table, confSrc)
	case in.Resume != nil:
		s.Table = in.Resume.Table
		if rec, ok := in.Resume.Settings["table"]; ok && fmt.Sprint(rec.Value) == s.Table {
			s.Sources["table"] = rec // where the run first got it
		} else {
			set("table", s.Table, "manifest of run "+in.Resume.RunID)
		}
	default:
		return nil, &ConfigError{Setting: "table", Problem: "is missing", Fix: `pass --table NAME or put "table" in the run config`}
	}
	if in.Tables == nil {
		return nil, &ConfigError{Setting: "tables config", Problem: "is missing", Fix: "pass --tables-config FILE"}
	}
	tc, ok := in.Tables.Tables[s.Table]
	if !ok {
		src := s.Sources["table"].Source
		return nil, &ConfigError{Setting: "table", Value: s.Table, Source: src,
			Problem: "is not defined in the tables config " + in.Tables.Path,
			Fix:     withGuess(Suggest(s.Table, in.Tables.TableNames()), "use one of "+strings.Join(in.Tables.TableNames(), ", ")+", or add it to the tables config")}
	}
	s.TableConfig = tc
	s.Tracker = in.Tables.StatusTracker
	tablesSrc := "tables config"
	if in.Tables.Path != "" {
		tablesSrc = "tables config " + in.Tables.Path
	}

	// Numbers: run config > AIRFLOW_VAR_<KEY> > default.
	intSetting := func(name string, def, min, max int, fix string) (int, error) {
		if v, src, ok, err := conf.int(name); err != nil {
			return 0, err
		} else if ok {
			if v < min || v > max {
				return 0, &ConfigError{Setting: name, Value: strconv.Itoa(v), Source: src,
					Problem: fmt.Sprintf("out of range %d..%d", min, max), Fix: fix}
			}
			set(name, v, src)
			return v, nil
		}
		envName := "AIRFLOW_VAR_" + strings.ToUpper(name)
		if raw, ok := airflow.LookupVariable(getenv, name); ok {
			v, err := strconv.Atoi(strings.TrimSpace(raw))
			if err != nil {
				return 0, &ConfigError{Setting: name, Value: raw, Source: envName, Problem: "not a whole number", Fix: fix}
			}
			if v < min || v > max {
				return 0, &ConfigError{Setting: name, Value: raw, Source: envName,
					Problem: fmt.Sprintf("out of range %d..%d", min, max), Fix: fix}
			}
			set(name, v, envName)
			return v, nil
		}
		set(name, def, SourceDefault)
		return def, nil
	}
	if s.StartBatch, err = intSetting("start_batch", DefaultStartBatch, 1, math.MaxInt32,
		"batches are numbered from 1; set start_batch to the first batch to extract, e.g. 1"); err != nil {
		return nil, err
	}
	if s.BatchSize, err = intSetting("batch_size", DefaultBatchSize, 1, MaxBatchSize,
		fmt.Sprintf("set batch_size to the rows per batch file, between 1 and %d, e.g. 10000", MaxBatchSize)); err != nil {
		return nil, err
	}
	if s.Parallel, err = intSetting("parallel", DefaultParallel, 1, MaxParallel,
		fmt.Sprintf("set parallel to the number of jobs in flight, between 1 and %d, e.g. 4", MaxParallel)); err != nil {
		return nil, err
	}
	if s.MaxJobsInFlight, err = intSetting("max_jobs_in_flight", DefaultMaxJobsInFlight, 1, MaxMaxJobsInFlight,
		fmt.Sprintf("set max_jobs_in_flight to the most jobs to keep processing in the org at once, between 1 and %d, e.g. 25", MaxMaxJobsInFlight)); err != nil {
		return nil, err
	}
	if s.RecordRetries, err = intSetting("record_retries", DefaultRecordRetries, 0, MaxRecordRetries,
		fmt.Sprintf("set record_retries to how many follow-up jobs may re-submit rows that failed for a transient reason, between 0 and %d, e.g. 3", MaxRecordRetries)); err != nil {
		return nil, err
	}
	maxRej, err := intSetting("max_rejected_rows", -1, 0, math.MaxInt32,
		"set max_rejected_rows to the number of rejected rows a run may have before it stops, e.g. 100 (0: stop at the first)")
	if err != nil {
		return nil, err
	}
	s.MaxRejectedRows = int64(maxRej)
	if s.Sources["max_rejected_rows"].Source == SourceDefault {
		s.Sources["max_rejected_rows"] = Setting{Value: "no limit", Source: SourceDefault}
	}

	// Names: run config > tables config (> default where one exists).
	strSetting := func(name, fromTables, def, defSource string, required bool, fix string) (string, error) {
		v, err := conf.str(name)
		if err != nil {
			return "", err
		}
		switch {
		case v != "":
			set(name, v, confSrc)
			return v, nil
		case fromTables != "":
			set(name, fromTables, tablesSrc+", tables."+s.Table+"."+name)
			return fromTables, nil
		case def != "":
			set(name, def, defSource)
			return def, nil
		case required:
			return "", &ConfigError{Setting: name, Source: tablesSrc + " and run config", Problem: "is missing for table " + s.Table, Fix: fix}
		}
		return "", nil
	}
	if s.SFObject, err = strSetting("sf_object", tc.SFObject, "", "", true,
		"set tables."+s.Table+".sf_object (or sf_object in the run config) to the target object's API name, e.g. Product2"); err != nil {
		return nil, err
	}
	if !fieldNameRE.MatchString(s.SFObject) || strings.Contains(s.SFObject, ".") {
		return nil, &ConfigError{Setting: "sf_object", Value: s.SFObject, Source: s.Sources["sf_object"].Source,
			Problem: "not an sObject API name (a letter, then letters, digits and _, at most 80 characters)", Fix: "use the object's API name, e.g. Product2 or Product_Price__c"}
	}
	if s.Operation, err = strSetting("operation", tc.Operation, "upsert", SourceDefault, true, ""); err != nil {
		return nil, err
	}
	c := canonicalOperation(s.Operation)
	if c == "" {
		return nil, &ConfigError{Setting: "operation", Value: s.Operation, Source: s.Sources["operation"].Source,
			Problem: "unknown operation", Fix: "use one of " + strings.Join(operations, ", ")}
	}
	s.Operation = c
	s.Sources["operation"] = Setting{Value: c, Source: s.Sources["operation"].Source}
	if s.ExternalIDField, err = strSetting("external_id_field", tc.ExternalIDField, "", "", s.Operation == "upsert",
		"upsert needs the external id field: set tables."+s.Table+".external_id_field (or external_id_field in the run config), e.g. External_Id__c"); err != nil {
		return nil, err
	}
	if s.ExternalIDField != "" {
		found := false
		for _, f := range tc.Fields {
			if strings.EqualFold(f.Name, s.ExternalIDField) {
				found = true
			}
		}
		if !found && s.Operation == "upsert" {
			return nil, &ConfigError{Setting: "external_id_field", Value: s.ExternalIDField, Source: s.Sources["external_id_field"].Source,
				Problem: "no column of tables." + s.Table + ".fields maps to it, and an upsert file must carry the key",
				Fix:     "map the key column to " + s.ExternalIDField + " in fields, or name a mapped field"}
		}
	}
	if s.StatusRef, err = strSetting("status_ref", tc.StatusRef, s.Table, SourceDefault+" (the table name)", true, ""); err != nil {
		return nil, err
	}
	if !tableNameRE.MatchString(s.StatusRef) {
		return nil, &ConfigError{Setting: "status_ref", Value: s.StatusRef, Source: s.Sources["status_ref"].Source,
			Problem: "a tracker key may only hold letters, digits, '_' and '-' (it goes into a URL path)", Fix: "use a plain key such as PRODUCT_PRICE"}
	}
	if err := conf.unused(); err != nil {
		return nil, err
	}
	s.Warnings = conf.warnings
	if in.Resume != nil {
		if err := s.checkResume(in.Resume); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkResume refuses settings that would make the resumed run's batches
// mean different rows than the ones already extracted or uploaded.
func (s *Settings) checkResume(m *Manifest) error {
	// Before the first batch exists nothing depends on the settings yet
	// (e.g. after `task authenticate`): values given now replace the
	// recorded ones, and values not given keep them.
	started := len(m.Batches) > 0 || m.Extract.Done
	for _, name := range frozenSettings {
		old, ok := m.Settings[name]
		if !ok {
			continue
		}
		cur := s.Sources[name]
		if fmt.Sprint(old.Value) == fmt.Sprint(cur.Value) {
			continue
		}
		if sourceRank(cur.Source) < sourceRank(old.Source) {
			// Not given this time by a source that outranks the recorded
			// one (a later task without the run config, where only the
			// Variable or a default speaks): continue with what the run
			// recorded, as the run config that set it still wins.
			if err := s.adopt(name, old); err == nil {
				continue
			}
		}
		why := "changing it would make its batches mean other rows"
		// The tracker record was marked "In Progress" under the recorded
		// reference: another one would leave that record behind.
		trackerWritten := name == "status_ref" && m.Tracker.Status != ""
		if trackerWritten {
			why = fmt.Sprintf("its tracker record %q is already marked %q; update-status must write the same record", fmt.Sprint(old.Value), m.Tracker.Status)
		}
		if !started && !trackerWritten {
			continue
		}
		return &ConfigError{Setting: name, Value: fmt.Sprint(cur.Value), Source: cur.Source,
			Problem: fmt.Sprintf("changed: run %s recorded %s = %v (from %s) in its manifest; %s",
				m.RunID, name, old.Value, old.Source, why),
			Fix: fmt.Sprintf("give every step of the run the same %s (in Airflow: pass the same dag_run.conf to every task), or leave it out to use the recorded value, or start a new run with another --run-id", name)}
	}
	if h := s.TableConfig.Hash(); started && m.TableHash != "" && h != m.TableHash {
		return &ConfigError{Setting: "tables." + s.Table, Source: "tables config",
			Problem: fmt.Sprintf("the table's definition changed since run %s started (query, order, fields, nulls, time zone or truncate)", m.RunID),
			Fix:     "restore the definition the run started with, or start a new run with another --run-id"}
	}
	return nil
}

// sourceRank orders the sources of a setting by precedence: the run config
// (or a flag) over a Variable or the tables config over a default.
func sourceRank(src string) int {
	switch {
	case strings.HasPrefix(src, "run config"), strings.HasPrefix(src, "flag "):
		return 3
	case strings.HasPrefix(src, SourceDefault):
		return 1
	}
	return 2 // AIRFLOW_VAR_*, tables config, a manifest
}

// didYouMean is " (did you mean G?)", or "" without a guess.
func didYouMean(guess string) string {
	if guess == "" {
		return ""
	}
	return "; did you mean " + guess + "?"
}

// adopt sets a frozen setting to the value a resumed run recorded.
func (s *Settings) adopt(name string, v Setting) error {
	str := fmt.Sprint(v.Value)
	num := func() (int, error) { return strconv.Atoi(str) }
	var err error
	switch name {
	case "start_batch":
		s.StartBatch, err = num()
	case "batch_size":
		s.BatchSize, err = num()
	case "sf_object":
		s.SFObject = str
	case "external_id_field":
		s.ExternalIDField = str
	case "operation":
		s.Operation = str
	case "status_ref":
		s.StatusRef = str
	default:
		return fmt.Errorf("setting %s cannot be adopted", name)
	}
	if err != nil {
		return err
	}
	s.Sources[name] = v
	return nil
}

// Hash identifies the parts of a table definition that decide batch contents.
func (t *TableConfig) Hash() string {
	parts := []any{t.Source, t.Query, t.Table, t.OrderBy, t.Fields, t.Nulls, t.SourceTimeZone}
	if t.Truncate.set() {
		// Only when set, so that the hash of a table without it stays
		// what earlier versions recorded.
		parts = append(parts, t.Truncate)
	}
	b, err := json.Marshal(parts)
	if err != nil {
		panic(err) // plain strings always marshal
	}
	return sha256Hex(b)
}

// ReadConfFile reads a run config file for --conf-file.
func ReadConfFile(path string) (string, error) {
	f, err := os.Open(path)
	var b []byte
	if err == nil {
		b, err = readAllLimited(f, MaxRunConfigBytes)
		f.Close()
	}
	var big errTooLarge
	if errors.As(err, &big) {
		return "", &ConfigError{Setting: "run config", Value: path, Source: "--conf-file", Problem: big.Error(),
			Fix: "a run config holds a few settings such as {\"batch_size\": 5000}: pass the right file"}
	}
	if err != nil {
		return "", &ConfigError{Setting: "run config", Value: path, Source: "--conf-file", Problem: "cannot be read", Err: err,
			Fix: "pass the path of a JSON file such as {\"batch_size\": 5000}"}
	}
	return string(b), nil
}

// runConfig is the decoded run config with the keys already used.
type runConfig struct {
	src      string
	vals     map[string]json.RawMessage
	used     map[string]bool
	warnings []string // about keys ignored
}

// parseRunConfig decodes the run config. src names it for settings taken
// from it ("run config (--conf)"), flag for errors about it as a whole.
func parseRunConfig(raw, src, flag string) (*runConfig, error) {
	c := &runConfig{src: src, vals: map[string]json.RawMessage{}, used: map[string]bool{}}
	if strings.TrimSpace(raw) == "" {
		return c, nil
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	if err := dec.Decode(&c.vals); err != nil {
		return nil, &ConfigError{Setting: "run config", Value: strings.TrimSpace(raw), Source: flag, Problem: "is not a JSON object: " + err.Error(),
			Fix: `pass a JSON object such as '{"batch_size": 5000, "start_batch": 3}' (quote it for the shell)`}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &ConfigError{Setting: "run config", Value: strings.TrimSpace(raw), Source: flag, Problem: "has text after the JSON object",
			Fix: "pass exactly one JSON object"}
	}
	keys := make([]string, 0, len(c.vals))
	for k := range c.vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(runConfigKeys, k) {
			// As the original DAG did, a key sfmigrate does not know is
			// ignored (other tasks of the DAG may read it); said so, in case
			// it is a typo.
			c.used[k] = true
			c.warnings = append(c.warnings, fmt.Sprintf("%s: unknown key %q ignored (sfmigrate reads only %s)%s",
				src, excerpt.N(k, 60), strings.Join(runConfigKeys, ", "), didYouMean(Suggest(k, runConfigKeys))))
		}
	}
	return c, nil
}

func (c *runConfig) str(key string) (string, error) {
	raw, ok := c.vals[key]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	c.used[key] = true
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &ConfigError{Setting: key, Value: string(raw), Source: c.src, Problem: "must be a JSON string",
			Fix: fmt.Sprintf(`write it as "%s": "VALUE"`, key)}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", &ConfigError{Setting: key, Source: c.src, Problem: "is empty", Fix: "give a value or leave the key out"}
	}
	return s, nil
}

// int reads a whole number given as a JSON number or a string of digits
// (Airflow's trigger form sends strings).
func (c *runConfig) int(key string) (int, string, bool, error) {
	raw, ok := c.vals[key]
	if !ok || string(raw) == "null" {
		return 0, "", false, nil
	}
	c.used[key] = true
	text := string(bytes.TrimSpace(raw))
	var s string
	if json.Unmarshal(raw, &s) == nil {
		text = strings.TrimSpace(s)
	}
	v, err := strconv.Atoi(text)
	if err != nil {
		return 0, "", false, &ConfigError{Setting: key, Value: text, Source: c.src, Problem: "not a whole number",
			Fix: fmt.Sprintf(`write it as "%s": 5000`, key)}
	}
	return v, c.src, true, nil
}

func (c *runConfig) unused() error {
	var left []string
	for k := range c.vals {
		if !c.used[k] && string(c.vals[k]) != "null" {
			left = append(left, k)
		}
	}
	sort.Strings(left)
	if len(left) > 0 {
		return &ConfigError{Setting: "run config key", Value: left[0], Source: c.src, Problem: "was not used", Fix: "remove it"}
	}
	return nil
}

// Location returns the table's source time zone (UTC when not set).
func (t *TableConfig) Location() *time.Location {
	if t.SourceTimeZone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(t.SourceTimeZone)
	if err != nil {
		return time.UTC // validated when the config was parsed
	}
	return loc
}
