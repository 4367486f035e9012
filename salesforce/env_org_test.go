//go:build sforg

package salesforce_test

import (
	"net/http"
	"os"
	"testing"

	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// realOrg is true: built with -tags sforg, the contract suite runs against
// the org named by SF_LOGIN_URL, SF_CLIENT_ID and SF_CLIENT_SECRET (its My
// Domain URL and a connected app with the client-credentials flow and a
// Run As user). The org needs the objects of sfemu.DefaultObjects that the
// tests use (Product2 with External_Id__c, Migration_Status__c with
// External_Ref__c and Status__c). Tests that need the emulator's fault
// hooks skip. Records created are left in the org; use a sandbox.
//
//	SF_LOGIN_URL=https://acme--dev.sandbox.my.salesforce.com SF_CLIENT_ID=... SF_CLIENT_SECRET=... \
//	  go test -tags sforg -run 'Test' ./salesforce/
const realOrg = true

func newEnv(t testing.TB, cfg func(*salesforce.Config), opts ...sfemu.Option) *testEnv {
	t.Helper()
	login, id, secret := os.Getenv("SF_LOGIN_URL"), os.Getenv("SF_CLIENT_ID"), os.Getenv("SF_CLIENT_SECRET")
	if login == "" || id == "" || secret == "" {
		t.Skip("set SF_LOGIN_URL, SF_CLIENT_ID and SF_CLIENT_SECRET to run the contract suite against a real org")
	}
	env := &testEnv{url: login, baseHTTP: &http.Client{}}
	env.client = env.newClient(t, salesforce.Config{LoginURL: login, ClientID: id, ClientSecret: secret}, func(c *salesforce.Config) {
		c.PollInterval = 0 // real defaults
		c.PollMaxInterval = 0
		c.RetryBaseDelay = 0
		c.RetryMaxDelay = 0
		if cfg != nil {
			cfg(c)
		}
	})
	return env
}
