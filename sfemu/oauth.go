package sfemu

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// OAuthFault makes the token endpoint fail the way a misconfigured org
// does (salesforce-api.md 1.3).
type OAuthFault int

const (
	// OAuthNone: tokens are issued normally.
	OAuthNone OAuthFault = iota
	// OAuthNoRunAsUser: the flow is enabled but no Run As user is set.
	OAuthNoRunAsUser
	// OAuthFlowDisabled: the client credentials flow is not enabled on the app.
	OAuthFlowDisabled
	// OAuthWrongDomain: the token was requested from login/test.salesforce.com
	// instead of the org's My Domain.
	OAuthWrongDomain
)

// authState holds the registered client and the issued tokens.
type authState struct {
	mu       sync.Mutex
	clientID string // guarded by mu
	secret   string // guarded by mu
	lifetime time.Duration
	tokens   map[string]time.Time // issued token -> issue time; guarded by mu
	fault    OAuthFault           // guarded by mu
}

func (a *authState) init(o options) {
	a.clientID, a.secret, a.lifetime = o.clientID, o.clientSecret, o.tokenLifetime
	a.tokens = map[string]time.Time{}
}

// check validates the bearer token of a data call. Missing, unknown and
// expired tokens all answer 401 INVALID_SESSION_ID (salesforce-api.md 1.4).
func (a *authState) check(r *http.Request, now time.Time) *apiError {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	// Salesforce also accepts the legacy "OAuth <token>" scheme [D].
	if !ok || (!strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "OAuth")) {
		return errSession()
	}
	if !a.valid(strings.TrimSpace(tok), now) {
		return errSession()
	}
	return nil
}

// valid says whether tok was issued and has not expired at now.
func (a *authState) valid(tok string, now time.Time) bool {
	a.mu.Lock()
	issued, known := a.tokens[tok]
	a.mu.Unlock()
	return known && (a.lifetime <= 0 || now.Sub(issued) < a.lifetime)
}

// client returns the token endpoint's fault and the registered client.
func (a *authState) client() (fault OAuthFault, id, secret string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fault, a.clientID, a.secret
}

// issue records a token issued at now.
func (a *authState) issue(tok string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens[tok] = now
}

// ExpireTokens invalidates every token issued so far: data calls with them
// answer 401 INVALID_SESSION_ID, and clients must request a new one.
func (s *Server) ExpireTokens() { s.auth.expireAll() }

func (a *authState) expireAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.tokens)
}

// SetOAuthFault makes the token endpoint fail as an org set up wrongly
// would; OAuthNone restores normal behaviour.
func (s *Server) SetOAuthFault(f OAuthFault) { s.auth.setFault(f) }

func (a *authState) setFault(f OAuthFault) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fault = f
}

// tokenResponse is the success body of salesforce-api.md 1.2, fields in
// the real order.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	Signature   string `json:"signature"`
	Scope       string `json:"scope"`
	InstanceURL string `json:"instance_url"`
	ID          string `json:"id"`
	TokenType   string `json:"token_type"`
	IssuedAt    string `json:"issued_at"`
}

func oauthErr(code, desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, Code: code, Description: desc}
}

// handleToken serves POST /services/oauth2/token for the client
// credentials grant (salesforce-api.md 1.1-1.3). The credentials come from
// the form or from HTTP Basic.
func (s *Server) handleToken(rq *request) (*reply, error) {
	r := rq.r
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, oauthErr("invalid_request", "could not read the request body")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "application/x-www-form-urlencoded" {
			// [I]: Salesforce reads only form bodies here; anything else
			// arrives without grant_type.
			body = nil
		}
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, oauthErr("invalid_request", "malformed form body")
	}
	// Query-string parameters are accepted too, as Salesforce does for this endpoint [O].
	for k, v := range r.URL.Query() {
		if _, ok := form[k]; !ok {
			form[k] = v
		}
	}
	grant := form.Get("grant_type")
	switch grant {
	case "":
		return nil, oauthErr("unsupported_grant_type", "grant type not supported")
	case "client_credentials":
	default:
		return nil, oauthErr("unsupported_grant_type", "grant type not supported")
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok && id == "" {
		id, secret = bid, bsecret
	}
	fault, wantID, wantSecret := s.auth.client()
	if fault == OAuthWrongDomain {
		return nil, oauthErr("invalid_grant", "request not supported on this domain")
	}
	if id == "" {
		return nil, oauthErr("invalid_client_id", "client identifier invalid")
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(wantID)) != 1 {
		return nil, oauthErr("invalid_client_id", "client identifier invalid")
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(wantSecret)) != 1 {
		// Status 400 is [I] (salesforce-api.md §9 item 2).
		return nil, oauthErr("invalid_client", "invalid client credentials")
	}
	switch fault {
	case OAuthFlowDisabled:
		// The error code is [I] (salesforce-api.md §9 item 1); the text is [O].
		return nil, oauthErr("invalid_grant", "client credentials flow not enabled")
	case OAuthNoRunAsUser:
		return nil, oauthErr("invalid_grant", "no client credentials user enabled")
	}
	now := s.now()
	tok := newToken()
	s.auth.issue(tok, now)
	issued := strconv.FormatInt(now.UnixMilli(), 10)
	idURL := identityURL(rq.base)
	mac := hmac.New(sha256.New, []byte(wantSecret))
	mac.Write([]byte(idURL + issued))
	return &reply{status: http.StatusOK, body: tokenResponse{
		AccessToken: tok,
		Signature:   base64.StdEncoding.EncodeToString(mac.Sum(nil)),
		Scope:       "api",
		InstanceURL: rq.base,
		ID:          idURL,
		TokenType:   "Bearer",
		IssuedAt:    issued,
	}}, nil
}

// newToken returns an opaque token shaped like Salesforce's:
// "<15-char org id>!<random>" (salesforce-api.md 1.2).
func newToken() string {
	const alphabet = base62 + "._"
	var rnd [96]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails
	b := make([]byte, 0, 15+1+2+len(rnd))
	b = append(b, id15(orgID)...)
	b = append(b, "!AQ"...)
	for _, c := range rnd {
		b = append(b, alphabet[int(c)%len(alphabet)])
	}
	return string(b)
}
