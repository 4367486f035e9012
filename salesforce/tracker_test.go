package salesforce_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/salesforce"
)

func TestTrackerConfigDefaultsAndValidate(t *testing.T) {
	d := salesforce.TrackerConfig{}.WithDefaults()
	if d.SFObject != "Migration_Status__c" || d.ExternalIDField != "External_Ref__c" || d.StatusField != "Status__c" || !d.CreateRecord() {
		t.Errorf("defaults: %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	no := false
	custom := salesforce.TrackerConfig{SFObject: "Load_Status__c", Create: &no, MessageField: "Message__c"}.WithDefaults()
	if custom.SFObject != "Load_Status__c" || custom.CreateRecord() || custom.Validate() != nil {
		t.Errorf("custom: %+v, %v", custom, custom.Validate())
	}
	tests := []struct {
		name     string
		t        salesforce.TrackerConfig
		key, val string
	}{
		{"empty object", salesforce.TrackerConfig{ExternalIDField: "E__c", StatusField: "S__c"}, "sf_object", ""},
		{"space", with(d, func(c *salesforce.TrackerConfig) { c.StatusField = "Status c" }), "status_field", "Status c"},
		{"digit first", with(d, func(c *salesforce.TrackerConfig) { c.ExternalIDField = "1Ref__c" }), "external_id_field", "1Ref__c"},
		{"relationship path", with(d, func(c *salesforce.TrackerConfig) { c.RunIDField = "Run__r.Id__c" }), "run_id_field", "Run__r.Id__c"},
		{"too long", with(d, func(c *salesforce.TrackerConfig) { c.MessageField = strings.Repeat("M", 81) }), "message_field", strings.Repeat("M", 81)},
		{"slash", with(d, func(c *salesforce.TrackerConfig) { c.RecordsFailedField = "a/b" }), "records_failed_field", "a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.t.Validate()
			var ne *salesforce.TrackerNameError
			if !errors.As(err, &ne) || ne.Key != tt.key || ne.Value != tt.val {
				t.Fatalf("Validate() = %v, want a TrackerNameError for %s = %q", err, tt.key, tt.val)
			}
			if !strings.Contains(err.Error(), "status tracker "+tt.key) || !strings.Contains(err.Error(), "not a Salesforce API name") {
				t.Errorf("message %q does not name the key and the problem", err)
			}
		})
	}
}

// with returns a copy of t changed by f.
func with(t salesforce.TrackerConfig, f func(*salesforce.TrackerConfig)) salesforce.TrackerConfig {
	f(&t)
	return t
}

// TestNewRefusesBadTrackerName: the client checks the tracker definition
// when it is built, with the same validation as the tables config, not at
// its first status write.
func TestNewRefusesBadTrackerName(t *testing.T) {
	cfg := salesforce.Config{LoginURL: "https://acme.my.salesforce.com", ClientID: "id", ClientSecret: "secret",
		Tracker: salesforce.TrackerConfig{StatusField: "Status__c; DROP"}}
	_, err := salesforce.New(cfg)
	var ne *salesforce.TrackerNameError
	if !errors.As(err, &ne) || ne.Key != "status_field" {
		t.Fatalf("New with a bad status field: %v, want a TrackerNameError", err)
	}
	cfg.Tracker = salesforce.TrackerConfig{} // defaults
	if _, err := salesforce.New(cfg); err != nil {
		t.Fatalf("New with the default tracker: %v", err)
	}
}
