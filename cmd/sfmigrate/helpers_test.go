package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// createTracker creates a tracker record through the REST sObject create
// endpoint, as an admin would.
func createTracker(t *testing.T, baseURL, ref, status string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sfemu.TestClientID}, "client_secret": {sfemu.TestClientSecret}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, baseURL+"/services/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var tok struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	if err := doJSON(req, &tok); err != nil {
		t.Fatal(err)
	}
	body := `{"External_Ref__c": "` + ref + `", "Status__c": "` + status + `"}`
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, tok.InstanceURL+"/services/data/v66.0/sobjects/Migration_Status__c/", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	var res map[string]any
	if err := doJSON(req, &res); err != nil {
		t.Fatal(err)
	}
}
