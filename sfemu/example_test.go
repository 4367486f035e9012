package sfemu_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// Example runs a Bulk API 2.0 upsert against the emulator over real HTTP:
// token, create, upload, close, and the successful results.
func Example() {
	emu := sfemu.New(sfemu.WithProcessing(sfemu.ProcessInstant, 0), sfemu.WithoutShuffle())
	srv := httptest.NewServer(emu)
	defer srv.Close()
	defer emu.Close()

	res, _ := http.PostForm(srv.URL+"/services/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {sfemu.TestClientID}, "client_secret": {sfemu.TestClientSecret}})
	var tok struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"` // this server
	}
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()

	call := func(method, path, ctype, body string) string {
		req, _ := http.NewRequest(method, tok.InstanceURL+"/services/data/v66.0"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Content-Type", ctype)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	var job struct{ ID string }
	_ = json.Unmarshal([]byte(call("POST", "/jobs/ingest", "application/json",
		`{"object":"Product2","operation":"upsert","externalIdFieldName":"External_Id__c"}`)), &job)
	call("PUT", "/jobs/ingest/"+job.ID+"/batches", "text/csv", "External_Id__c,Name,Price__c\nP-1,Widget,912260031\nP-2,,1\n")
	call("PATCH", "/jobs/ingest/"+job.ID, "application/json", `{"state":"UploadComplete"}`)
	fmt.Print(call("GET", "/jobs/ingest/"+job.ID+"/successfulResults/", "", ""))
	fmt.Print(call("GET", "/jobs/ingest/"+job.ID+"/failedResults/", "", ""))
	// Output:
	// "sf__Id","sf__Created",External_Id__c,Name,Price__c
	// "01t5g0000000001AAA","true","P-1","Widget","9.12260031E8"
	// "sf__Id","sf__Error",External_Id__c,Name,Price__c
	// "","REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --","P-2","","1.0"
}
