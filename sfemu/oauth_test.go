package sfemu_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

func TestTokenSuccess(t *testing.T) {
	c := newTC(t)
	for _, tt := range []struct {
		name  string
		basic bool
	}{{"form", false}, {"basic", true}} {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}}
			if !tt.basic {
				form.Set("client_id", sfemu.TestClientID)
				form.Set("client_secret", sfemu.TestClientSecret)
			}
			req := c.srv.URL + "/services/oauth2/token"
			r := c.do("POST", "/services/oauth2/token", "application/x-www-form-urlencoded", form.Encode(), false)
			if tt.basic {
				r = c.doBasic(req, form.Encode())
			}
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			// Field order as in salesforce-api.md 1.2.
			wantOrder := []string{"access_token", "signature", "scope", "instance_url", "id", "token_type", "issued_at"}
			pos := -1
			for _, k := range wantOrder {
				i := strings.Index(r.body, `"`+k+`"`)
				if i < pos {
					t.Errorf("field %s out of order in %s", k, r.body)
				}
				pos = i
			}
			var tok map[string]string
			r.json(&tok)
			if !regexp.MustCompile(`^00D[0-9A-Za-z]{12}![0-9A-Za-z._]+$`).MatchString(tok["access_token"]) {
				t.Errorf("access_token %q not shaped like <orgId>!<opaque>", tok["access_token"])
			}
			if tok["instance_url"] != c.srv.URL {
				t.Errorf("instance_url = %q, want %q", tok["instance_url"], c.srv.URL)
			}
			if !regexp.MustCompile(`^` + regexp.QuoteMeta(c.srv.URL) + `/id/00D\w{15}/005\w{15}$`).MatchString(tok["id"]) {
				t.Errorf("id = %q", tok["id"])
			}
			if tok["token_type"] != "Bearer" || tok["scope"] != "api" {
				t.Errorf("token_type/scope = %q/%q", tok["token_type"], tok["scope"])
			}
			if !regexp.MustCompile(`^\d{13}$`).MatchString(tok["issued_at"]) {
				t.Errorf("issued_at = %q, want 13-digit millis", tok["issued_at"])
			}
			mac := hmac.New(sha256.New, []byte(sfemu.TestClientSecret))
			mac.Write([]byte(tok["id"] + tok["issued_at"]))
			if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); tok["signature"] != want {
				t.Errorf("signature = %q, want %q", tok["signature"], want)
			}
			if _, ok := tok["refresh_token"]; ok {
				t.Error("client credentials must not return refresh_token")
			}
		})
	}
}

func (c *tc) doBasic(u, body string) resp {
	c.t.Helper()
	req, _ := newRequest(c.t, "POST", u, body)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(sfemu.TestClientID, sfemu.TestClientSecret)
	return c.send(req)
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name     string
		form     url.Values
		fault    sfemu.OAuthFault
		wantCode string
		wantDesc string
	}{
		{"unknown client", url.Values{"grant_type": {"client_credentials"}, "client_id": {"nope"}, "client_secret": {"x"}}, sfemu.OAuthNone, "invalid_client_id", "client identifier invalid"},
		{"wrong secret", url.Values{"grant_type": {"client_credentials"}, "client_id": {sfemu.TestClientID}, "client_secret": {"bad"}}, sfemu.OAuthNone, "invalid_client", "invalid client credentials"},
		{"wrong grant", url.Values{"grant_type": {"password"}, "client_id": {sfemu.TestClientID}, "client_secret": {sfemu.TestClientSecret}}, sfemu.OAuthNone, "unsupported_grant_type", "grant type not supported"},
		{"no grant", url.Values{"client_id": {sfemu.TestClientID}}, sfemu.OAuthNone, "unsupported_grant_type", "grant type not supported"},
		{"no run-as user", url.Values{"grant_type": {"client_credentials"}, "client_id": {sfemu.TestClientID}, "client_secret": {sfemu.TestClientSecret}}, sfemu.OAuthNoRunAsUser, "invalid_grant", "no client credentials user enabled"},
		{"flow disabled", url.Values{"grant_type": {"client_credentials"}, "client_id": {sfemu.TestClientID}, "client_secret": {sfemu.TestClientSecret}}, sfemu.OAuthFlowDisabled, "invalid_grant", "client credentials flow not enabled"},
		{"wrong domain", url.Values{"grant_type": {"client_credentials"}, "client_id": {sfemu.TestClientID}, "client_secret": {sfemu.TestClientSecret}}, sfemu.OAuthWrongDomain, "invalid_grant", "request not supported on this domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTC(t)
			c.emu.SetOAuthFault(tt.fault)
			r := c.do("POST", "/services/oauth2/token", "application/x-www-form-urlencoded", tt.form.Encode(), false)
			if r.status != 400 {
				t.Errorf("status = %d, want 400", r.status)
			}
			var body map[string]string
			if err := json.Unmarshal([]byte(r.body), &body); err != nil {
				t.Fatalf("body %q is not a JSON object: %v", r.body, err)
			}
			if body["error"] != tt.wantCode || body["error_description"] != tt.wantDesc {
				t.Errorf("body = %v, want error=%q error_description=%q", body, tt.wantCode, tt.wantDesc)
			}
			if strings.Contains(r.body, sfemu.TestClientSecret) {
				t.Error("the secret appears in the error body")
			}
		})
	}
}

func TestWithClient(t *testing.T) {
	emu := sfemu.New(sfemu.WithClient("my-id", "my-secret"))
	c := &tc{t: t, emu: emu}
	c.srv = newServer(t, emu)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"my-id"}, "client_secret": {"my-secret"}}
	if r := c.do("POST", "/services/oauth2/token", "application/x-www-form-urlencoded", form.Encode(), false); r.status != 200 {
		t.Fatalf("registered client refused: %d %s", r.status, r.body)
	}
	form.Set("client_id", sfemu.TestClientID)
	form.Set("client_secret", sfemu.TestClientSecret)
	if r := c.do("POST", "/services/oauth2/token", "application/x-www-form-urlencoded", form.Encode(), false); r.status != 400 {
		t.Fatalf("the default test client still works after WithClient: %d", r.status)
	}
}

func TestSessionExpiry(t *testing.T) {
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	c := newTC(t, sfemu.WithClock(clock), sfemu.WithTokenLifetime(time.Hour))
	if r := c.get("/jobs/ingest"); r.status != 200 {
		t.Fatalf("fresh token: %d %s", r.status, r.body)
	}
	now = now.Add(time.Hour)
	wantExpired(t, c, c.get("/jobs/ingest"))

	c.login()
	if r := c.get("/jobs/ingest"); r.status != 200 {
		t.Fatalf("new token after expiry: %d %s", r.status, r.body)
	}
	c.emu.ExpireTokens()
	wantExpired(t, c, c.get("/sobjects/Account/describe"))

	c.token = "garbage"
	wantExpired(t, c, c.get("/jobs/ingest"))
	c.token = ""
	wantExpired(t, c, c.do("GET", c.v+"/jobs/ingest", "", "", false))
}

func wantExpired(t *testing.T, c *tc, r resp) {
	t.Helper()
	if r.status != 401 {
		t.Fatalf("status = %d, want 401 (%s)", r.status, r.body)
	}
	// Exactly the body of salesforce-api.md 1.4.
	if r.body != `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]` {
		t.Errorf("body = %s", r.body)
	}
	// Every data API response carries Sforce-Limit-Info (6.4); a refused
	// call shows the count without adding to it.
	if got, want := r.header.Get("Sforce-Limit-Info"), fmt.Sprintf("api-usage=%d/100000", c.emu.APIUsage()); got != want {
		t.Errorf("Sforce-Limit-Info = %q, want %q (a 401 is not counted)", got, want)
	}
}
