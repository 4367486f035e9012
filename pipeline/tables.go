package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sfmigrate/sfmigrate/internal/yamlcheck"
	"github.com/sfmigrate/sfmigrate/salesforce"
)

// TablesConfig is the tables config file (design.md §2): where the status
// tracker lives and, per source table, how its rows map to a Salesforce
// object.
type TablesConfig struct {
	// Path is the file the config was read from ("" when parsed from a reader).
	Path string `yaml:"-"`
	// StatusTracker says which object and fields update-status writes.
	StatusTracker salesforce.TrackerConfig `yaml:"status_tracker"`
	// PlanStatusRef is the tracker record's external id for a plan (several
	// tables in one run, plan/doc.go); default PLAN.
	PlanStatusRef string `yaml:"plan_status_ref"`
	// Tables maps a table name (the --table value, the batch file prefix and
	// the default tracker key) to its definition.
	Tables map[string]*TableConfig `yaml:"tables"`
}

// TableConfig is one entry of the tables config.
type TableConfig struct {
	// Source is the Airflow connection id of the source database.
	Source string `yaml:"source"`
	// Query is the SELECT to extract; exactly one of Query and Table is set.
	Query string `yaml:"query"`
	// Table is a table (or view) name to extract whole.
	Table string `yaml:"table"`
	// OrderBy is the stable ordering key (one column or several) that makes
	// start_batch select the same rows on every run.
	OrderBy StringList `yaml:"order_by"`
	// SFObject and ExternalIDField are the target object and its external id
	// field; the run config may override both.
	SFObject        string `yaml:"sf_object"`
	ExternalIDField string `yaml:"external_id_field"`
	// Operation is the Bulk API operation: upsert (default), insert, update,
	// delete or hardDelete.
	Operation string `yaml:"operation"`
	// Fields maps source columns to Salesforce field API names, in the order
	// of the file (the order of the CSV header).
	Fields FieldList `yaml:"fields"`
	// StatusRef is the tracker record's external id (default: the table name).
	StatusRef string `yaml:"status_ref"`
	// Nulls says what a NULL becomes: "keep" (empty value: the field is left
	// unchanged, the default) or "clear" (#N/A: the field is set to null).
	Nulls string `yaml:"nulls"`
	// SourceTimeZone is the IANA zone of timestamps stored without a zone
	// (default UTC), e.g. Europe/Berlin.
	SourceTimeZone string `yaml:"source_time_zone"`
	// Truncate cuts text longer than its Salesforce field to the field's
	// length instead of rejecting the row: true for every column, or a
	// list of the columns it applies to. Counted as "truncated".
	Truncate Truncate `yaml:"truncate,omitempty"`
	// DependsOn names tables of the config that must be loaded before this
	// one in a plan, beyond the order its lookup fields give (plan/doc.go).
	DependsOn StringList `yaml:"depends_on"`
	// OnParentFailure says whether this table still runs in a plan when a
	// table it waits for ended with failed rows: "stop" (default) or "continue".
	OnParentFailure string `yaml:"on_parent_failure"`
}

// Truncate is the truncate setting of a table: true (All) or a list of
// source columns.
type Truncate struct {
	All     bool
	Columns []string
}

func (t Truncate) set() bool { return t.All || len(t.Columns) > 0 }

// Applies reports whether text of column is truncated.
func (t Truncate) Applies(column string) bool {
	if t.All {
		return true
	}
	for _, c := range t.Columns {
		if strings.EqualFold(c, column) {
			return true
		}
	}
	return false
}

// IsZero reports an unset truncate (left out when a config is written).
func (t Truncate) IsZero() bool { return !t.set() }

// MarshalYAML writes it as it is read: true or the column list.
func (t Truncate) MarshalYAML() (any, error) {
	if t.All {
		return true, nil
	}
	return t.Columns, nil
}

// MarshalJSON is for TableConfig.Hash: true or the column list.
func (t Truncate) MarshalJSON() ([]byte, error) {
	if t.All {
		return []byte("true"), nil
	}
	return json.Marshal(t.Columns)
}

// UnmarshalYAML accepts true / false or a list of columns (or "A, B").
func (t *Truncate) UnmarshalYAML(n *yaml.Node) error {
	*t = Truncate{}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		return n.Decode(&t.All)
	}
	var cols StringList
	if err := cols.UnmarshalYAML(n); err != nil {
		return fmt.Errorf("line %d: truncate: want true, false or a list of columns", n.Line)
	}
	t.Columns = cols
	return nil
}

// StringList is a YAML value given either as one string (commas separate
// items) or as a list of strings.
type StringList []string

// UnmarshalYAML accepts "A", "A, B" or [A, B].
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*l = nil
		for _, p := range strings.Split(n.Value, ",") {
			if p = strings.TrimSpace(p); p != "" {
				*l = append(*l, p)
			}
		}
		return nil
	case yaml.SequenceNode:
		var s []string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*l = s
		return nil
	}
	return fmt.Errorf("line %d: want a column name or a list of column names", n.Line)
}

// Field maps one source column to one Salesforce field.
type Field struct {
	Column string // source column name as the query returns it
	Name   string // Salesforce field API name, or Relationship__r.External_Field__c
}

// FieldList keeps the order of the fields mapping as written in the file:
// it is the column order of every batch file.
type FieldList []Field

// UnmarshalYAML reads a mapping of column -> field, keeping its order.
func (l *FieldList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: fields must be a mapping of source column to Salesforce field", n.Line)
	}
	*l = nil
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: fields: each entry must be COLUMN: Field_Name__c", k.Line)
		}
		*l = append(*l, Field{Column: k.Value, Name: v.Value})
	}
	return nil
}

var (
	// Salesforce API names: letters, digits, underscores; relationship
	// columns add one "Rel__r." prefix (one level only, salesforce-api.md §4.3).
	// Salesforce's names have at most 40 characters plus a namespace
	// prefix and suffix; 80 leaves room and keeps a wrong value (a whole
	// file pasted in) out of URLs and log lines.
	fieldNameRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]{0,79}\.)?[A-Za-z][A-Za-z0-9_]{0,79}$`)
	// Tracker keys and table names end up in URL paths and file names.
	tableNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// Operations the tables config accepts, as the Bulk API spells them.
var operations = []string{"insert", "update", "upsert", "delete", "hardDelete"}

// ParseTablesConfig reads a tables config strictly: unknown keys, missing
// required keys and malformed values are ConfigErrors naming the table and key.
func ParseTablesConfig(r io.Reader, path string) (*TablesConfig, error) {
	src := path
	if src == "" {
		src = "tables config"
	}
	data, err := readAllLimited(r, MaxTablesConfigBytes)
	var big errTooLarge
	if errors.As(err, &big) {
		return nil, &ConfigError{Setting: "tables config", Source: src, Problem: big.Error(),
			Fix: "split the tables into several config files, one per run"}
	}
	if err != nil {
		return nil, fmt.Errorf("read tables config %s: %w", src, err)
	}
	// Three passes, each with its own message: YAML syntax, then keys
	// (with the line and the key path, and a guess at the intended key),
	// then value types.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ConfigError{Setting: "tables config", Source: src, Problem: "is not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "),
			Fix: "check the indentation near that line (spaces only, the keys of one entry at the same depth), and write a query holding \": \" or \" #\" as a folded block (query: >-) or in quotes"}
	}
	if err := yamlcheck.OneDocument(data); err != nil {
		return nil, &ConfigError{Setting: "tables config", Source: src, Problem: err.Error(),
			Fix: "put every table under the one top-level tables: mapping (a line holding only --- starts a new document)"}
	}
	if len(doc.Content) == 0 {
		return nil, &ConfigError{Setting: "tables config", Source: src, Problem: "is empty",
			Fix: "define tables: with one entry per source table (see examples/tables.yaml)"}
	}
	if err := checkKeys(doc.Content[0], src); err != nil {
		return nil, err
	}
	var cfg TablesConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return nil, &ConfigError{Setting: "tables config", Source: src, Problem: strings.TrimPrefix(err.Error(), "yaml: "),
			Fix: "give each key a value of the kind examples/tables.yaml shows"}
	}
	cfg.Path = path
	cfg.StatusTracker = cfg.StatusTracker.WithDefaults()
	if err := cfg.StatusTracker.Validate(); err != nil {
		return nil, trackerConfigError(err, src)
	}
	if len(cfg.Tables) == 0 {
		return nil, &ConfigError{Setting: "tables", Source: src, Problem: "no tables are defined",
			Fix: "add a tables: mapping with one entry per source table (see examples/tables.yaml)"}
	}
	for _, name := range cfg.TableNames() {
		if err := cfg.Tables[name].validate(name, src); err != nil {
			return nil, err
		}
	}
	if err := cfg.validatePlanKeys(src); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// trackerConfigError makes the tracker definition's validation error
// (salesforce.TrackerConfig.Validate) a ConfigError naming the
// status_tracker key, its value and src.
func trackerConfigError(err error, src string) error {
	var ne *salesforce.TrackerNameError
	if !errors.As(err, &ne) {
		return err
	}
	return &ConfigError{Setting: "status_tracker." + ne.Key, Value: ne.Value, Source: src,
		Problem: ne.Problem(), Fix: "use the API name, e.g. Status__c"}
}

// Keys of the tables config at each level, in the order of design.md §2.
var (
	topKeys     = []string{"status_tracker", "plan_status_ref", "tables"}
	trackerKeys = []string{"sf_object", "external_id_field", "status_field", "create", "run_id_field",
		"records_total_field", "records_failed_field", "message_field"}
	tableKeys = []string{"source", "query", "table", "order_by", "sf_object", "external_id_field", "operation",
		"fields", "status_ref", "nulls", "source_time_zone", "truncate",
		"depends_on", "on_parent_failure"}
)

// checkKeys rejects unknown keys with the line, the key's path and the
// key that was probably meant.
func checkKeys(root *yaml.Node, src string) error {
	if root.Kind != yaml.MappingNode {
		return &ConfigError{Setting: "tables config", Source: fmt.Sprintf("%s, line %d", src, root.Line),
			Problem: "is not a mapping", Fix: "start with status_tracker: and tables: (see examples/tables.yaml)"}
	}
	check := func(n *yaml.Node, path string, known []string) error {
		if n.Kind != yaml.MappingNode {
			return nil // the typed decode reports the wrong kind
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if slices.Contains(known, k.Value) {
				continue
			}
			return &ConfigError{Setting: strings.TrimPrefix(path+"."+k.Value, "."), Source: fmt.Sprintf("%s, line %d", src, k.Line),
				Problem: "unknown key", Fix: withGuess(Suggest(k.Value, known), "use one of "+strings.Join(known, ", "))}
		}
		return nil
	}
	if err := check(root, "", topKeys); err != nil {
		return err
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch k, v := root.Content[i].Value, root.Content[i+1]; k {
		case "status_tracker":
			if err := check(v, k, trackerKeys); err != nil {
				return err
			}
		case "tables":
			if v.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				if err := check(v.Content[j+1], "tables."+v.Content[j].Value, tableKeys); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Suggest returns the option that word is most likely a typo of: one that
// differs only in case, '_', '-' or spaces, else the closest within two
// edits; "" when none is that close. Messages use it for "did you mean".
func Suggest(word string, options []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	best, bestD := "", 3
	for _, o := range options {
		if norm(o) == norm(word) {
			return o
		}
		if d := editDistance(strings.ToLower(word), strings.ToLower(o)); d < bestD {
			best, bestD = o, d
		}
	}
	return best
}

// withGuess puts "did you mean GUESS?" before fix when there is a guess.
func withGuess(guess, fix string) string {
	if guess == "" {
		return fix
	}
	return "did you mean " + guess + "? Or " + fix
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// LoadTablesConfig reads the tables config file at path.
func LoadTablesConfig(path string) (*TablesConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		fix := "pass --tables-config with the path of your tables config (see examples/tables.yaml)"
		if !errors.Is(err, os.ErrNotExist) {
			fix = "check the file's permissions"
		}
		return nil, &ConfigError{Setting: "tables config", Value: path, Source: "--tables-config",
			Problem: "cannot be opened", Err: err, Fix: fix}
	}
	defer f.Close() // read-only: a Close error cannot lose data
	return ParseTablesConfig(f, path)
}

// TableNames lists the configured tables in sorted order.
func (c *TablesConfig) TableNames() []string {
	names := make([]string, 0, len(c.Tables))
	for n := range c.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (t *TableConfig) validate(name, src string) error {
	bad := func(key, value, problem, fix string) error {
		return &ConfigError{Setting: "tables." + name + "." + key, Value: value, Source: src, Problem: problem, Fix: fix}
	}
	if t == nil {
		return bad("", "", "the entry is empty", "give at least source, query or table, order_by and fields")
	}
	if !tableNameRE.MatchString(name) {
		return &ConfigError{Setting: "tables", Value: name, Source: src,
			Problem: "a table name may only hold letters, digits, '_' and '-' (it names files and the tracker record)",
			Fix:     "rename the entry, e.g. PRODUCT_PRICE"}
	}
	if t.Source == "" {
		return bad("source", "", "is missing", "name the Airflow connection id of the source database, e.g. source: oracle_default")
	}
	switch {
	case t.Query == "" && t.Table == "":
		return bad("query", "", "neither query nor table is given", "set query: SELECT ... or table: NAME")
	case t.Query != "" && t.Table != "":
		return bad("query", "", "both query and table are given", "keep only one of them")
	}
	if len(t.OrderBy) == 0 {
		return bad("order_by", "", "is missing: without a stable order start_batch and resume could select different rows on each run",
			"name the key column(s), e.g. order_by: PRODUCT_ID")
	}
	if len(t.Fields) == 0 {
		return bad("fields", "", "is missing", "map each source column to its Salesforce field, e.g. fields: {PRODUCT_ID: External_Id__c}")
	}
	seenCol, seenField := map[string]bool{}, map[string]bool{}
	for _, f := range t.Fields {
		if f.Column == "" {
			return bad("fields", "", "a source column name is empty", "write COLUMN: Field__c")
		}
		if !fieldNameRE.MatchString(f.Name) {
			return bad("fields."+f.Column, f.Name, "is not a Salesforce field API name (Field__c or Relationship__r.External_Id__c)",
				"use the field's API name")
		}
		if seenCol[strings.ToUpper(f.Column)] {
			return bad("fields."+f.Column, "", "the column is mapped twice", "map each column once")
		}
		if seenField[strings.ToLower(f.Name)] {
			return bad("fields."+f.Column, f.Name, "two columns map to the same field", "map each field once")
		}
		seenCol[strings.ToUpper(f.Column)], seenField[strings.ToLower(f.Name)] = true, true
	}
	if t.Operation != "" && canonicalOperation(t.Operation) == "" {
		return bad("operation", t.Operation, "unknown operation", "use one of "+strings.Join(operations, ", "))
	}
	switch t.Nulls {
	case "", "keep", "clear":
	default:
		return bad("nulls", t.Nulls, "unknown null handling", `use "keep" (NULL leaves the field unchanged) or "clear" (NULL empties the field)`)
	}
	if t.SourceTimeZone != "" {
		if _, err := time.LoadLocation(t.SourceTimeZone); err != nil {
			return bad("source_time_zone", t.SourceTimeZone, "unknown time zone", "use an IANA zone name such as Europe/Berlin or UTC")
		}
	}
	for _, c := range t.Truncate.Columns {
		found := false
		for _, f := range t.Fields {
			found = found || strings.EqualFold(f.Column, c)
		}
		if !found {
			return bad("truncate", c, "is not a column of fields", "list columns mapped in fields, or write truncate: true for all of them")
		}
	}
	if t.StatusRef != "" && !tableNameRE.MatchString(t.StatusRef) {
		return bad("status_ref", t.StatusRef, "a tracker key may only hold letters, digits, '_' and '-' (it goes into a URL path)",
			"use a plain key such as PRODUCT_PRICE")
	}
	return nil
}

func canonicalOperation(op string) string {
	for _, o := range operations {
		if strings.EqualFold(o, op) {
			return o
		}
	}
	return ""
}
