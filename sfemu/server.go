package sfemu

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
)

// TestClientID and TestClientSecret are the credentials of the connected
// app every new Server registers unless WithClient replaces them.
const (
	TestClientID     = "sfemu-test-client"
	TestClientSecret = "sfemu-test-secret"
)

// APIVersion is the newest API version the emulator serves by default
// (Spring '26, salesforce-api.md).
const APIVersion = "66.0"

// minAPIVersion is the oldest supported version; older ones answer 410 (6.5).
const minAPIVersion = 31

// ProcessingMode says when closed Bulk API 2.0 jobs are processed.
type ProcessingMode int

const (
	// ProcessAsync processes each closed job on its own goroutine after the
	// configured delay, moving it UploadComplete -> InProgress -> JobComplete
	// or Failed, as Salesforce does. It is the default.
	ProcessAsync ProcessingMode = iota
	// ProcessInstant processes the job before the close PATCH returns. The
	// close response still says UploadComplete (as the real API does); the
	// next GET shows the final state.
	ProcessInstant
	// ProcessManual leaves closed jobs in UploadComplete until the test
	// calls Server.ProcessJobs.
	ProcessManual
)

// Option configures a Server.
type Option func(*options)

type options struct {
	clientID, clientSecret string
	objects                []ObjectDef
	now                    func() time.Time
	tokenLifetime          time.Duration
	mode                   ProcessingMode
	delay                  time.Duration
	shuffle                bool
	seed                   int64
	maxUpload              int64
	apiLimit               int64
	maxVersion             int
	listPageSize           int
	queryPageSize          int
	gzipResults            bool
	model                  *OrgModel
	logf                   func(format string, args ...any)
	requestTimeout         time.Duration
	stallTimeout           time.Duration
}

// WithClient replaces the registered connected app (client id and secret).
func WithClient(id, secret string) Option {
	return func(o *options) { o.clientID, o.clientSecret = id, secret }
}

// WithObjects replaces the default org. New panics if the definitions are
// invalid; read untrusted definitions with ParseObjects first.
func WithObjects(defs []ObjectDef) Option {
	return func(o *options) { o.objects = defs }
}

// WithClock sets the clock used for timestamps, token expiry and job
// expiry (24 h open, 7 days kept).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithTokenLifetime sets how long access tokens stay valid; 0 (the default)
// means they never expire. Expired tokens answer 401 INVALID_SESSION_ID.
func WithTokenLifetime(d time.Duration) Option {
	return func(o *options) { o.tokenLifetime = d }
}

// WithProcessing chooses when closed jobs are processed. delay applies to
// ProcessAsync: the time a job waits in UploadComplete before InProgress.
func WithProcessing(mode ProcessingMode, delay time.Duration) Option {
	return func(o *options) { o.mode, o.delay = mode, delay }
}

// WithShuffleResults writes result rows in an order drawn from seed rather
// than upload order (salesforce-api.md 3.4: order is not guaranteed). It
// is on by default with a fixed seed; WithoutShuffle turns it off.
func WithShuffleResults(seed int64) Option {
	return func(o *options) { o.shuffle, o.seed = true, seed }
}

// WithoutShuffle writes result rows in upload order.
func WithoutShuffle() Option {
	return func(o *options) { o.shuffle = false }
}

// WithMaxUploadBytes sets the largest CSV upload per job (default
// 100,000,000 bytes: Salesforce's 150 MB limit applies after base64, so
// about 100 MB raw, salesforce-api.md 2.4). At most 4 GiB-1.
func WithMaxUploadBytes(n int64) Option {
	return func(o *options) { o.maxUpload = n }
}

// WithAPILimit sets the daily API request allocation reported in
// Sforce-Limit-Info (default 100,000); over it calls answer 403
// REQUEST_LIMIT_EXCEEDED. The count restarts every 24 hours of the clock.
func WithAPILimit(max int64) Option {
	return func(o *options) { o.apiLimit = max }
}

// WithMaxAPIVersion sets the newest version served (default 66 = v66.0).
func WithMaxAPIVersion(major int) Option {
	return func(o *options) { o.maxVersion = major }
}

// WithListPageSize sets how many jobs one page of GET jobs/ingest holds
// (default 1,000 as in Salesforce, salesforce-api.md 2.9).
func WithListPageSize(n int) Option {
	return func(o *options) { o.listPageSize = n }
}

// WithQueryPageSize sets how many records one query page holds (default
// 2,000, salesforce-api.md 8).
func WithQueryPageSize(n int) Option {
	return func(o *options) { o.queryPageSize = n }
}

// WithGzipResults makes result CSVs gzip-compressed when the request sends
// Accept-Encoding: gzip, as Salesforce does (salesforce-api.md 3.2). It is
// off by default: on loopback, compressing costs the emulator and the
// client CPU for nothing (Go's HTTP client asks for gzip on every request),
// and a response without Content-Encoding is equally valid HTTP.
func WithGzipResults(on bool) Option {
	return func(o *options) { o.gzipResults = on }
}

// WithLogger sets where the emulator logs panics and unknown routes (the
// message never includes tokens or secrets). Default: discard.
func WithLogger(logf func(format string, args ...any)) Option {
	return func(o *options) { o.logf = logf }
}

// Server is an emulated Salesforce org: an http.Handler serving OAuth,
// the versions list, Bulk API 2.0 ingest, sObject REST and a SOQL subset.
// It is safe for concurrent use.
type Server struct {
	opts    options
	org     *org
	now     func() time.Time
	started time.Time // the object definitions never change after this

	auth   authState
	faults faultState

	// The org's mutable state (orgstore.go) and the daily API count, each
	// behind its own lock.
	store *orgStore
	api   apiMeter

	ctx    context.Context
	cancel context.CancelFunc
	// model is the realistic org's processing state (nil: jobs are
	// processed as soon as they are closed; see WithOrgModel).
	model *orgState
}

// New returns an emulated org: the default objects (or WithObjects), the
// test client registered (or WithClient), async processing without delay.
func New(opts ...Option) *Server {
	o := options{
		clientID: TestClientID, clientSecret: TestClientSecret,
		now: time.Now, mode: ProcessAsync, shuffle: true, seed: 1,
		maxUpload: 100_000_000, apiLimit: 100_000, maxVersion: 66,
		listPageSize: 1000, queryPageSize: 2000,
		logf:           func(string, ...any) {},
		requestTimeout: DefaultRequestTimeout, stallTimeout: DefaultStallTimeout,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.objects == nil {
		o.objects = DefaultObjects()
	}
	g, err := compileOrg(o.objects)
	if err != nil {
		panic(err)
	}
	if o.maxUpload <= 0 || o.maxUpload > math.MaxUint32 {
		o.maxUpload = math.MaxUint32
	}
	if o.listPageSize <= 0 {
		o.listPageSize = 1000
	}
	if o.queryPageSize <= 0 {
		o.queryPageSize = 2000
	}
	if o.requestTimeout <= 0 {
		o.requestTimeout = DefaultRequestTimeout
	}
	if o.stallTimeout <= 0 {
		o.stallTimeout = DefaultStallTimeout
	}
	if o.maxVersion < minAPIVersion {
		o.maxVersion = minAPIVersion
	}
	s := &Server{opts: o, org: g, now: o.now, model: newOrgState(o.model)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.store = newOrgStore(g, o.now, s.model)
	s.auth.init(o)
	s.faults.rng = mrand.New(mrand.NewPCG(uint64(o.seed), 0x7a11))
	s.started = s.now()
	s.api = apiMeter{limit: o.apiLimit, day: s.started}
	return s
}

// Close stops background job processing and waits for it. Jobs still
// waiting are left as they are. The Server still answers requests.
func (s *Server) Close() {
	s.store.stop()
	s.cancel()
	s.store.waitProcessors()
}

// request is what handlers see: the HTTP request, the API version of the
// path and the path parameters.
type request struct {
	r       *http.Request
	w       http.ResponseWriter
	version string // "66.0"
	major   int
	params  []string // decoded path parameters, in pattern order
	base    string   // scheme://host of this server
}

// reply is what handlers return on success; writeReply encodes it.
type reply struct {
	status      int
	body        any    // encoded as JSON when raw and stream are nil
	raw         []byte // sent as is with contentType
	contentType string
	stream      func(w io.Writer) error // CSV results, written after the header
	location    string
}

type handlerFunc func(s *Server, rq *request) (*reply, error)

// route is one entry of the routing table: path segments ("{v}" is the
// API version, "{}" a parameter) and handlers by method.
type route struct {
	segs    []string
	auth    bool
	methods map[string]handlerFunc
}

// routes is every endpoint the emulator serves, in one list.
var routes = []route{
	{segs: []string{"services", "oauth2", "token"}, methods: map[string]handlerFunc{"POST": (*Server).handleToken}},
	{segs: []string{"services", "oauth2", "userinfo"}, methods: map[string]handlerFunc{
		"GET": (*Server).handleUserInfo, "POST": (*Server).handleUserInfo}},
	{segs: []string{"services", "data"}, methods: map[string]handlerFunc{"GET": (*Server).handleVersions}},
	{segs: []string{"id", "{}", "{}"}, methods: map[string]handlerFunc{"GET": (*Server).handleIdentity}},
	{segs: []string{"services", "data", "{v}"}, auth: true, methods: map[string]handlerFunc{"GET": (*Server).handleResources}},
	{segs: []string{"services", "data", "{v}", "limits"}, auth: true, methods: map[string]handlerFunc{"GET": (*Server).handleLimits}},
	{segs: []string{"services", "data", "{v}", "jobs", "ingest"}, auth: true, methods: map[string]handlerFunc{
		"GET": (*Server).handleListJobs, "POST": (*Server).handleCreateJob}},
	{segs: []string{"services", "data", "{v}", "jobs", "ingest", "{}"}, auth: true, methods: map[string]handlerFunc{
		"GET": (*Server).handleGetJob, "PATCH": (*Server).handlePatchJob, "DELETE": (*Server).handleDeleteJob}},
	{segs: []string{"services", "data", "{v}", "jobs", "ingest", "{}", "batches"}, auth: true, methods: map[string]handlerFunc{
		"PUT": (*Server).handleUpload}},
	{segs: []string{"services", "data", "{v}", "jobs", "ingest", "{}", "successfulResults"}, auth: true, methods: map[string]handlerFunc{
		"GET": resultsHandler(resultSuccessful)}},
	{segs: []string{"services", "data", "{v}", "jobs", "ingest", "{}", "failedResults"}, auth: true, methods: map[string]handlerFunc{
		"GET": resultsHandler(resultFailed)}},
	{segs: []string{"services", "data", "{v}", "jobs", "ingest", "{}", "unprocessedrecords"}, auth: true, methods: map[string]handlerFunc{
		"GET": resultsHandler(resultUnprocessed)}},
	// The documented spelling is all lower case; clients used against real
	// orgs (simple-salesforce, salesforcer) request "unprocessedRecords",
	// so Salesforce answers that too (docs/emulator.md, [I]).
	{segs: []string{"services", "data", "{v}", "jobs", "ingest", "{}", "unprocessedRecords"}, auth: true, methods: map[string]handlerFunc{
		"GET": resultsHandler(resultUnprocessed)}},
	{segs: []string{"services", "data", "{v}", "sobjects"}, auth: true, methods: map[string]handlerFunc{"GET": (*Server).handleGlobalDescribe}},
	{segs: []string{"services", "data", "{v}", "sobjects", "{}"}, auth: true, methods: map[string]handlerFunc{
		"GET": (*Server).handleSObjectInfo, "POST": (*Server).handleCreate}},
	{segs: []string{"services", "data", "{v}", "sobjects", "{}", "describe"}, auth: true, methods: map[string]handlerFunc{
		"GET": (*Server).handleDescribe}},
	{segs: []string{"services", "data", "{v}", "sobjects", "{}", "{}"}, auth: true, methods: map[string]handlerFunc{
		"GET": (*Server).handleGetRecord, "PATCH": (*Server).handleUpdateRecord, "DELETE": (*Server).handleDeleteRecord}},
	{segs: []string{"services", "data", "{v}", "sobjects", "{}", "{}", "{}"}, auth: true, methods: map[string]handlerFunc{
		"GET": (*Server).handleGetByExternalID, "PATCH": (*Server).handleUpsert, "DELETE": (*Server).handleDeleteByExternalID}},
	{segs: []string{"services", "data", "{v}", "query"}, auth: true, methods: map[string]handlerFunc{"GET": (*Server).handleQuery}},
	{segs: []string{"services", "data", "{v}", "query", "{}"}, auth: true, methods: map[string]handlerFunc{"GET": (*Server).handleQueryMore}},
}

// ServeHTTP answers one request. Every failure, including panics, unknown
// routes and wrong methods, is answered in Salesforce's error envelope.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				panic(v)
			}
			id := newErrorID()
			s.opts.logf("sfemu: panic serving %s %s (ErrorId %s): %v", excerpt.Of(r.Method), excerpt.Of(r.URL.Path), id, v)
			writeError(w, errUnknown(id))
		}
	}()
	w, r, cancel := s.limitRequest(w, r)
	defer cancel()
	if e := checkRequestSize(r); e != nil {
		writeError(w, e)
		return
	}
	if limitedPath(r.URL.Path) {
		// Every data API response carries the allocation, errors included;
		// serve replaces it once the call is counted (salesforce-api.md 6.4).
		w.Header().Set("Sforce-Limit-Info", s.api.info())
	}
	act := s.faults.match(r)
	if act.latency > 0 {
		t := time.NewTimer(act.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch {
	case act.drop:
		// Cut the connection before doing anything: the client sees EOF.
		panic(http.ErrAbortHandler)
	case act.status != 0:
		s.writeFault(w, r, act.status)
		return
	case act.dropAfter:
		// Handle the request fully, then lose the answer.
		s.serve(&discardWriter{h: http.Header{}}, r)
		panic(http.ErrAbortHandler)
	}
	s.serve(w, r)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rt, params, verr := matchRoute(r.URL)
	if verr != nil {
		writeError(w, verr)
		return
	}
	if rt == nil {
		s.opts.logf("sfemu: no route for %s %s", excerpt.Of(r.Method), excerpt.Of(r.URL.Path))
		writeError(w, errNotFound())
		return
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	h, ok := rt.methods[method]
	if !ok {
		allowed := make([]string, 0, len(rt.methods)+1)
		for m := range rt.methods {
			allowed = append(allowed, m)
		}
		if rt.methods["GET"] != nil {
			allowed = append(allowed, "HEAD")
		}
		slices.Sort(allowed)
		writeError(w, errMethod(r.Method, allowed))
		return
	}
	rq := &request{r: r, w: w, params: params, base: baseURL(r)}
	if rt.segs[len(rt.segs)-1] == "{v}" || (len(rt.segs) > 2 && rt.segs[2] == "{v}") {
		v := params[0]
		rq.params = params[1:]
		major, err := s.checkVersion(v)
		if err != nil {
			writeError(w, err)
			return
		}
		rq.major = major
		rq.version = strconv.Itoa(major) + ".0"
	}
	if rt.auth {
		if err := s.auth.check(r, s.now()); err != nil {
			writeError(w, err)
			return
		}
		used, max, err := s.api.count(s.now())
		w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", used, max))
		if err != nil {
			writeError(w, err)
			return
		}
	}
	rep, err := h(s, rq)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			writeError(w, ae)
			return
		}
		var oe *oauthError
		if errors.As(err, &oe) {
			writeJSON(w, oe.status, oe)
			return
		}
		id := newErrorID()
		s.opts.logf("sfemu: internal error on %s %s (ErrorId %s): %v", excerpt.Of(r.Method), excerpt.Of(r.URL.Path), id, err)
		writeError(w, errUnknown(id))
		return
	}
	s.writeReply(w, r, rep)
}

// matchRoute finds the route for a URL. Trailing slashes are ignored
// (salesforce-api.md 2.1: Salesforce's own examples use both forms).
func matchRoute(u *url.URL) (*route, []string, *apiError) {
	p := strings.Trim(u.EscapedPath(), "/")
	raw := strings.Split(p, "/")
	segs := make([]string, len(raw))
	for i, sg := range raw {
		d, err := url.PathUnescape(sg)
		if err != nil {
			return nil, nil, errNotFound()
		}
		segs[i] = d
	}
	for i := range routes {
		rt := &routes[i]
		if len(rt.segs) != len(segs) {
			continue
		}
		var params []string
		ok := true
		for j, want := range rt.segs {
			switch want {
			case "{}", "{v}":
				if segs[j] == "" {
					ok = false
				}
				params = append(params, segs[j])
			default:
				if segs[j] != want {
					ok = false
				}
			}
			if !ok {
				break
			}
		}
		if ok {
			return rt, params, nil
		}
	}
	return nil, nil, nil
}

// checkVersion parses "v66.0" (or the alias "latest"). Retired versions
// answer 410 and versions newer than the org's 404 (salesforce-api.md 6.5;
// the 404 for unreleased versions and both bodies are [I]).
func (s *Server) checkVersion(v string) (int, *apiError) {
	if v == "latest" {
		return s.opts.maxVersion, nil
	}
	num, ok := strings.CutPrefix(v, "v")
	if !ok {
		return 0, errNotFound()
	}
	majorS, minorS, _ := strings.Cut(num, ".")
	major, err := strconv.Atoi(majorS)
	if err != nil || major <= 0 || (minorS != "" && minorS != "0") {
		return 0, errNotFound()
	}
	if major < minAPIVersion {
		return 0, newAPIError(http.StatusGone, "API_VERSION_RETIRED",
			fmt.Sprintf("Version %d.0 of the API has been retired. Use version %d.0 or later.", major, minAPIVersion))
	}
	if major > s.opts.maxVersion {
		return 0, errNotFound()
	}
	return major, nil
}

// maxRequestHead is Salesforce's limit on the URI and headers of a request
// (salesforce-api.md §0 [D]).
const maxRequestHead = 16_384

// checkRequestSize refuses a request whose URI and headers exceed
// maxRequestHead: 414 when the URI alone does, else 431 (§0 [D]; the
// bodies are [I]). Larger heads than net/http's MaxHeaderBytes never reach
// the handler: the Go server answers those itself.
func checkRequestSize(r *http.Request) *apiError {
	n := len(r.RequestURI)
	if n > maxRequestHead {
		return newAPIError(http.StatusRequestURITooLong, "URI_TOO_LONG",
			fmt.Sprintf("The request URI is %d bytes long; Salesforce accepts at most %d bytes of URI and headers", n, maxRequestHead))
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4 // "K: v\r\n"
		}
	}
	if n > maxRequestHead {
		return newAPIError(http.StatusRequestHeaderFieldsTooLarge, "REQUEST_HEADER_FIELDS_TOO_LARGE",
			fmt.Sprintf("The request URI and headers are %d bytes long; Salesforce accepts at most %d bytes", n, maxRequestHead))
	}
	return nil
}

// limitedPath reports whether responses to path carry Sforce-Limit-Info:
// every REST and Bulk resource under /services/data/ except the versions
// list itself (salesforce-api.md 6.4, 6.5).
func limitedPath(path string) bool {
	rest, ok := strings.CutPrefix(path, "/services/data/")
	return ok && strings.Trim(rest, "/") != ""
}

// apiMeter counts API calls against the daily allocation
// (salesforce-api.md 6.4). It has its own lock: the count is independent
// of the org's records and jobs.
type apiMeter struct {
	limit int64 // fixed after New

	mu   sync.Mutex
	used int64     // guarded by mu
	day  time.Time // start of the current 24 hours; guarded by mu
}

// info is the Sforce-Limit-Info value for the calls counted so far.
// Calls refused before they are counted (bad token, unknown version)
// show the count without adding to it [I].
func (m *apiMeter) info() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return "api-usage=" + strconv.FormatInt(m.used, 10) + "/" + strconv.FormatInt(m.limit, 10)
}

// count counts one API call and refuses it once the allocation is used.
// The count restarts 24 hours (of the clock now) after the day began.
func (m *apiMeter) count(now time.Time) (used, max int64, err *apiError) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.day) >= 24*time.Hour {
		m.day, m.used = now, 0
	}
	max = m.limit
	if m.used >= max {
		return m.used, max, newAPIError(http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
	}
	m.used++
	return m.used, max, nil
}

// usage returns the calls counted in the current day and the allocation.
func (m *apiMeter) usage() (used, max int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used, m.limit
}

// APIUsage returns the number of API calls counted so far in the current day.
func (s *Server) APIUsage() int64 {
	used, _ := s.api.usage()
	return used
}

func (s *Server) writeReply(w http.ResponseWriter, r *http.Request, rep *reply) {
	h := w.Header()
	if rep.location != "" {
		h.Set("Location", rep.location)
	}
	switch {
	case rep.stream != nil:
		h.Set("Content-Type", rep.contentType)
		var out io.Writer = w
		var gz *gzip.Writer
		if s.opts.gzipResults && acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			h.Add("Vary", "Accept-Encoding")
			// Huffman-only keeps compression far faster than the network
			// so results never bound a measurement; the bytes are valid gzip.
			gz, _ = gzip.NewWriterLevel(w, gzip.HuffmanOnly)
			out = gz
		}
		w.WriteHeader(rep.status)
		if r.Method == http.MethodHead {
			return
		}
		bw := bufio.NewWriterSize(out, 64<<10)
		err := rep.stream(bw)
		if err == nil {
			err = bw.Flush()
		}
		if err == nil && gz != nil {
			err = gz.Close()
		}
		if err != nil {
			// The status is already sent: cut the connection so the client
			// cannot take a truncated body for a whole one.
			panic(http.ErrAbortHandler)
		}
	case rep.raw != nil || rep.body == nil:
		if rep.contentType != "" {
			h.Set("Content-Type", rep.contentType)
		}
		if rep.status != http.StatusNoContent && rep.status != http.StatusNotModified {
			h.Set("Content-Length", strconv.Itoa(len(rep.raw)))
		}
		w.WriteHeader(rep.status)
		if len(rep.raw) > 0 {
			_, _ = w.Write(rep.raw) // client gone: nothing to do
		}
	default:
		writeJSON(w, rep.status, rep.body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}

// writeJSON writes v as a JSON response with Salesforce's content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, errUnknown(newErrorID()))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // client gone: nothing to do
}

// baseURL is this server's scheme://host as the client reached it; it
// becomes instance_url (salesforce-api.md 1.5).
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func newErrorID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return strconv.Itoa(int(b[0])<<16|int(b[1])<<8|int(b[2])) + "-" + strconv.Itoa(int(b[3])<<16|int(b[4])<<8|int(b[5])) + " (" + hex.EncodeToString(b[:2]) + ")"
}

// discardWriter swallows a response (DropAfterHandling faults).
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// handleVersions serves GET /services/data/: every supported version, no
// auth and no Sforce-Limit-Info (salesforce-api.md 6.5).
func (s *Server) handleVersions(rq *request) (*reply, error) {
	type version struct {
		Label   string `json:"label"`
		URL     string `json:"url"`
		Version string `json:"version"`
	}
	var out []version
	for v := minAPIVersion; v <= s.opts.maxVersion; v++ {
		out = append(out, version{Label: releaseName(v), URL: fmt.Sprintf("/services/data/v%d.0", v), Version: fmt.Sprintf("%d.0", v)})
	}
	return &reply{status: http.StatusOK, body: out}, nil
}

// releaseName maps an API version to its release: v31.0 was Summer '14 and
// each release adds one (Summer, Winter, Spring), so v66.0 is Spring '26.
func releaseName(v int) string {
	i := v - 31
	k := i / 3
	switch i % 3 {
	case 0:
		return fmt.Sprintf("Summer '%02d", 14+k)
	case 1:
		return fmt.Sprintf("Winter '%02d", 15+k)
	default:
		return fmt.Sprintf("Spring '%02d", 15+k)
	}
}

// handleResources serves GET /services/data/vXX.X: the resource directory.
func (s *Server) handleResources(rq *request) (*reply, error) {
	p := "/services/data/v" + rq.version
	return &reply{status: http.StatusOK, body: map[string]string{
		"jobs": p + "/jobs", "limits": p + "/limits", "query": p + "/query", "sobjects": p + "/sobjects",
	}}, nil
}

// handleLimits serves GET .../limits with DailyApiRequests (6.4).
func (s *Server) handleLimits(rq *request) (*reply, error) {
	used, max := s.api.usage()
	type limit struct {
		Max       int64 `json:"Max"`
		Remaining int64 `json:"Remaining"`
	}
	return &reply{status: http.StatusOK, body: map[string]limit{
		"DailyApiRequests":     {Max: max, Remaining: max - used},
		"DailyBulkV2QueryJobs": {Max: 10000, Remaining: 10000},
		"DailyBulkApiBatches":  {Max: 15000, Remaining: 15000},
	}}, nil
}

var _ http.Handler = (*Server)(nil)
