package salesforce

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultAPIVersion      = "v66.0"
	DefaultConnection      = "salesforce_api"
	DefaultPollInterval    = 2 * time.Second
	DefaultPollMaxInterval = 30 * time.Second
	DefaultJobTimeout      = 12 * time.Hour
	DefaultMaxAttempts     = 6
	DefaultRetryBaseDelay  = 500 * time.Millisecond
	DefaultRetryMaxDelay   = 30 * time.Second
	// DefaultMaxUploadBytes keeps a job's raw CSV under the 150 MB limit
	// Salesforce applies after its base64 conversion (salesforce-api.md §2.4).
	DefaultMaxUploadBytes = 100_000_000
)

// Config holds the settings of a Client. The zero value of every field
// except LoginURL, ClientID and ClientSecret means "use the default".
//
// Config redacts ClientSecret wherever it is printed (fmt verbs, slog,
// encoding/json), so it can be logged safely.
type Config struct {
	// LoginURL is the org's My Domain URL, e.g.
	// https://acme.my.salesforce.com (the connection's host). A missing
	// scheme means https. login.salesforce.com and test.salesforce.com do
	// not accept the client-credentials grant (salesforce-api.md §1.1).
	LoginURL string
	// ClientID is the connected app's consumer key (the connection's login).
	ClientID string
	// ClientSecret is the consumer secret (the connection's password).
	ClientSecret string
	// Connection names where the three values above came from, for error
	// messages (default "salesforce_api").
	Connection string
	// APIVersion is the REST API version, "v66.0" by default. A version
	// without the leading "v" is accepted.
	APIVersion string
	// PollInterval is the wait before WaitJob's first job-state poll and
	// between the first two (default 2s); it doubles each poll up to
	// PollMaxInterval (default 30s).
	PollInterval    time.Duration
	PollMaxInterval time.Duration
	// JobTimeout bounds how long WaitJob follows one job (default 12h).
	JobTimeout time.Duration
	// MaxAttempts is how many times one call is tried when it fails in a
	// retryable way (default 6, so 5 retries).
	MaxAttempts int
	// RetryBaseDelay and RetryMaxDelay shape the backoff between attempts:
	// base·2ⁿ with jitter, capped (defaults 500ms and 30s).
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// MaxUploadBytes refuses, before sending, a CSV file larger than this
	// (default 100,000,000 bytes, salesforce-api.md §2.4). Negative: no check.
	MaxUploadBytes int64
	// Tracker says where the status tracker records live.
	Tracker TrackerConfig
}

const redacted = "[redacted]"

func redact(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// String describes the configuration with the client secret redacted.
func (c Config) String() string {
	return fmt.Sprintf("salesforce.Config{LoginURL: %q, ClientID: %q, ClientSecret: %q, Connection: %q, APIVersion: %q}",
		redactURL(c.LoginURL), c.ClientID, redact(c.ClientSecret), c.Connection, c.APIVersion)
}

// GoString is String: %#v must not print the secret either.
func (c Config) GoString() string { return c.String() }

// Format implements fmt.Formatter so that every verb (%v, %+v, %#v, %s,
// %d, %x, ...) prints the redacted form.
func (c Config) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, c.String()) } // a failed write to a fmt.State has no one to report to

// LogValue implements slog.LogValuer with the secret redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("login_url", redactURL(c.LoginURL)),
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", redact(c.ClientSecret)),
		slog.String("connection", c.Connection),
		slog.String("api_version", c.APIVersion),
	)
}

// MarshalJSON writes the configuration with the secret redacted, so a
// Config can go into a manifest or a log record as JSON.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config // no methods: no recursion
	p := plain(c)
	p.ClientSecret = redact(p.ClientSecret)
	p.LoginURL = redactURL(p.LoginURL)
	return json.Marshal(p)
}

// redactURL hides a password embedded in a URL (https://u:p@host).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// Option changes how New builds a Client.
type Option func(*Client) error

// WithHTTPClient makes the Client send every request, the token request
// included, through hc (e.g. an httptest server's client, or one with a
// proxy). hc's Timeout, if any, applies to each request, uploads and result
// downloads included, so keep it large or zero.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("salesforce: WithHTTPClient(nil)")
		}
		c.hc = hc
		return nil
	}
}

// WithLogger sends the Client's log records (retries, token renewals,
// polling problems) to l. The default discards them. No record carries a
// token or secret.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l == nil {
			return errors.New("salesforce: WithLogger(nil)")
		}
		c.log = l
		return nil
	}
}

// Client talks to one Salesforce org: OAuth client-credentials login,
// Bulk API 2.0 ingest, sObject describe and the status tracker. It is safe
// for concurrent use; create one per org and share it.
type Client struct {
	cfg      Config // ClientSecret is cleared; the secret lives in secret
	secret   secret
	loginURL string // normalised, without trailing slash
	version  string // "v66.0"
	hc       *http.Client
	log      *slog.Logger

	authSem chan struct{} // one token request at a time
	pace    pacer         // holds every call back after a 429 or concurrency-limit answer

	mu           sync.Mutex
	sess         *session // guarded by mu; nil until the first login
	usage        Usage    // guarded by mu
	haveUsage    bool     // guarded by mu
	warnedUsage  bool     // guarded by mu
	trackerReady bool     // guarded by mu; tracker object/fields checked by describe
	trackerMeta  *SObjectDescribe
	windows      map[*Window]bool // guarded by mu: the windows of the loads running, told of strain
}

var versionRE = regexp.MustCompile(`^v?(\d{2,3})\.(\d)$`)

// New checks cfg and returns a Client. It sends no request: missing or
// malformed connection fields fail here, all reported at once in a
// *ConfigError naming the connection and each field.
func New(cfg Config, opts ...Option) (*Client, error) {
	if cfg.Connection == "" {
		cfg.Connection = DefaultConnection
	}
	var problems []string
	loginURL, err := normaliseLoginURL(cfg.LoginURL)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if strings.TrimSpace(cfg.ClientID) == "" {
		problems = append(problems, "login (the client id: the connected app's Consumer Key) is empty")
	}
	if cfg.ClientSecret == "" {
		problems = append(problems, "password (the client secret: the connected app's Consumer Secret) is empty")
	}
	if cfg.APIVersion == "" {
		cfg.APIVersion = DefaultAPIVersion
	}
	m := versionRE.FindStringSubmatch(cfg.APIVersion)
	if m == nil {
		problems = append(problems, fmt.Sprintf("API version %q is not of the form v66.0", cfg.APIVersion))
	} else {
		cfg.APIVersion = "v" + m[1] + "." + m[2]
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"PollInterval", cfg.PollInterval}, {"PollMaxInterval", cfg.PollMaxInterval}, {"JobTimeout", cfg.JobTimeout},
		{"RetryBaseDelay", cfg.RetryBaseDelay}, {"RetryMaxDelay", cfg.RetryMaxDelay}} {
		if d.v < 0 {
			problems = append(problems, fmt.Sprintf("%s is negative (%s)", d.name, d.v))
		}
	}
	if cfg.MaxAttempts < 0 {
		problems = append(problems, fmt.Sprintf("MaxAttempts is negative (%d)", cfg.MaxAttempts))
	}
	if len(problems) > 0 {
		return nil, &ConfigError{Connection: cfg.Connection, Problems: problems}
	}
	setDefaults(&cfg)
	if err := cfg.Tracker.Validate(); err != nil {
		return nil, err
	}

	c := &Client{
		secret:   secret(cfg.ClientSecret),
		loginURL: loginURL,
		version:  cfg.APIVersion,
		hc:       defaultHTTPClient(),
		log:      slog.New(slog.DiscardHandler),
		authSem:  make(chan struct{}, 1),
	}
	cfg.ClientSecret = ""
	cfg.LoginURL = loginURL
	c.cfg = cfg
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func setDefaults(cfg *Config) {
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.PollMaxInterval == 0 {
		cfg.PollMaxInterval = DefaultPollMaxInterval
	}
	if cfg.PollMaxInterval < cfg.PollInterval {
		cfg.PollMaxInterval = cfg.PollInterval
	}
	if cfg.JobTimeout == 0 {
		cfg.JobTimeout = DefaultJobTimeout
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.RetryBaseDelay == 0 {
		cfg.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if cfg.RetryMaxDelay == 0 {
		cfg.RetryMaxDelay = DefaultRetryMaxDelay
	}
	if cfg.RetryMaxDelay < cfg.RetryBaseDelay {
		cfg.RetryMaxDelay = cfg.RetryBaseDelay
	}
	if cfg.MaxUploadBytes == 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	cfg.Tracker = cfg.Tracker.WithDefaults()
}

// normaliseLoginURL checks the connection host and returns it as
// scheme://host[:port] without a trailing slash.
func normaliseLoginURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errors.New("host (the login URL: the org's My Domain, e.g. https://acme.my.salesforce.com) is empty")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("host %q is not a URL like https://acme.my.salesforce.com", redactURL(raw))
	}
	if u.User != nil {
		return "", fmt.Errorf("host %q carries user info; give client id and secret as the connection's login and password", u.Redacted())
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.Path, "/"), nil
}

// defaultHTTPClient has connection-level timeouts but no overall one: an
// upload or a result download of 100 MB may take long. A REST call may run
// up to 10 minutes (salesforce-api.md §0), hence the header timeout.
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 11 * time.Minute
	t.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: t}
}

// String describes the client without its secret or token.
func (c *Client) String() string {
	if c == nil {
		return "salesforce.Client(nil)"
	}
	return fmt.Sprintf("salesforce.Client{LoginURL: %q, ClientID: %q, APIVersion: %q, Connection: %q}",
		c.loginURL, c.cfg.ClientID, c.version, c.cfg.Connection)
}

// GoString is String.
func (c *Client) GoString() string { return c.String() }

// Format implements fmt.Formatter: every verb prints String.
func (c *Client) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, c.String()) } // nowhere to report a failed fmt write

// LogValue implements slog.LogValuer without secret or token.
func (c *Client) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("login_url", c.loginURL),
		slog.String("client_id", c.cfg.ClientID),
		slog.String("api_version", c.version),
	)
}

// Config returns the settled configuration (defaults applied), with the
// client secret removed.
func (c *Client) Config() Config { return c.cfg }

// secret is a string that never prints.
type secret string

func (secret) String() string               { return redacted }
func (secret) GoString() string             { return redacted }
func (secret) Format(f fmt.State, _ rune)   { _, _ = io.WriteString(f, redacted) } // nowhere to report a failed fmt write
func (secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s secret) reveal() string             { return string(s) }

// Usage is the org's daily API consumption as last reported by Salesforce
// in the Sforce-Limit-Info header (salesforce-api.md §6.4).
type Usage struct {
	// Used is the number of API calls counted in the last 24 hours.
	Used int64
	// Max is the org's allocation.
	Max int64
}

// APIUsage returns the api-usage part of the last Sforce-Limit-Info header
// seen; ok is false before any answer carried one. Every HTTP request,
// polls included, counts against the allocation.
func (c *Client) APIUsage() (u Usage, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.usage, c.haveUsage
}

// parseLimitInfo reads "api-usage=<used>/<max>" from a Sforce-Limit-Info
// value; other ';'-separated parts and anything malformed are ignored
// (salesforce-api.md §6.4).
func parseLimitInfo(h string) (Usage, bool) {
	for part := range strings.SplitSeq(h, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "api-usage") {
			continue
		}
		used, max, ok := strings.Cut(strings.TrimSpace(v), "/")
		if !ok {
			return Usage{}, false
		}
		u, err1 := strconv.ParseInt(strings.TrimSpace(used), 10, 64)
		m, err2 := strconv.ParseInt(strings.TrimSpace(max), 10, 64)
		if err1 != nil || err2 != nil || u < 0 || m < 0 {
			return Usage{}, false
		}
		return Usage{Used: u, Max: m}, true
	}
	return Usage{}, false
}

func (c *Client) noteUsage(h string) {
	u, ok := parseLimitInfo(h)
	if !ok {
		return
	}
	c.mu.Lock()
	c.usage, c.haveUsage = u, true
	warn := !c.warnedUsage && u.Max > 0 && u.Used*10 >= u.Max*9
	if warn {
		c.warnedUsage = true
	}
	windows := c.windowsLocked()
	c.mu.Unlock()
	for _, w := range windows {
		w.NoteAPIUsage(u)
	}
	if warn {
		c.log.Warn("salesforce: the org has used 90% of its daily API calls", "used", u.Used, "max", u.Max)
	}
}

// repeat says which failures of a call may be answered by sending it again.
// Every data call is one of three kinds; see shouldRetry.
type repeat int

const (
	// repeatIdempotent: sending the call twice has the effect of sending it
	// once (GET, DELETE, upsert PATCH by external id with the same body), so
	// any retryable failure may be repeated, a lost answer included.
	repeatIdempotent repeat = iota
	// repeatIfRefused: repeating after the server did the work would
	// duplicate it (job creation). Only answers that say the request was
	// refused before any work are repeated: 429, 502, 503, a lock or
	// concurrency refusal. Lost answers, 500 and 504 are not.
	repeatIfRefused
	// repeatIfNoAnswer: only a call that got no answer at all is repeated
	// (the job-data PUT, salesforce-api.md §1.4 and §6.4); an error answer
	// is final.
	repeatIfNoAnswer
)

// request describes one data call for do.
type request struct {
	method string
	// path is the escaped path from the instance root, e.g.
	// "/services/data/v66.0/jobs/ingest/7505g00000AbCdEAAV".
	path  string
	query url.Values
	// body returns a fresh request body for each attempt (nil: none).
	body          func() (io.ReadCloser, int64, error)
	contentType   string
	accept        string
	noAuth        bool // GET /services/data/ needs no token
	repeat        repeat
	stream        bool // return the 2xx answer with its body open
	noAnswerCount int  // filled by do: attempts that got no answer
}

// jsonBody makes a request body function for a JSON value.
func jsonBody(v any) (func() (io.ReadCloser, int64, error), error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return func() (io.ReadCloser, int64, error) {
		return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
	}, nil
}

// maxJSONBody bounds a decoded success answer (describe of a large object
// is a few MB; a job list page of 1,000 jobs about 0.5 MB).
const maxJSONBody = 64 << 20

// do sends req, the one path every data call takes: it adds the bearer
// token, reads Sforce-Limit-Info, turns failures into *APIError, renews
// the token on 401 INVALID_SESSION_ID, and repeats retryable failures
// with capped exponential backoff and jitter, within Config.MaxAttempts and
// ctx. A 429 or concurrency-limit answer pauses every call of the Client,
// not only this one (see pacer). On success it decodes a JSON answer into
// out (when out is not nil) and returns the response with its body closed,
// unless req.stream is set.
func (c *Client) do(ctx context.Context, req *request, out any) (*http.Response, error) {
	renewed := false
	var lastErr error
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, c.ctxError(ctx, req, lastErr)
		}
		if err := c.pace.wait(ctx); err != nil {
			return nil, c.ctxError(ctx, req, lastErr)
		}
		resp, sess, err := c.send(ctx, req)
		if err == nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if req.stream {
				return resp, nil
			}
			err = c.readSuccess(req, resp, out)
			if err == nil {
				return resp, nil
			}
		}
		if ctx.Err() != nil {
			// The failure is ours (cancelled or deadline), not the server's.
			return nil, c.ctxError(ctx, req, err)
		}
		if sess == nil {
			// The login failed, after login's own retries: repeating this
			// call would only repeat them.
			return nil, err
		}
		// 401 INVALID_SESSION_ID means the request was not carried out;
		// get a new token and repeat, whatever the call (salesforce-api.md
		// §1.4). The first renewal is free (tokens expire); each further
		// one counts as a failed attempt, so a token the org keeps refusing
		// ends the call after MaxAttempts.
		var apiErr *APIError
		if errors.As(err, &apiErr) && !req.noAuth && sessionExpired(apiErr) {
			if renewed && attempt >= c.cfg.MaxAttempts {
				return nil, fmt.Errorf("%w (after %d attempts, each with a new token)", err, attempt)
			}
			if renewed {
				if serr := sleep(ctx, c.backoff(attempt)); serr != nil {
					return nil, c.ctxError(ctx, req, err)
				}
			} else {
				attempt-- // the first renewal is not a failed attempt
			}
			renewed = true
			c.log.Info("salesforce: session expired or invalid; getting a new token", "method", req.method, "path", req.path)
			if _, rerr := c.renew(ctx, sess); rerr != nil {
				return nil, fmt.Errorf("salesforce: %s %s answered 401 and a new token could not be had: %w", req.method, req.path, rerr)
			}
			lastErr = err
			continue
		}
		retry, wait := c.shouldRetry(ctx, req, err, attempt)
		if slowDown(err) {
			c.slowDown(req, err, attempt)
		}
		if !retry {
			if attempt > 1 && lastErr != nil {
				return nil, fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return nil, err
		}
		lastErr = err
		c.log.Warn("salesforce: retrying", "method", req.method, "path", req.path, "attempt", attempt,
			"max_attempts", c.cfg.MaxAttempts, "wait", wait, "error", err.Error())
		if err := sleep(ctx, wait); err != nil {
			return nil, c.ctxError(ctx, req, lastErr)
		}
	}
}

// addWindow and removeWindow register the window of a running load, so
// that signs of strain the client meets reach it.
func (c *Client) addWindow(w *Window) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.windows == nil {
		c.windows = map[*Window]bool{}
	}
	c.windows[w] = true
}

func (c *Client) removeWindow(w *Window) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.windows, w)
}

func (c *Client) windowsLocked() []*Window {
	ws := make([]*Window, 0, len(c.windows))
	for w := range c.windows {
		ws = append(ws, w)
	}
	return ws
}

// strain halves the windows of the loads running.
func (c *Client) strain(reason string) {
	c.mu.Lock()
	windows := c.windowsLocked()
	c.mu.Unlock()
	for _, w := range windows {
		w.Shrink(reason)
	}
}

// slowDown pauses every call of the Client after Salesforce asked to send
// less: for the answer's Retry-After (capped at RetryMaxDelay), or else
// the backoff of this attempt.
func (c *Client) slowDown(req *request, err error, attempt int) {
	d := c.backoff(attempt)
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		if ra := retryAfter(apiErr.RetryAfter); ra > d {
			d = min(ra, c.cfg.RetryMaxDelay)
		}
	}
	until := c.pace.pause(d)
	c.strain("Salesforce asked to send less (429 or a concurrency limit)")
	c.log.Warn("salesforce: Salesforce asks to slow down; holding back every call of this client",
		"method", req.method, "path", req.path, "until", until.Format(time.RFC3339Nano), "error", err.Error())
}

// ctxError reports a call ended by its context, keeping the last failure
// as context for the reader.
func (c *Client) ctxError(ctx context.Context, req *request, last error) error {
	cause := context.Cause(ctx)
	if last != nil && !errors.Is(last, cause) {
		return fmt.Errorf("salesforce: %s %s: %w (last failure: %v)", req.method, req.path, cause, last)
	}
	return fmt.Errorf("salesforce: %s %s: %w", req.method, req.path, cause)
}

// send makes one attempt. A nil error means an HTTP answer arrived (any
// status); its body is open. Failures without an answer come back as
// *noAnswerError; answers with a status >= 300 as *APIError. A nil session
// with an error means the login failed (login has retried it already).
func (c *Client) send(ctx context.Context, req *request) (*http.Response, *session, error) {
	// Every data call, the unauthenticated versions list included, goes
	// to the instance URL the token answer named (salesforce-api.md §0).
	sess, err := c.session(ctx)
	if err != nil {
		return nil, nil, err
	}
	base := sess.instanceURL
	u, err := url.Parse(base + req.path)
	if err != nil {
		return nil, sess, fmt.Errorf("salesforce: bad request path %q: %w", req.path, err)
	}
	if len(req.query) > 0 {
		u.RawQuery = req.query.Encode()
	}
	var body io.ReadCloser
	var length int64
	if req.body != nil {
		body, length, err = req.body()
		if err != nil {
			return nil, sess, err
		}
	}
	hreq, err := http.NewRequestWithContext(ctx, req.method, u.String(), body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, sess, fmt.Errorf("salesforce: build %s %s: %w", req.method, req.path, err)
	}
	if body != nil {
		hreq.ContentLength = length
		// GetBody lets net/http resend the body itself when it retries on
		// a connection the server closed before reading anything.
		getBody := req.body
		hreq.GetBody = func() (io.ReadCloser, error) {
			b, _, err := getBody()
			return b, err
		}
		if length == 0 {
			hreq.Body = http.NoBody
		}
	}
	if req.contentType != "" {
		hreq.Header.Set("Content-Type", req.contentType)
	}
	accept := req.accept
	if accept == "" {
		accept = "application/json"
	}
	hreq.Header.Set("Accept", accept)
	hreq.Header.Set("User-Agent", "sfmigrate-salesforce/1")
	if !req.noAuth {
		hreq.Header.Set("Authorization", sess.tokenType+" "+sess.token.reveal())
	}
	resp, err := c.hc.Do(hreq)
	if err != nil {
		req.noAnswerCount++
		return nil, sess, &noAnswerError{method: req.method, path: req.path, err: stripURL(err)}
	}
	c.noteUsage(resp.Header.Get("Sforce-Limit-Info"))
	if resp.StatusCode >= 300 {
		return resp, sess, c.readError(req, resp)
	}
	return resp, sess, nil
}

// stripURL drops the request URL from a *url.Error: the path is in the
// message already and the host part could carry user info.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// readError reads an error answer (at most 1 MiB) into an *APIError and
// closes the body.
func (c *Client) readError(req *request, resp *http.Response) error {
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	// Drain a little more so the connection can be reused; give up on
	// bigger bodies (closing is enough).
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10) // best effort: only affects connection reuse
	if err != nil && len(raw) == 0 {
		req.noAnswerCount++
		return &noAnswerError{method: req.method, path: req.path,
			err: fmt.Errorf("status %d, body broke off: %w", resp.StatusCode, err)}
	}
	items, text := parseErrorBody(raw)
	return &APIError{
		Status:     resp.StatusCode,
		Method:     req.method,
		Path:       req.path,
		Errors:     items,
		Body:       text,
		RetryAfter: resp.Header.Get("Retry-After"),
	}
}

// readSuccess reads and decodes a 2xx answer, closing its body. A body that
// breaks off counts as no answer (the work may have been done).
func (c *Client) readSuccess(req *request, resp *http.Response, out any) error {
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody+1))
	if err != nil {
		req.noAnswerCount++
		return &noAnswerError{method: req.method, path: req.path, err: fmt.Errorf("answer broke off: %w", err)}
	}
	if out == nil {
		return nil
	}
	if len(raw) > maxJSONBody {
		return fmt.Errorf("salesforce: %s %s: answer larger than %d bytes", req.method, req.path, maxJSONBody)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("salesforce: %s %s: answer %d is not the expected JSON (%v): %s",
			req.method, req.path, resp.StatusCode, err, shorten(textOf(raw), 200))
	}
	return nil
}

// shouldRetry is the one retry decision (salesforce-api.md §6.4), for data
// calls and the login alike: it says whether the failed attempt number
// `attempt` of req may be repeated, and after how long. Only failures that
// Classify calls ClassTransient qualify; a cancelled context is never retried;
// the attempt budget is Config.MaxAttempts. Which transient failures a
// call may repeat depends on what a repetition could duplicate:
//
//   - the token endpoint's transient answers (*AuthError, §1.3: 5xx, 429,
//     rate_limit_exceeded): repeated (a second token request only issues
//     another token).
//   - no answer (reset, refused, EOF, timeout): the server may have done the
//     work, so only calls whose repetition is harmless (repeatIdempotent,
//     the login included) or proven by the API (repeatIfNoAnswer: the
//     job-data PUT, §1.4) are repeated.
//   - 429, 502, 503, UNABLE_TO_LOCK_ROW and the concurrency limit: refused
//     before any work (refusedBeforeWork), so repeatable except for the
//     upload, which §6.4 forbids re-sending after any error answer.
//   - 500, 504 and other 5xx: the work may have happened; idempotent only.
//
// Classify's other classes (ClassRefused, ClassConfig, ClassOther) are final, whatever
// the call: a 4xx other than those above, the daily REQUEST_LIMIT_EXCEEDED,
// a permanent network failure (see permanentNetError).
func (c *Client) shouldRetry(ctx context.Context, req *request, err error, attempt int) (bool, time.Duration) {
	if ctx.Err() != nil || attempt >= c.cfg.MaxAttempts || Classify(err) != ClassTransient {
		return false, 0
	}
	wait := c.backoff(attempt)
	var authErr *AuthError
	if errors.As(err, &authErr) {
		return true, wait
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		// No answer (Classify's only other transient kind).
		return req.repeat == repeatIdempotent || req.repeat == repeatIfNoAnswer, wait
	}
	if req.repeat == repeatIfNoAnswer {
		return false, 0
	}
	if ra := retryAfter(apiErr.RetryAfter); ra > wait {
		wait = min(ra, c.cfg.RetryMaxDelay)
	}
	if refusedBeforeWork(apiErr) {
		return true, wait
	}
	return req.repeat == repeatIdempotent, wait
}

// permanentNetError reports a request that got no answer for a reason no
// repetition can cure, because the address itself is wrong:
//
//   - the host name does not exist (*net.DNSError with IsNotFound: the
//     resolver answered NXDOMAIN), typically a misspelt My Domain;
//   - the URL says https but the server speaks plain HTTP
//     (http.ErrSchemeMismatch), or does not speak TLS at all
//     (tls.RecordHeaderError);
//   - the server's certificate is not trusted
//     (*tls.CertificateVerificationError): a wrong host, or a proxy that
//     intercepts TLS with a certificate this machine does not trust.
//
// Retrying these only delayed the failure by the whole backoff budget
// (about 11 s with the defaults). Everything else without an answer stays
// retryable: resets, timeouts, a resolver that did not answer (timeout,
// SERVFAIL) and connection refused. A refusal is ambiguous — a wrong port
// or a server that is not up, but also a server, proxy or load balancer
// that is restarting — and Salesforce's endpoints do not refuse
// connections in normal operation, so mid-run (a token renewal, a poll) a
// refusal is almost always the passing kind. Retrying a refusal costs the
// backoff budget once; giving up on a restarting server would fail a run.
func permanentNetError(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return true
	}
	if errors.Is(err, http.ErrSchemeMismatch) {
		return true
	}
	var recErr tls.RecordHeaderError
	if errors.As(err, &recErr) {
		return true
	}
	var certErr *tls.CertificateVerificationError
	return errors.As(err, &certErr)
}

// isConcurrencyLimit tells the concurrent-request limit (retry after a
// pause) from the daily allocation (final for the run): the former's
// message names ConcurrentPerOrgLongTxn or concurrency, the latter says
// "TotalRequests Limit exceeded" (salesforce-api.md §6.3, §6.4).
func isConcurrencyLimit(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "concurren")
}

// backoff is the wait before attempt+1: RetryBaseDelay·2^(attempt-1),
// capped at RetryMaxDelay, with jitter in [d/2, d] so parallel workers that
// failed together do not come back together.
func (c *Client) backoff(attempt int) time.Duration {
	return jittered(expDelay(c.cfg.RetryBaseDelay, c.cfg.RetryMaxDelay, attempt))
}

func expDelay(base, max time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

func jittered(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// retryAfter reads a Retry-After header in seconds or as an HTTP date.
func retryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return time.Until(t)
	}
	return 0
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// dataPath builds an escaped path under /services/data/<version>/.
func (c *Client) dataPath(segments ...string) string {
	var b strings.Builder
	b.WriteString("/services/data/")
	b.WriteString(c.version)
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

var (
	_ fmt.Formatter  = Config{}
	_ slog.LogValuer = Config{}
	_ json.Marshaler = Config{}
	_ fmt.Formatter  = (*Client)(nil)
	_ slog.LogValuer = (*Client)(nil)
	_ fmt.Formatter  = secret("")
)
