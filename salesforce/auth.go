package salesforce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Session is the result of a login: where the org's data calls go and
// what kind of token the Client holds. The access token itself is kept
// unexported; AccessToken returns it for callers that must call other
// Salesforce APIs. A Session prints (fmt, slog, JSON) without the token.
type Session struct {
	// InstanceURL is the base URL of every data call, e.g.
	// https://acme.my.salesforce.com (the token answer's instance_url).
	InstanceURL string
	// TokenType is "Bearer".
	TokenType string
	// IssuedAt is when Salesforce issued the token (zero if not reported).
	IssuedAt time.Time
	// OrgID and UserID come from the identity URL (the run-as user), when
	// the answer carried one.
	OrgID, UserID string
	// Scope is the space-separated list of granted scopes, if reported.
	Scope string

	token secret
}

// AccessToken returns the bearer token. It is a secret: never print it or
// write it to disk.
func (s Session) AccessToken() string { return s.token.reveal() }

// String describes the session without its token.
func (s Session) String() string {
	return fmt.Sprintf("salesforce.Session{InstanceURL: %q, TokenType: %q, IssuedAt: %s, OrgID: %q, UserID: %q, Scope: %q, AccessToken: %s}",
		s.InstanceURL, s.TokenType, s.IssuedAt.UTC().Format(time.RFC3339), s.OrgID, s.UserID, s.Scope, redact(s.token.reveal()))
}

// GoString is String.
func (s Session) GoString() string { return s.String() }

// Format implements fmt.Formatter: every verb prints String.
func (s Session) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, s.String()) } // nowhere to report a failed fmt write

// LogValue implements slog.LogValuer without the token.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("instance_url", s.InstanceURL),
		slog.String("token_type", s.TokenType),
		slog.Time("issued_at", s.IssuedAt),
		slog.String("org_id", s.OrgID),
		slog.String("user_id", s.UserID),
	)
}

// session is the Client's current login.
type session struct {
	Session
	instanceURL string // normalised, no trailing slash
	tokenType   string
}

// AuthError is a refusal from the token endpoint (salesforce-api.md §1.3),
// reported as a configuration problem: it names the connection, keeps
// Salesforce's error and error_description, and says what to check. It
// never contains the client secret.
type AuthError struct {
	// Status is the HTTP status of the token answer (400 for every
	// observed refusal).
	Status int
	// Code and Description are the answer's error and error_description.
	Code, Description string
	// Body is the answer's text when it was not the OAuth JSON error (cut
	// to 300 characters).
	Body string
	// LoginURL is the URL the token was requested from.
	LoginURL string
	// Connection names the connection the credentials came from.
	Connection string
	// Hint says what to check.
	Hint string
}

// Error says what failed, what Salesforce answered and what to check.
func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "salesforce: login at %s%s (connection %q) refused: %d", e.LoginURL, tokenPath, e.Connection, e.Status)
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, " (%s)", e.Description)
	}
	if e.Code == "" && e.Body != "" {
		fmt.Fprintf(&b, ": %s", e.Body)
	}
	if e.Hint != "" {
		b.WriteString(": ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// authHint maps the token endpoint's answers (salesforce-api.md §1.3) to
// what the user should check. The connection's fields are host (login
// URL), login (client id) and password (client secret).
func authHint(status int, code, desc string) string {
	d := strings.ToLower(desc)
	switch {
	case code == "invalid_client_id":
		return "the client id is not known to this org: check the connection's login is the Consumer Key of the connected app (or external client app) of the org the host belongs to"
	case code == "invalid_client" || strings.Contains(d, "invalid client credentials"):
		return "the client secret does not match the client id: check the connection's password is the app's current Consumer Secret"
	case strings.Contains(d, "not supported on this domain"):
		return "this host does not accept the client-credentials grant: set the connection's host to the org's My Domain URL (https://<mydomain>.my.salesforce.com), not login.salesforce.com or test.salesforce.com"
	case strings.Contains(d, "no client credentials user"):
		return "the app has no Run As user: in the connected app's policies, under Client Credentials Flow, set a Run As (execution) user"
	case strings.Contains(d, "client credentials flow not enabled") || strings.Contains(d, "flow not enabled") ||
		code == "unsupported_grant_type":
		return "the app does not allow the client-credentials flow: tick \"Enable Client Credentials Flow\" on the connected app and set a Run As user"
	case code == "inactive_user":
		return "the Run As user is inactive: activate it or choose another Run As user"
	case code == "inactive_org":
		return "the org is inactive or locked"
	case code == "rate_limit_exceeded":
		return "too many logins in a short time: wait and retry"
	case status == http.StatusUnauthorized:
		return "check the connection's login (client id) and password (client secret)"
	case status == http.StatusNotFound:
		return "no token endpoint at this host: check the connection's host is the org's My Domain URL"
	}
	return "check the connection's host (the org's My Domain URL), login (client id) and password (client secret)"
}

// Authenticate logs in with the OAuth 2.0 client-credentials flow
// (salesforce-api.md §1) and returns the new session; the Client keeps
// the token in memory for its data calls. Every data call logs in by
// itself when needed, so calling Authenticate is only useful to check the
// credentials early. Refusals are *AuthError.
//
// https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_client_credentials_flow.htm&type=5
func (c *Client) Authenticate(ctx context.Context) (Session, error) {
	c.mu.Lock()
	stale := c.sess
	c.mu.Unlock()
	s, err := c.renew(ctx, stale)
	if err != nil {
		return Session{}, err
	}
	return s.Session, nil
}

// session returns the current login, logging in when there is none.
func (c *Client) session(ctx context.Context) (*session, error) {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	return c.renew(ctx, nil)
}

// renew replaces the login `stale` with a new one. Parallel callers that
// saw the same stale login share one token request: whoever comes second
// finds a newer session and uses it.
func (c *Client) renew(ctx context.Context, stale *session) (*session, error) {
	select {
	case c.authSem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("salesforce: login: %w", context.Cause(ctx))
	}
	defer func() { <-c.authSem }()
	c.mu.Lock()
	cur := c.sess
	c.mu.Unlock()
	if cur != nil && cur != stale {
		return cur, nil
	}
	s, err := c.login(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	return s, nil
}

// tokenPath is the OAuth token endpoint, relative to the login URL.
const tokenPath = "/services/oauth2/token"

// login requests a token. Failures go through shouldRetry like every data
// call, as an idempotent request (a second token request only issues
// another token): §1.3's retryable answers (5xx, rate_limit_exceeded) and
// lost answers are repeated; refusals and permanent network failures (a
// host name that does not exist, https to a plain-HTTP server) are not.
func (c *Client) login(ctx context.Context) (*session, error) {
	// x/oauth2 does the form encoding and the error parsing; credentials
	// go in the form body (AuthStyleInParams), as Salesforce documents and
	// as dependencies.md notes (auto-detection would cost a failed first
	// request). Built per call so the secret lives only in c.secret.
	cc := clientcredentials.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.secret.reveal(),
		TokenURL:     c.loginURL + tokenPath,
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, c.hc)
	req := &request{method: http.MethodPost, path: tokenPath, noAuth: true, repeat: repeatIdempotent}
	for attempt := 1; ; attempt++ {
		tok, err := cc.Token(octx)
		if err == nil {
			return c.sessionFrom(tok)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("salesforce: login at %s: %w", c.loginURL, context.Cause(ctx))
		}
		err = c.loginError(err)
		retry, wait := c.shouldRetry(ctx, req, err, attempt)
		if slowDown(err) {
			c.slowDown(req, err, attempt)
		}
		if !retry {
			return nil, err
		}
		c.log.Warn("salesforce: login failed; retrying", "attempt", attempt, "wait", wait, "error", err.Error())
		if serr := sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("salesforce: login at %s: %w (last failure: %v)", c.loginURL, context.Cause(ctx), err)
		}
	}
}

// loginError turns an x/oauth2 failure into an *AuthError (the token
// endpoint answered with an error) or a *noAnswerError (no usable answer).
func (c *Client) loginError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		ae := &AuthError{
			Status:      status,
			Code:        re.ErrorCode,
			Description: re.ErrorDescription,
			LoginURL:    c.loginURL,
			Connection:  c.cfg.Connection,
			Hint:        authHint(status, re.ErrorCode, re.ErrorDescription),
		}
		if re.ErrorCode == "" {
			ae.Body = shorten(textOf(re.Body), 300)
		}
		if s := c.secret.reveal(); s != "" && strings.Contains(ae.Body, s) {
			ae.Body = strings.ReplaceAll(ae.Body, s, redacted) // a server echoing the form back must not leak it
		}
		return ae
	}
	// No answer (DNS, refused, reset, timeout) or an unreadable one. The
	// cause is wrapped, not flattened to text, so callers can tell a host
	// name that does not exist (*net.DNSError) or a scheme mismatch
	// (http.ErrSchemeMismatch) with errors.As and errors.Is.
	return &noAnswerError{method: http.MethodPost, path: tokenPath,
		call: fmt.Sprintf("login at %s%s (connection %q)", c.loginURL, tokenPath, c.cfg.Connection),
		err:  c.scrub(stripURL(err))}
}

// scrub returns err unchanged when its message does not contain the client
// secret, else err with the secret replaced in its message. The cause chain
// is kept, for errors.As and for shouldRetry's classification: it holds
// transport errors (dial, DNS, TLS), which never see the secret — that
// travels only in the token request's body — so a match can only be a
// coincidence (a short secret that happens to occur in a host name or an
// error text), not a leak. The redaction keeps such a coincidence from
// looking like one in the printed message.
func (c *Client) scrub(err error) error {
	s := c.secret.reveal()
	if s == "" || !strings.Contains(err.Error(), s) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), s, redacted), err: err}
}

// redactedError is an error whose message had the client secret replaced.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// sessionFrom validates a token answer (salesforce-api.md §1.2): it must
// carry an access token and an absolute instance_url.
func (c *Client) sessionFrom(tok *oauth2.Token) (*session, error) {
	str := func(k string) string {
		v, _ := tok.Extra(k).(string)
		return v
	}
	inst := strings.TrimRight(strings.TrimSpace(str("instance_url")), "/")
	u, err := url.Parse(inst)
	if inst == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("salesforce: login at %s (connection %q): the token answer has no usable instance_url (%q); is the host a Salesforce org?",
			c.loginURL, c.cfg.Connection, inst)
	}
	typ := tok.TokenType
	if typ == "" || strings.EqualFold(typ, "bearer") {
		typ = "Bearer"
	}
	s := &session{instanceURL: inst, tokenType: typ}
	s.InstanceURL = inst
	s.TokenType = typ
	s.Scope = str("scope")
	s.token = secret(tok.AccessToken)
	if ms, err := strconv.ParseInt(str("issued_at"), 10, 64); err == nil && ms > 0 {
		// issued_at is epoch milliseconds in every sample; some old docs
		// say seconds, so a 10-digit value is read as seconds.
		if ms < 1e11 {
			s.IssuedAt = time.Unix(ms, 0)
		} else {
			s.IssuedAt = time.UnixMilli(ms)
		}
	}
	if id := str("id"); id != "" {
		if iu, err := url.Parse(id); err == nil {
			parts := strings.Split(strings.Trim(iu.Path, "/"), "/")
			if len(parts) >= 3 && parts[len(parts)-3] == "id" {
				s.OrgID, s.UserID = parts[len(parts)-2], parts[len(parts)-1]
			}
		}
	}
	c.log.Info("salesforce: logged in", "instance_url", inst, "org_id", s.OrgID, "user_id", s.UserID)
	return s, nil
}

var (
	_ fmt.Formatter  = Session{}
	_ slog.LogValuer = Session{}
	_ error          = (*AuthError)(nil)
	_ error          = (*redactedError)(nil)
)
