//go:build !sforg

package salesforce_test

import (
	"net/http/httptest"
	"testing"

	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// realOrg is false: the suite runs against the emulator over real HTTP.
// Build with -tags sforg to run it against an org (env_org_test.go).
const realOrg = false

// newEnv starts an emulated org (sfemu over httptest) and a client for it.
// cfg, when not nil, adjusts the client's Config first; the defaults here
// make polling and retries fast.
func newEnv(t testing.TB, cfg func(*salesforce.Config), opts ...sfemu.Option) *testEnv {
	t.Helper()
	emu := sfemu.New(opts...)
	srv := httptest.NewServer(emu)
	t.Cleanup(func() {
		srv.Close()
		emu.Close()
	})
	env := &testEnv{emu: emu, url: srv.URL, baseHTTP: srv.Client()}
	env.client = env.newClient(t, salesforce.Config{
		LoginURL:     srv.URL,
		ClientID:     sfemu.TestClientID,
		ClientSecret: sfemu.TestClientSecret,
	}, cfg)
	return env
}
