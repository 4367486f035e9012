package salesforce

import (
	"fmt"
	"regexp"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
)

// TrackerConfig names the object and fields of the status tracker
// (salesforce-api.md §5). It is the one definition of the tracker: the
// client writes the status through it, and the tables config's
// status_tracker section decodes into it (hence the YAML keys). Empty
// names take the defaults (WithDefaults).
type TrackerConfig struct {
	// SFObject is the tracker sObject (default Migration_Status__c).
	SFObject string `yaml:"sf_object"`
	// ExternalIDField is its unique External ID field holding the
	// reference (default External_Ref__c).
	ExternalIDField string `yaml:"external_id_field"`
	// StatusField is the field the status is written to (default Status__c).
	StatusField string `yaml:"status_field"`
	// Create says whether a run creates the tracker record (upsert with
	// status "In Progress") when it does not exist yet. Default true. With
	// false, the record must exist before the run and every status write
	// is an update only (updateOnly=true), as the original DAG did.
	Create *bool `yaml:"create"`
	// Optional fields a run fills alongside the status when they are set:
	// the run id, the records extracted, the records that did not succeed
	// and a one-line message. The client itself never reads them.
	RunIDField         string `yaml:"run_id_field"`
	RecordsTotalField  string `yaml:"records_total_field"`
	RecordsFailedField string `yaml:"records_failed_field"`
	MessageField       string `yaml:"message_field"`
}

// Defaults of TrackerConfig.
const (
	DefaultTrackerObject          = "Migration_Status__c"
	DefaultTrackerExternalIDField = "External_Ref__c"
	DefaultTrackerStatusField     = "Status__c"
)

// CreateRecord reports whether the tracker record is created when missing.
func (t TrackerConfig) CreateRecord() bool { return t.Create == nil || *t.Create }

// WithDefaults returns t with the default object and fields in place of
// empty ones.
func (t TrackerConfig) WithDefaults() TrackerConfig {
	if t.SFObject == "" {
		t.SFObject = DefaultTrackerObject
	}
	if t.ExternalIDField == "" {
		t.ExternalIDField = DefaultTrackerExternalIDField
	}
	if t.StatusField == "" {
		t.StatusField = DefaultTrackerStatusField
	}
	return t
}

// trackerNameRE is an API name as the tracker may use it: letters, digits
// and '_', starting with a letter. No relationship path: every name is
// either the object, a path segment of the record's URL or a key of the
// JSON body. Salesforce's names have at most 40 characters plus a
// namespace prefix and suffix; 80 leaves room and keeps a wrong value (a
// whole file pasted in) out of URLs and log lines.
var trackerNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,79}$`)

// Validate checks every name of the tracker definition, the optional
// fields included: each set one must be an API name. Empty required names
// are refused too (call WithDefaults first to fill them). The error is a
// *TrackerNameError naming the first bad key and its value.
func (t TrackerConfig) Validate() error {
	for _, n := range []struct {
		key, name string
		required  bool
	}{
		{"sf_object", t.SFObject, true},
		{"external_id_field", t.ExternalIDField, true},
		{"status_field", t.StatusField, true},
		{"run_id_field", t.RunIDField, false},
		{"records_total_field", t.RecordsTotalField, false},
		{"records_failed_field", t.RecordsFailedField, false},
		{"message_field", t.MessageField, false},
	} {
		if (n.name != "" || n.required) && !trackerNameRE.MatchString(n.name) {
			return &TrackerNameError{Key: n.key, Value: n.name}
		}
	}
	return nil
}

// TrackerNameError is a name of the tracker definition that is not an API
// name. Key is the name's key in the tables config's status_tracker
// section (sf_object, status_field, ...).
type TrackerNameError struct {
	Key, Value string
}

// Problem says what is wrong with the value, without naming it.
func (e *TrackerNameError) Problem() string {
	return "not a Salesforce API name (letters, digits and _, starting with a letter, at most 80 characters)"
}

func (e *TrackerNameError) Error() string {
	return fmt.Sprintf("salesforce: status tracker %s %s is %s", e.Key, excerpt.Quote(e.Value), e.Problem())
}

// ConfigError marks the error as a configuration problem: no retry helps.
func (e *TrackerNameError) ConfigError() bool { return true }
