package salesforce_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

func TestDescribe(t *testing.T) {
	env := newEnv(t, nil)
	d, err := env.client.Describe(t.Context(), "Product2")
	if err != nil {
		t.Fatal(err)
	}
	ext := d.Field("external_id__c") // names match case-insensitively
	if ext == nil || !ext.ExternalID || ext.Type != "string" || ext.Length != 80 {
		t.Errorf("External_Id__c = %+v", ext)
	}
	acc := d.Field("Account__c")
	if acc == nil || acc.Type != "reference" || acc.RelationshipName != "Account__r" || len(acc.ReferenceTo) != 1 || acc.ReferenceTo[0] != "Account" {
		t.Errorf("Account__c = %+v", acc)
	}
	if fam := d.Field("Family"); fam == nil || len(fam.PicklistValues) != 4 {
		t.Errorf("Family = %+v", fam)
	}
	if id := d.Field("Id"); id == nil || id.Type != "id" {
		t.Errorf("Id = %+v", id)
	}
	if _, err := env.client.Describe(t.Context(), "Product2/../x"); err == nil {
		t.Error("a malformed object name was sent")
	}
}

func TestCheckAPIVersion(t *testing.T) {
	env := newEnv(t, func(c *salesforce.Config) { c.APIVersion = "v99.0" })
	err := env.client.CheckAPIVersion(t.Context())
	if err == nil || !strings.Contains(err.Error(), "v99.0 is not offered") || !strings.Contains(err.Error(), "66.0") {
		t.Errorf("err = %v, want v99.0 refused naming the versions offered", err)
	}
}

// TestStatusTracker: UpsertStatus creates then updates; UpdateStatus
// updates and never creates; the record in the org shows each step.
func TestStatusTracker(t *testing.T) {
	env := newEnv(t, nil)
	ctx := t.Context()
	ref := "TRK_" + time.Now().Format("150405.000000")[:6] + "_A"
	status := func() string {
		v, _ := env.field(t, "Migration_Status__c", "External_Ref__c", ref, "Status__c")
		return v
	}
	err := env.client.UpdateStatus(ctx, ref, "Uploaded")
	if !errors.Is(err, salesforce.ErrTrackerRecordNotFound) {
		t.Fatalf("UpdateStatus of a missing record: %v, want ErrTrackerRecordNotFound", err)
	}
	for _, want := range []string{ref, "Migration_Status__c", "External_Ref__c", "create it first", "status_tracker.create: true"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, found := env.field(t, "Migration_Status__c", "External_Ref__c", ref, "Status__c"); found {
		t.Fatal("UpdateStatus created a record")
	}

	if err := env.client.UpsertStatus(ctx, ref, "Not Started", map[string]any{"Records_Total__c": 1200, "Last_Run_Id__c": "run-1"}); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != "Not Started" {
		t.Errorf("status = %q after upsert", got)
	}
	if err := env.client.UpdateStatus(ctx, ref, "In Progress"); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != "In Progress" {
		t.Errorf("status = %q after update", got)
	}
	if err := env.client.UpsertStatus(ctx, ref, "Uploaded", map[string]any{"Records_Failed__c": 0}); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != "Uploaded" {
		t.Errorf("status = %q after second upsert", got)
	}
	if total, _ := env.field(t, "Migration_Status__c", "External_Ref__c", ref, "Records_Total__c"); total != "1200" {
		t.Errorf("Records_Total__c = %q, want 1200 (kept by the later upsert)", total)
	}
	if n := env.countRecords(t, "Migration_Status__c", "External_Ref__c = '"+ref+"'"); n != 1 {
		t.Errorf("%d tracker records for %s, want 1", n, ref)
	}

	// Salesforce's own refusal (restricted picklist) comes back as is.
	err = env.client.UpdateStatus(ctx, ref, "Exploded")
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Errorf("bad status value: %v, want a 400 APIError", err)
	}
	// Fields are checked against describe before sending.
	if err := env.client.UpsertStatus(ctx, ref, "Uploaded", map[string]any{"No_Such__c": 1}); err == nil || !strings.Contains(err.Error(), "No_Such__c") {
		t.Errorf("unknown field: %v", err)
	}
	if err := env.client.UpsertStatus(ctx, ref, "Uploaded", map[string]any{"External_Ref__c": "x"}); err == nil {
		t.Error("the key field was accepted in the body")
	}
}

// TestTrackerRefs: refs the API cannot route are refused before any
// request; others are escaped as one path segment and land intact.
func TestTrackerRefs(t *testing.T) {
	env := newEnv(t, nil)
	ctx := t.Context()
	for _, ref := range []string{"a/b", "user@example.inc", "HR.EMPLOYEES", "", "  ", "tab\there"} {
		env.requests.reset()
		err := env.client.UpsertStatus(ctx, ref, "Not Started", nil)
		if err == nil || !strings.Contains(err.Error(), "status tracker") {
			t.Errorf("ref %q: %v, want a refusal", ref, err)
		}
		if n := env.requests.count("", "/sobjects/"); n != 0 {
			t.Errorf("ref %q: %d requests sent", ref, n)
		}
	}
	for _, ref := range []string{"PRODUCT PRICE", "A&B=C+D", "50%_done", "why?#1", "Ünïcode-tåble"} {
		if err := env.client.UpsertStatus(ctx, ref, "In Progress", nil); err != nil {
			t.Errorf("ref %q: %v", ref, err)
			continue
		}
		if err := env.client.UpdateStatus(ctx, ref, "Uploaded"); err != nil {
			t.Errorf("ref %q: update: %v", ref, err)
		}
		key := strings.ReplaceAll(ref, "'", "\\'")
		if got, found := env.field(t, "Migration_Status__c", "External_Ref__c", key, "Status__c"); !found || got != "Uploaded" {
			t.Errorf("ref %q: record found=%v status=%q", ref, found, got)
		}
	}
}

func TestUpdateStatusNeedsV61(t *testing.T) {
	env := newEnv(t, func(c *salesforce.Config) { c.APIVersion = "v60.0" })
	err := env.client.UpdateStatus(t.Context(), "T1", "Uploaded")
	if err == nil || !strings.Contains(err.Error(), "v61.0") || !strings.Contains(err.Error(), "v60.0") {
		t.Errorf("err = %v", err)
	}
	if n := env.requests.count("", "/"); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// TestTrackerMisconfigured: a missing tracker object or field is reported
// as such (by describe), not as a missing record.
func TestTrackerMisconfigured(t *testing.T) {
	env := newEnv(t, func(c *salesforce.Config) { c.Tracker.SFObject = "Load_Status__c" })
	err := env.client.UpdateStatus(t.Context(), "T1", "Uploaded")
	if err == nil || errors.Is(err, salesforce.ErrTrackerRecordNotFound) || !strings.Contains(err.Error(), "object Load_Status__c does not exist") {
		t.Errorf("err = %v", err)
	}
	env = newEnv(t, func(c *salesforce.Config) { c.Tracker.StatusField = "State__c" })
	err = env.client.UpsertStatus(t.Context(), "T1", "Uploaded", nil)
	if err == nil || !strings.Contains(err.Error(), "no field State__c") {
		t.Errorf("err = %v", err)
	}
	env = newEnv(t, func(c *salesforce.Config) { c.Tracker.ExternalIDField = "Message__c" })
	err = env.client.UpsertStatus(t.Context(), "T1", "Uploaded", nil)
	if err == nil || !strings.Contains(err.Error(), "Message__c is not an External ID") {
		t.Errorf("err = %v", err)
	}
}

// TestTrackerDescribeErrorReadsOnce: when the tracker's describe fails,
// the message says each thing once: one "salesforce:" prefix, the request
// (naming the describe and the object) and its status once, and the
// tracker's reading of it.
// The *APIError stays reachable with errors.As.
func TestTrackerDescribeErrorReadsOnce(t *testing.T) {
	cases := []struct {
		name   string
		env    func(t *testing.T) *testEnv
		object string
		status int
		want   string
	}{
		{"object missing (404)", func(t *testing.T) *testEnv {
			return newEnv(t, func(c *salesforce.Config) { c.Tracker.SFObject = "Load_Status__c" })
		}, "Load_Status__c", 404, "does not exist in the org"},
		{"describe keeps failing (500)", func(t *testing.T) *testEnv {
			env := newEnv(t, func(c *salesforce.Config) { c.MaxAttempts = 2 })
			env.needEmu(t)
			env.emu.AddFault(sfemu.Fault{Path: "/describe", Status: 500, Count: 2})
			return env
		}, "Migration_Status__c", 500, "(after 2 attempts)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.env(t).client.UpsertStatus(t.Context(), "T1", "In Progress", nil)
			var apiErr *salesforce.APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tc.status {
				t.Fatalf("err = %v, want it to wrap the describe's *APIError %d", err, tc.status)
			}
			msg := err.Error()
			if !strings.Contains(msg, "status tracker") || !strings.Contains(msg, tc.want) {
				t.Errorf("message %q does not say %q", msg, tc.want)
			}
			once := []string{"salesforce:", "describe", strconv.Itoa(tc.status)}
			if tc.status != 404 {
				// A missing object is named in the diagnosis and in the
				// request; a 500's ErrorId is random digits, so its status
				// is counted with its text.
				once = []string{"salesforce:", "describe", tc.object, "500 Internal Server Error"}
			}
			for _, once := range once {
				if n := strings.Count(msg, once); n != 1 {
					t.Errorf("%q appears %d times in %q, want once", once, n, msg)
				}
			}
		})
	}
}

// TestTrackerLockRetried: a tracker record locked by another transaction
// (UNABLE_TO_LOCK_ROW) is retried until the lock goes away.
func TestTrackerLockRetried(t *testing.T) {
	env := newEnv(t, func(c *salesforce.Config) {
		c.MaxAttempts = 8
		c.RetryBaseDelay = 5 * time.Millisecond
		c.RetryMaxDelay = 20 * time.Millisecond
	})
	env.needEmu(t)
	ctx := t.Context()
	if err := env.client.UpsertStatus(ctx, "LOCKED", "Not Started", nil); err != nil {
		t.Fatal(err)
	}
	env.emu.LockRecords("Migration_Status__c", "LOCKED")
	time.AfterFunc(30*time.Millisecond, func() { env.emu.UnlockRecords("Migration_Status__c", "LOCKED") })
	env.requests.reset()
	if err := env.client.UpdateStatus(ctx, "LOCKED", "Uploaded"); err != nil {
		t.Fatal(err)
	}
	if n := env.requests.count("PATCH", "/LOCKED"); n < 2 {
		t.Errorf("PATCHes = %d, want the locked attempts and a good one", n)
	}
	if v, _ := env.field(t, "Migration_Status__c", "External_Ref__c", "LOCKED", "Status__c"); v != "Uploaded" {
		t.Errorf("status = %q", v)
	}

	env.emu.LockRecords("Migration_Status__c", "LOCKED")
	err := env.client.UpdateStatus(ctx, "LOCKED", "Failed")
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || !apiErr.HasCode("UNABLE_TO_LOCK_ROW") || !strings.Contains(err.Error(), "after 8 attempts") {
		t.Errorf("permanent lock: %v", err)
	}
}

var _ = sfemu.TestClientID
