package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

const emulatorHelp = `
Serves an in-memory Salesforce org on ADDR: OAuth 2.0 client credentials at
/services/oauth2/token, the versions list, Bulk API 2.0 ingest jobs, sObject
REST (upsert by external id, create, get, describe), a SOQL subset, and the
identity calls clients make after a login (/services/oauth2/userinfo, the
run-as User and the Organization record; the sf CLI logs in with them).
127.0.0.1:0 picks a free port. The first line printed on stdout holds the base
URL; point a client's login URL (or AIRFLOW_CONN_SALESFORCE_API's host) at it.
With the test client, the next lines show its id and secret and an export line
for AIRFLOW_CONN_SALESFORCE_API to paste. Stop it with Ctrl-C or SIGTERM.

Without --objects the org holds Account, Product2, Product_Price__c and the
status tracker Migration_Status__c (see docs/emulator.md for the YAML format).
Without --client-id/--client-secret the test client is registered:
  client id     sfemu-test-client
  client secret sfemu-test-secret
The secret can also come from SFEMU_CLIENT_SECRET (keeps it out of 'ps'); a
secret given either way is never printed.

Fault flags let a client's error handling be rehearsed:
  --token-lifetime 5m    tokens expire (401 INVALID_SESSION_ID afterwards)
  --latency 200ms        added to every request
  --share-503 0.1        answer 10 % of requests 503 SERVER_UNAVAILABLE
  --share-429 0.05       answer 5 % of requests 429
  --share-drop 0.02      cut the connection on 2 % of requests
                         (the three shares are of all requests; together at most 1)
  --lock Product2=P-1,P-2  rows with these external ids fail UNABLE_TO_LOCK_ROW
  --fail-jobs 1          the next N jobs end Failed

Examples:
  sfmigrate emulator --listen 127.0.0.1:8080
  sfmigrate emulator --listen 127.0.0.1:0 --objects org.yaml --processing-delay 2s --share-503 0.05
`

// lockFlag collects --lock Object=key1,key2 values.
type lockFlag []string

func (l *lockFlag) String() string     { return strings.Join(*l, " ") }
func (l *lockFlag) Set(v string) error { *l = append(*l, v); return nil }

type emulatorFlags struct {
	listen, objects, clientID, clientSecret string
	tokenLifetime, latency, delay           time.Duration
	processing                              string
	share503, share429, shareDrop           float64
	locks                                   lockFlag
	failJobs                                int
	apiLimit, maxUpload                     int64
	noShuffle, gzipResults, tls             bool
	seed                                    int64
	// testClient is set when neither --client-secret nor
	// SFEMU_CLIENT_SECRET gave a secret, so the built-in test client
	// (public id and secret) is registered and may be shown.
	testClient bool

	orgModel orgModelFlags // the realistic org (emulator_orgmodel.go)
}

// parseEmulator reads the flags; it never starts anything. The client
// secret's default comes from SFEMU_CLIENT_SECRET, else, for the test
// client id, the test secret.
func parseEmulator(env Env, args []string) (*emulatorFlags, error) {
	fs := newFlagSet(env, "emulator", "sfmigrate emulator --listen ADDR [--objects FILE] [--client-id ID --client-secret S] [fault flags] [--org-model ...]", emulatorHelp+emulatorOrgModelHelp)
	f := &emulatorFlags{}
	fs.StringVar(&f.listen, "listen", "127.0.0.1:0", "`address` to listen on (127.0.0.1:0 picks a free port)")
	fs.StringVar(&f.objects, "objects", "", "YAML `file` with the org's object definitions (default: the built-in demo org)")
	fs.StringVar(&f.clientID, "client-id", sfemu.TestClientID, "client id of the registered connected app")
	fs.StringVar(&f.clientSecret, "client-secret", "", "client secret of the registered connected app (default: SFEMU_CLIENT_SECRET or the test secret)")
	fs.DurationVar(&f.tokenLifetime, "token-lifetime", 0, "how long access tokens stay valid (0: never expire)")
	fs.DurationVar(&f.latency, "latency", 0, "delay added to every request")
	fs.StringVar(&f.processing, "processing", "async", "when closed jobs are processed: async (after --processing-delay) or instant")
	fs.DurationVar(&f.delay, "processing-delay", 0, "time a closed job waits in UploadComplete before processing (async)")
	fs.Float64Var(&f.share503, "share-503", 0, "share (0..1) of requests answered 503 SERVER_UNAVAILABLE")
	fs.Float64Var(&f.share429, "share-429", 0, "share (0..1) of requests answered 429")
	fs.Float64Var(&f.shareDrop, "share-drop", 0, "share (0..1) of requests whose connection is cut before handling")
	fs.Var(&f.locks, "lock", "`Object=key1,key2`: rows with these external-id values fail UNABLE_TO_LOCK_ROW (repeatable)")
	fs.IntVar(&f.failJobs, "fail-jobs", 0, "the next `N` jobs to be processed end Failed")
	fs.Int64Var(&f.apiLimit, "api-limit", 100_000, "daily API request allocation (Sforce-Limit-Info max; over it: 403 REQUEST_LIMIT_EXCEEDED)")
	fs.Int64Var(&f.maxUpload, "max-upload-bytes", 100_000_000, "largest CSV upload per job")
	fs.BoolVar(&f.tls, "tls", false, "serve HTTPS with a self-signed certificate made at start (for clients that insist on https; they must skip verification)")
	fs.BoolVar(&f.gzipResults, "gzip-results", false, "gzip result CSVs for clients that accept it, as Salesforce does (costs CPU on loopback)")
	fs.BoolVar(&f.noShuffle, "no-shuffle", false, "return result rows in upload order (Salesforce does not guarantee any order)")
	fs.Int64Var(&f.seed, "seed", 1, "seed for result order and fault shares")
	addOrgModelFlags(fs, &f.orgModel)
	if err := parseFlags(env, fs, args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, usageErrorf("emulator: unexpected argument %s (see 'sfmigrate emulator --help')", excerpt.Quote(fs.Arg(0)))
	}
	f.orgModel.setOn(fs)
	if f.clientSecret == "" {
		f.clientSecret = env.getenv("SFEMU_CLIENT_SECRET")
	}
	if f.clientSecret == "" && f.clientID == sfemu.TestClientID {
		f.clientSecret = sfemu.TestClientSecret
		f.testClient = true
	}
	return f, nil
}

// validate checks the flags' values; the object file (--objects) and the
// objects --lock names are checked when the emulator is built.
func (f *emulatorFlags) validate() error {
	if err := f.orgModel.validate(f.processing); err != nil {
		return err
	}
	if f.clientSecret == "" {
		return usageErrorf("emulator: --client-id %s needs --client-secret (or SFEMU_CLIENT_SECRET)", excerpt.Quote(f.clientID))
	}
	if f.clientID == "" {
		return usageErrorf("emulator: --client-id must not be empty")
	}
	for _, s := range []struct {
		name string
		v    float64
	}{{"--share-503", f.share503}, {"--share-429", f.share429}, {"--share-drop", f.shareDrop}} {
		if s.v < 0 || s.v > 1 {
			return usageErrorf("emulator: %s %v is not a share between 0 and 1", s.name, s.v)
		}
	}
	if sum := f.share503 + f.share429 + f.shareDrop; sum > 1 {
		return usageErrorf("emulator: --share-503, --share-429 and --share-drop add up to %v; together they can cover at most every request (1)", sum)
	}
	switch f.processing {
	case "async", "instant":
	default:
		return usageErrorf("emulator: --processing %s: use async or instant", excerpt.Quote(f.processing))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--token-lifetime", f.tokenLifetime}, {"--latency", f.latency}, {"--processing-delay", f.delay}} {
		if d.v < 0 {
			return usageErrorf("emulator: %s %v must not be negative", d.name, d.v)
		}
	}
	if f.failJobs < 0 || f.apiLimit <= 0 || f.maxUpload <= 0 {
		return usageErrorf("emulator: --fail-jobs must be >= 0, --api-limit and --max-upload-bytes > 0")
	}
	for _, l := range f.locks {
		obj, keys, ok := strings.Cut(l, "=")
		if !ok || obj == "" || keys == "" {
			return usageErrorf("emulator: --lock %q: use Object=key1,key2", l)
		}
	}
	return nil
}

// faults turns the fault flags into emulator faults, always in the same
// order so that --seed repeats a run. Only one outcome fault answers a
// request (sfemu.Fault): 503 is drawn first, then 429 among the requests
// 503 left, then drops, so the later shares are raised to keep each flag's
// share of all requests.
func (f *emulatorFlags) faults() []sfemu.Fault {
	var out []sfemu.Fault
	if f.latency > 0 {
		out = append(out, sfemu.Fault{Share: 1, Latency: f.latency})
	}
	left := 1.0
	for _, o := range []struct {
		share float64
		fault sfemu.Fault
	}{{f.share503, sfemu.Fault{Status: 503}}, {f.share429, sfemu.Fault{Status: 429}}, {f.shareDrop, sfemu.Fault{Drop: true}}} {
		if o.share <= 0 {
			continue
		}
		o.fault.Share = min(1, o.share/left)
		left -= o.share
		out = append(out, o.fault)
	}
	return out
}

// options turns the flags into emulator options; the object file is read here.
func (f *emulatorFlags) options() ([]sfemu.Option, error) {
	opts := []sfemu.Option{
		sfemu.WithClient(f.clientID, f.clientSecret),
		sfemu.WithTokenLifetime(f.tokenLifetime),
		sfemu.WithAPILimit(f.apiLimit),
		sfemu.WithMaxUploadBytes(f.maxUpload),
		sfemu.WithShuffleResults(f.seed),
	}
	if f.noShuffle {
		opts = append(opts, sfemu.WithoutShuffle())
	}
	if f.gzipResults {
		opts = append(opts, sfemu.WithGzipResults(true))
	}
	mode := sfemu.ProcessAsync
	if f.processing == "instant" {
		mode = sfemu.ProcessInstant
	}
	opts = append(opts, sfemu.WithProcessing(mode, f.delay))
	if o := f.orgModel.option(); o != nil {
		opts = append(opts, o)
	}
	if f.objects != "" {
		file, err := os.Open(f.objects)
		if err != nil {
			return nil, usageErrorf("emulator: --objects: %v", err)
		}
		defs, err := sfemu.ParseObjects(file)
		file.Close()
		if err != nil {
			return nil, usageErrorf("emulator: --objects %s: %v", f.objects, err)
		}
		opts = append(opts, sfemu.WithObjects(defs))
	}
	return opts, nil
}

func runEmulator(ctx context.Context, env Env, f *emulatorFlags) error {
	opts, err := f.options()
	if err != nil {
		return err
	}
	opts = append(opts, sfemu.WithLogger(func(format string, a ...any) {
		fmt.Fprintf(env.Stderr, format+"\n", a...)
	}))
	emu := sfemu.New(opts...) // definitions were checked by ParseObjects
	serving := false
	defer func() {
		if !serving { // serveEmulator closes it within the grace
			emu.Close()
		}
	}()
	for _, fault := range f.faults() {
		emu.AddFault(fault)
	}
	for _, l := range f.locks {
		obj, keys, _ := strings.Cut(l, "=")
		if !emu.HasObject(obj) {
			return usageErrorf("emulator: --lock %q: the org has no object %s", l, obj)
		}
		emu.LockRecords(obj, strings.Split(keys, ",")...)
	}
	for range f.failJobs {
		emu.FailNextJob("InvalidBatch : Failed after 20 retries (injected by --fail-jobs)")
	}

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return usageErrorf("emulator: --listen %s: %v", f.listen, err)
	}
	scheme := "http"
	if f.tls {
		cert, err := selfSignedCert()
		if err != nil {
			ln.Close()
			return fmt.Errorf("emulator: --tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	fmt.Fprintf(env.Stdout, "sfemu listening on %s\n", base) // the first line: scripts and tests read the URL from it
	if f.testClient {
		printTestClient(env.Stdout, scheme+"://"+dialAddr(ln.Addr()), f.tls)
		fmt.Fprintf(env.Stderr, "sfemu: token URL %s/services/oauth2/token, client id %s, API v%s\n", base, f.clientID, sfemu.APIVersion)
	} else {
		// A secret the user chose is theirs: never printed.
		fmt.Fprintf(env.Stderr, "sfemu: token URL %s/services/oauth2/token, client id %s (secret not shown), API v%s\n", base, f.clientID, sfemu.APIVersion)
	}

	serving = true
	if err := serveEmulator(ctx, ln, base, emu); err != nil {
		return err
	}
	fmt.Fprintln(env.Stderr, "sfemu: stopped")
	return nil
}

// printTestClient shows how to log in with the built-in test client, whose
// id and secret are public (sfemu.TestClientID, sfemu.TestClientSecret,
// also in --help and docs/emulator.md) and only ever open this emulator:
// the credentials, a ready-to-paste connection for sfmigrate, and the poll
// interval that suits jobs finishing in moments.
func printTestClient(w io.Writer, url string, tlsOn bool) {
	fmt.Fprintf(w, "client id      %s\n", sfemu.TestClientID)
	fmt.Fprintf(w, "client secret  %s   (the built-in test client's: public, opens only this emulator)\n", sfemu.TestClientSecret)
	if tlsOn {
		fmt.Fprintln(w, "sfmigrate verifies TLS certificates and refuses this self-signed one: for 'sfmigrate run', start the emulator without --tls")
		return
	}
	conn, _ := json.Marshal(struct { // fixed string fields: cannot fail
		ConnType string `json:"conn_type"`
		Host     string `json:"host"`
		Login    string `json:"login"`
		Password string `json:"password"`
	}{"http", url, sfemu.TestClientID, sfemu.TestClientSecret})
	fmt.Fprintln(w, "to point sfmigrate at it:")
	fmt.Fprintf(w, "  export AIRFLOW_CONN_SALESFORCE_API='%s'\n", conn)
	fmt.Fprintln(w, "  sfmigrate run --table TABLE --poll-interval 50ms   # jobs here finish in moments; the default first poll waits 2s")
}

// dialAddr is where a client on this machine reaches a listener: an
// unspecified listen IP (0.0.0.0 or ::, which Go opens dual-stack and
// reports as [::]) becomes 127.0.0.1, which reaches either.
func dialAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(ta.Port))
}

// selfSignedCert makes a throwaway certificate for 127.0.0.1, ::1 and localhost.
func selfSignedCert() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "sfemu"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

var _ flag.Value = (*lockFlag)(nil)
