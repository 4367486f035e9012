package salesforce_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

func TestAuthenticate(t *testing.T) {
	env := newEnv(t, nil)
	s, err := env.client.Authenticate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s.TokenType != "Bearer" {
		t.Errorf("TokenType = %q, want Bearer", s.TokenType)
	}
	if s.AccessToken() == "" {
		t.Error("no access token")
	}
	if !realOrg {
		if s.InstanceURL != env.url {
			t.Errorf("InstanceURL = %q, want the emulator's %q", s.InstanceURL, env.url)
		}
		if s.IssuedAt.IsZero() || time.Since(s.IssuedAt) > time.Minute {
			t.Errorf("IssuedAt = %v, want about now", s.IssuedAt)
		}
		if !strings.HasPrefix(s.OrgID, "00D") || !strings.HasPrefix(s.UserID, "005") {
			t.Errorf("OrgID, UserID = %q, %q; want 00D..., 005... from the identity URL", s.OrgID, s.UserID)
		}
	}
	if err := env.client.CheckAPIVersion(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestMissingConnectionFields(t *testing.T) {
	_, err := salesforce.New(salesforce.Config{Connection: "salesforce_api"})
	var ce *salesforce.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConfigError", err)
	}
	for _, want := range []string{`connection "salesforce_api"`, "host", "login", "client id", "password", "client secret"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if len(ce.Problems) != 3 {
		t.Errorf("problems = %q, want all three missing fields reported at once", ce.Problems)
	}

	_, err = salesforce.New(salesforce.Config{LoginURL: "https://acme.my.salesforce.com", ClientID: "id", ClientSecret: "s3cr3t", APIVersion: "66"})
	if err == nil || !strings.Contains(err.Error(), `API version "66"`) {
		t.Errorf("bad version: err = %v", err)
	}
	_, err = salesforce.New(salesforce.Config{LoginURL: "ftp://x", ClientID: "id", ClientSecret: "s3cr3t"})
	if err == nil || !strings.Contains(err.Error(), `host "ftp://x"`) {
		t.Errorf("bad host: err = %v", err)
	}
	// A host without scheme is the usual Airflow form.
	c, err := salesforce.New(salesforce.Config{LoginURL: "acme.my.salesforce.com", ClientID: "id", ClientSecret: "s3cr3t", APIVersion: "61.0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Config(); got.LoginURL != "https://acme.my.salesforce.com" || got.APIVersion != "v61.0" || got.ClientSecret != "" {
		t.Errorf("settled config = %+v", got)
	}
}

func TestBadCredentials(t *testing.T) {
	env := newEnv(t, nil)
	env.needEmu(t)
	const secret = "the-wrong-secret-4711"
	cases := []struct {
		name       string
		id, secret string
		fault      sfemu.OAuthFault
		want       []string
	}{
		{"unknown client id", "no-such-app", sfemu.TestClientSecret, sfemu.OAuthNone,
			[]string{"invalid_client_id", "client id", "Consumer Key", `connection "salesforce_api"`}},
		{"wrong secret", sfemu.TestClientID, secret, sfemu.OAuthNone,
			[]string{"invalid_client", "client secret", "Consumer Secret"}},
		{"no run-as user", sfemu.TestClientID, sfemu.TestClientSecret, sfemu.OAuthNoRunAsUser,
			[]string{"no client credentials user enabled", "Run As"}},
		{"flow disabled", sfemu.TestClientID, sfemu.TestClientSecret, sfemu.OAuthFlowDisabled,
			[]string{"Enable Client Credentials Flow"}},
		{"wrong domain", sfemu.TestClientID, sfemu.TestClientSecret, sfemu.OAuthWrongDomain,
			[]string{"not supported on this domain", "My Domain", "login.salesforce.com"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env.emu.SetOAuthFault(tc.fault)
			t.Cleanup(func() { env.emu.SetOAuthFault(sfemu.OAuthNone) })
			c := env.newClient(t, salesforce.Config{LoginURL: env.url, ClientID: tc.id, ClientSecret: tc.secret}, nil)
			_, err := c.Authenticate(t.Context())
			var ae *salesforce.AuthError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *AuthError", err)
			}
			if ae.Status != 400 {
				t.Errorf("Status = %d, want 400 (salesforce-api.md 1.3)", ae.Status)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error contains the secret: %q", err)
			}
			// A data call fails the same way, before touching any job.
			_, err = c.CreateJob(t.Context(), upsertProducts)
			if !errors.As(err, &ae) {
				t.Errorf("CreateJob err = %v, want *AuthError", err)
			}
		})
	}
	if strings.Contains(env.logs.String(), secret) {
		t.Error("a log record contains the secret")
	}
}

func TestUnreachableLoginHost(t *testing.T) {
	srv := httptest.NewServer(sfemu.New())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c, err := salesforce.New(salesforce.Config{LoginURL: url, ClientID: "id", ClientSecret: "s3cr3t-unreachable",
		MaxAttempts: 2, RetryBaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Authenticate(t.Context())
	if err == nil || !strings.Contains(err.Error(), "login at "+url) || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("err = %v, want a login error naming the host and not the secret", err)
	}
}

// TestLoginErrorKeepsCause: a login that got no usable answer wraps the
// network error, so a caller can tell a host name that does not exist or
// an https URL pointed at a plain-HTTP server with errors.As / errors.Is,
// while the message still names the login URL and never the secret.
func TestLoginErrorKeepsCause(t *testing.T) {
	const secret = "s3cr3t-cause"
	login := func(t *testing.T, loginURL string) error {
		t.Helper()
		c, err := salesforce.New(salesforce.Config{LoginURL: loginURL, ClientID: "id", ClientSecret: secret,
			MaxAttempts: 1, RetryBaseDelay: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Authenticate(t.Context())
		if err == nil || !strings.Contains(err.Error(), "login at "+loginURL) || strings.Contains(err.Error(), secret) {
			t.Fatalf("err = %v, want a login error naming the URL and not the secret", err)
		}
		return err
	}
	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(sfemu.New())
		srv.Close() // nothing listens there any more
		err := login(t, srv.URL)
		var opErr *net.OpError
		if !errors.As(err, &opErr) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("err = %v (%T chain), want a *net.OpError wrapping ECONNREFUSED", err, errors.Unwrap(err))
		}
	})
	t.Run("https to a plain-HTTP server", func(t *testing.T) {
		srv := httptest.NewServer(sfemu.New())
		defer srv.Close()
		err := login(t, "https://"+strings.TrimPrefix(srv.URL, "http://"))
		if !errors.Is(err, http.ErrSchemeMismatch) {
			t.Errorf("err = %v, want it to wrap http.ErrSchemeMismatch", err)
		}
	})
	t.Run("host name that does not exist", func(t *testing.T) {
		const host = "acme.sfmigrate-test.invalid" // RFC 6761: never resolves
		needNXDOMAIN(t, host)
		err := login(t, "https://"+host)
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound || dnsErr.Name != host {
			t.Errorf("err = %v, want a *net.DNSError (not found) for %s", err, host)
		}
	})
}

// TestLoginPermanentFailuresNotRetried: a login URL whose host name does
// not exist, or an https URL served by a plain-HTTP server, fails on the
// first attempt (it used to cost the whole backoff budget, ~11 s), and so
// does a data call that has to log in first. A refused connection is still
// retried: a server that is restarting refuses for a moment.
func TestLoginPermanentFailuresNotRetried(t *testing.T) {
	plain := httptest.NewServer(sfemu.New())
	defer plain.Close()
	closed := httptest.NewServer(sfemu.New())
	closed.Close()
	const host = "acme.sfmigrate-test.invalid"
	cases := []struct {
		name, url string
		retried   bool
		secret    string
	}{
		{"host name does not exist", "https://" + host, false, "s3cr3t"},
		// A secret that happens to occur in the error text is redacted
		// from the message; the classification must not suffer.
		{"host name does not exist, short secret", "https://" + host, false, "s"},
		{"https to a plain-HTTP server", "https://" + strings.TrimPrefix(plain.URL, "http://"), false, "s3cr3t"},
		{"connection refused", closed.URL, true, "s3cr3t"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.url, host) {
				needNXDOMAIN(t, host)
			}
			env := &testEnv{baseHTTP: &http.Client{}}
			c := env.newClient(t, salesforce.Config{LoginURL: tc.url, ClientID: "id", ClientSecret: tc.secret}, func(c *salesforce.Config) {
				c.MaxAttempts = 3
				c.RetryBaseDelay = 100 * time.Millisecond
			})
			_, err := c.Authenticate(t.Context())
			if err == nil {
				t.Fatal("login succeeded")
			}
			if strings.Contains(tc.url, host) {
				var dnsErr *net.DNSError
				if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
					t.Errorf("err = %v, want it to wrap the *net.DNSError", err)
				}
			}
			tries := env.requests.count("POST", "/services/oauth2/token")
			if !tc.retried {
				if tries != 1 || strings.Contains(env.logs.String(), "retrying") {
					t.Errorf("%d token requests (log: %s), want 1 and no backoff: %v", tries, env.logs.String(), err)
				}
				// A data call logs in first and fails the same way, once.
				_, err := c.CreateJob(t.Context(), upsertProducts)
				if err == nil || env.requests.count("POST", "/services/oauth2/token") != 2 {
					t.Errorf("CreateJob: %v after %d token requests, want a failure after one more", err, env.requests.count("POST", "/services/oauth2/token")-1)
				}
				return
			}
			if tries != 3 || !strings.Contains(env.logs.String(), "login failed; retrying") {
				t.Errorf("%d token requests (log: %s), want 3: a refusal is retried", tries, env.logs.String())
			}
		})
	}
}

// needNXDOMAIN skips a test when this machine's resolver does not answer
// "no such host" for host (no DNS at all, or a resolver that times out).
func needNXDOMAIN(t *testing.T, host string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var dnsErr *net.DNSError
	if _, err := net.DefaultResolver.LookupHost(ctx, host); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Skipf("this machine's resolver does not answer 'no such host' for %s (%v)", host, err)
	}
}

// TestSecretsNeverPrinted formats Config, Client and Session every way a
// caller might and checks neither the secret nor the token shows.
func TestSecretsNeverPrinted(t *testing.T) {
	env := newEnv(t, nil)
	sess, err := env.client.Authenticate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	token := sess.AccessToken()
	cfg := salesforce.Config{LoginURL: "https://user:pw-in-url@acme.my.salesforce.com", ClientID: "id", ClientSecret: "s3cr3t-value"}
	secrets := []string{"s3cr3t-value", "pw-in-url", token, sfemu.TestClientSecret}

	var out strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%T %v"} {
		for _, v := range []any{cfg, &cfg, env.client, sess, &sess, []any{cfg, sess}, struct{ C salesforce.Config }{cfg}} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
	}
	js, err := json.Marshal(struct {
		C salesforce.Config
		S salesforce.Session
	}{cfg, sess})
	if err != nil {
		t.Fatal(err)
	}
	out.Write(js)
	var logBuf syncBuffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logBuf, nil), slog.NewJSONHandler(&logBuf, nil)} {
		slog.New(h).Info("x", "cfg", cfg, "client", env.client, "session", sess)
	}
	out.WriteString(logBuf.String())
	out.WriteString(env.logs.String()) // the client's own log so far
	for _, s := range secrets {
		if strings.Contains(out.String(), s) {
			t.Errorf("secret %q printed in:\n%s", s, out.String())
		}
	}
	if !strings.Contains(out.String(), "[redacted]") {
		t.Error("expected [redacted] markers")
	}
}

// TestTokenExpiryRenewsOnce: a call that meets an expired token gets a new
// one and is repeated once (salesforce-api.md 1.4).
func TestTokenExpiryRenewsOnce(t *testing.T) {
	env := newEnv(t, nil)
	env.needEmu(t)
	first, err := env.client.Authenticate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	env.emu.ExpireTokens()
	env.requests.reset()
	if _, err := env.client.Describe(t.Context(), "Product2"); err != nil {
		t.Fatal(err)
	}
	if n := env.requests.count("POST", "/oauth2/token"); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	if n := env.requests.count("GET", "/describe"); n != 2 {
		t.Errorf("describe requests = %d, want 2 (401, then the repeat)", n)
	}
	// The upload too is repeated after a 401 (nothing was stored), with
	// the whole file sent again.
	path := writeProducts(t, t.TempDir(), "p.csv", "TX", 15)
	job, err := env.client.CreateJob(t.Context(), upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	env.emu.ExpireTokens()
	env.requests.reset()
	if err := env.client.UploadJobData(t.Context(), job.ID, path); err != nil {
		t.Fatal(err)
	}
	if n := env.requests.count("PUT", "/batches"); n != 2 {
		t.Errorf("PUTs = %d, want 2", n)
	}
	if _, err := env.client.CloseJob(t.Context(), job.ID); err != nil {
		t.Fatal(err)
	}
	if final, err := env.client.WaitJob(t.Context(), job.ID); err != nil || final.NumberRecordsProcessed != 15 {
		t.Errorf("job after a renewed upload: %+v, %v", final, err)
	}
	second, err := env.client.Authenticate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if first.AccessToken() == second.AccessToken() {
		t.Error("token not renewed")
	}
}

// TestSecondUnauthorizedIsFinal: when even fresh tokens are refused, the
// call fails after MaxAttempts renewals (the first one free) instead of
// looping.
func TestSecondUnauthorizedIsFinal(t *testing.T) {
	env := newEnv(t, nil, sfemu.WithTokenLifetime(time.Nanosecond))
	env.needEmu(t)
	env.requests.reset()
	_, err := env.client.GetJob(t.Context(), "750000000000000AAA")
	var apiErr *salesforce.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 401 || !apiErr.HasCode("INVALID_SESSION_ID") {
		t.Fatalf("err = %v, want the 401 INVALID_SESSION_ID", err)
	}
	// Default MaxAttempts 6: the first answer, then 6 attempts, each
	// after a renewal.
	if n := env.requests.count("GET", "/jobs/ingest/"); n != 7 {
		t.Errorf("GET requests = %d, want 7", n)
	}
	if n := env.requests.count("POST", "/oauth2/token"); n != 7 {
		t.Errorf("token requests = %d, want 7 (first login, 6 renewals)", n)
	}
}
