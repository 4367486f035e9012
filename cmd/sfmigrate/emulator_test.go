package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/airflow"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// lineWriter collects output and signals the first complete line.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	first chan string
	sent  bool
}

func newLineWriter() *lineWriter { return &lineWriter{first: make(chan string, 1)} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		if line, _, ok := strings.Cut(w.buf.String(), "\n"); ok {
			w.first <- line
			w.sent = true
		}
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// startEmulator runs 'sfmigrate emulator' in-process and returns its base
// URL, a stop function and the exit code channel.
func startEmulator(t *testing.T, args ...string) (base string, stop func() int, stderr *lineWriter) {
	t.Helper()
	return startEmulatorScheme(t, "http://127.0.0.1:", args...)
}

func startEmulatorScheme(t *testing.T, prefix string, args ...string) (base string, stop func() int, stderr *lineWriter) {
	t.Helper()
	base, stop, _, stderr = startEmulatorEnv(t, func(string) string { return "" }, prefix, args...)
	return base, stop, stderr
}

// startEmulatorEnv is startEmulatorScheme with the environment's variables
// from getenv, returning stdout too.
func startEmulatorEnv(t *testing.T, getenv func(string) string, prefix string, args ...string) (base string, stop func() int, stdout, stderr *lineWriter) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out, errw := newLineWriter(), newLineWriter()
	env := Env{Stdout: out, Stderr: errw, Getenv: getenv}
	code := make(chan int, 1)
	go func() { code <- Main(ctx, append([]string{"emulator"}, args...), env) }()
	select {
	case line := <-out.first:
		base, ok := strings.CutPrefix(line, "sfemu listening on ")
		if !ok || !strings.HasPrefix(base, prefix) {
			cancel()
			t.Fatalf("first stdout line = %q", line)
		}
		return base, func() int { cancel(); return <-code }, out, errw
	case c := <-code:
		cancel()
		t.Fatalf("emulator exited %d before listening: %s", c, errw.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("emulator did not print its URL within 10s")
	}
	return "", nil, nil, nil
}

func token(t *testing.T, base, id, secret string) (int, map[string]string) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	res, err := http.PostForm(base+"/services/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]string
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("token body %q: %v", b, err)
	}
	return res.StatusCode, body
}

func TestEmulatorCommandServesAndStops(t *testing.T) {
	objects := filepath.Join(t.TempDir(), "org.yaml")
	if err := os.WriteFile(objects, []byte("objects:\n  - name: Widget__c\n    fields:\n      - {name: Key__c, type: string, length: 20, externalId: true, unique: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base, stop, stderr := startEmulator(t, "--listen", "127.0.0.1:0", "--objects", objects,
		"--client-id", "my-app", "--client-secret", "s3cr3t-value", "--processing", "instant")
	status, tok := token(t, base, "my-app", "s3cr3t-value")
	if status != 200 || tok["instance_url"] != base {
		t.Fatalf("token: %d %v", status, tok)
	}
	if status, _ := token(t, base, "sfemu-test-client", "sfemu-test-secret"); status != 400 {
		t.Errorf("the test client must be replaced by --client-id: %d", status)
	}
	req, _ := http.NewRequest("GET", base+"/services/data/v66.0/sobjects/Widget__c/describe", nil)
	req.Header.Set("Authorization", "Bearer "+tok["access_token"])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("describe of the --objects org: %d", res.StatusCode)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code after cancel = %d; stderr: %s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "s3cr3t-value") {
		t.Error("the client secret was printed")
	}
}

func TestEmulatorFaultFlags(t *testing.T) {
	base, stop, _ := startEmulator(t, "--share-503", "1")
	defer stop()
	res, err := http.Get(base + "/services/data/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 503 || !strings.Contains(string(b), "SERVER_UNAVAILABLE") {
		t.Errorf("--share-503 1: %d %s", res.StatusCode, b)
	}
}

func TestEmulatorFlagErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("objects:\n  - name: X__c\n    fields:\n      - {name: A__c, type: strnig}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad share", []string{"--share-503", "2"}, "--share-503 2 is not a share"},
		{"id without secret", []string{"--client-id", "x"}, "needs --client-secret"},
		{"bad processing", []string{"--processing", "later"}, `--processing "later"`},
		{"bad lock", []string{"--lock", "Product2"}, "use Object=key1,key2"},
		{"unknown lock object", []string{"--lock", "Nope=1", "--listen", "127.0.0.1:0"}, "no object Nope"},
		{"missing objects file", []string{"--objects", "/nonexistent/org.yaml"}, "no such file"},
		{"bad objects file", []string{"--objects", bad}, `unknown type "strnig"`},
		{"bad listen", []string{"--listen", "256.0.0.1:99999"}, "--listen 256.0.0.1:99999"},
		{"extra arg", []string{"now"}, `unexpected argument "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, append([]string{"emulator"}, tt.args...)...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d (stderr %s)", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.want)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
}

func TestEmulatorTLS(t *testing.T) {
	base, stop, _ := startEmulatorScheme(t, "https://127.0.0.1:", "--tls")
	defer stop()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // self-signed test certificate
	res, err := hc.PostForm(base+"/services/oauth2/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"sfemu-test-client"}, "client_secret": {"sfemu-test-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tok map[string]string
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != 200 {
		t.Fatalf("token over TLS: %d %v", res.StatusCode, err)
	}
	if tok["instance_url"] != base {
		t.Errorf("instance_url = %q, want %q", tok["instance_url"], base)
	}
}

// TestEmulatorFaultShares: each --share-* flag is the share of all
// requests answered that way, also when they are combined (only one
// outcome fault answers a request, so the later ones are drawn among the
// requests the earlier ones left).
func TestEmulatorFaultShares(t *testing.T) {
	f, err := parseAndValidate(Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}, parseEmulator,
		[]string{"--share-503", "0.3", "--share-429", "0.2", "--share-drop", "0.1"})
	if err != nil {
		t.Fatal(err)
	}
	opts, err := f.options()
	if err != nil {
		t.Fatal(err)
	}
	emu := sfemu.New(opts...)
	for _, fault := range f.faults() {
		emu.AddFault(fault)
	}
	srv := httptest.NewServer(emu)
	defer srv.Close()
	defer emu.Close()
	const n = 3000
	counts := map[string]int{}
	for range n {
		// POST: Go's client does not resend it when the connection drops.
		res, err := srv.Client().Post(srv.URL+"/services/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials&client_id=sfemu-test-client&client_secret=sfemu-test-secret"))
		if err != nil {
			counts["drop"]++
			continue
		}
		res.Body.Close()
		counts[strconv.Itoa(res.StatusCode)]++
	}
	for k, want := range map[string]float64{"503": 0.3, "429": 0.2, "drop": 0.1, "200": 0.4} {
		if got := float64(counts[k]) / n; got < want-0.04 || got > want+0.04 {
			t.Errorf("%s: share %.3f, want %.2f (counts %v)", k, got, want, counts)
		}
	}
	if _, err := parseAndValidate(Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}, parseEmulator,
		[]string{"--share-503", "0.6", "--share-429", "0.5"}); err == nil || !strings.Contains(err.Error(), "add up to 1.1") {
		t.Errorf("shares over 1: %v", err)
	}
}

// TestEmulatorShowsTestClient: with the built-in test client (no secret
// given), the start-up output shows its public id and secret and a
// connection line that, pasted, logs in; with a secret the user gave (flag
// or SFEMU_CLIENT_SECRET, even one equal to the test secret) nothing
// secret is printed. The first stdout line stays the base URL.
func TestEmulatorShowsTestClient(t *testing.T) {
	noEnv := func(string) string { return "" }
	t.Run("test client", func(t *testing.T) {
		base, stop, stdout, stderr := startEmulatorEnv(t, noEnv, "http://127.0.0.1:")
		defer stop()
		// The banner is written before the server accepts requests, so
		// after one answer it is complete.
		if status, _ := token(t, base, sfemu.TestClientID, sfemu.TestClientSecret); status != 200 {
			t.Fatalf("token: %d", status)
		}
		out := stdout.String()
		if first, _, _ := strings.Cut(out, "\n"); first != "sfemu listening on "+base {
			t.Errorf("first line %q, want the base URL", first)
		}
		for _, want := range []string{sfemu.TestClientID, sfemu.TestClientSecret, "--poll-interval 50ms"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout does not show %q:\n%s", want, out)
			}
		}
		conn := exportedConnection(t, out)
		if conn.Host != base || conn.Login != sfemu.TestClientID || conn.Password != sfemu.TestClientSecret {
			t.Errorf("exported connection = %+v", conn)
		}
		if status, _ := token(t, conn.Host, conn.Login, conn.Password); status != 200 {
			t.Errorf("login with the exported connection: %d", status)
		}
		if strings.Contains(stderr.String(), "secret not shown") {
			t.Errorf("stderr hides a public secret: %s", stderr.String())
		}
		// The hint names run's real flag.
		if _, out, errOut := runMain(t, "run", "--help"); !strings.Contains(out+errOut, "-poll-interval duration") {
			help := out + errOut
			t.Errorf("'run --help' has no -poll-interval flag:\n%s", help)
		}
	})
	t.Run("listening on all interfaces", func(t *testing.T) {
		_, stop, stdout, _ := startEmulatorEnv(t, noEnv, "http://", "--listen", "0.0.0.0:0")
		defer stop()
		conn := exportedConnection(t, waitFor(t, stdout, "export "))
		if !strings.HasPrefix(conn.Host, "http://127.0.0.1:") {
			t.Fatalf("exported host %q, want loopback", conn.Host)
		}
		if status, _ := token(t, conn.Host, conn.Login, conn.Password); status != 200 {
			t.Errorf("login with the exported connection: %d", status)
		}
	})
	t.Run("tls", func(t *testing.T) {
		_, stop, stdout, _ := startEmulatorEnv(t, noEnv, "https://127.0.0.1:", "--tls")
		defer stop()
		out := waitFor(t, stdout, "without --tls")
		if strings.Contains(out, "export ") {
			t.Errorf("a connection sfmigrate cannot use is offered:\n%s", out)
		}
	})
	const own = "my-own-secret-42"
	for _, tc := range []struct {
		name, secret string
		args         []string
		env          string
	}{
		{"secret by flag", own, []string{"--client-secret", own}, ""},
		{"secret by environment", own, nil, own},
		{"test secret given explicitly", sfemu.TestClientSecret, []string{"--client-secret", sfemu.TestClientSecret}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "SFEMU_CLIENT_SECRET" {
					return tc.env
				}
				return ""
			}
			base, stop, stdout, stderr := startEmulatorEnv(t, getenv, "http://127.0.0.1:", tc.args...)
			if status, _ := token(t, base, sfemu.TestClientID, tc.secret); status != 200 {
				t.Fatalf("token with the given secret: %d", status)
			}
			if code := stop(); code != 0 {
				t.Errorf("exit %d", code)
			}
			all := stdout.String() + stderr.String()
			if strings.Contains(all, tc.secret) || strings.Contains(all, "export ") {
				t.Errorf("a user-supplied secret (or a connection holding it) was printed:\n%s", all)
			}
			if stdout.String() != "sfemu listening on "+base+"\n" || !strings.Contains(stderr.String(), "secret not shown") {
				t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
			}
		})
	}
}

// waitFor waits until w's output contains sub and returns it.
func waitFor(t *testing.T, w *lineWriter, sub string) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if s := w.String(); strings.Contains(s, sub) {
			return s
		}
	}
	t.Fatalf("output never contained %q:\n%s", sub, w.String())
	return ""
}

// exportedConnection finds the export AIRFLOW_CONN_SALESFORCE_API='...'
// line in out and parses its value as Airflow (and sfmigrate) would.
func exportedConnection(t *testing.T, out string) airflow.Connection {
	t.Helper()
	for line := range strings.Lines(out) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "export AIRFLOW_CONN_SALESFORCE_API='")
		if !ok {
			continue
		}
		v, ok = strings.CutSuffix(v, "'")
		if !ok {
			t.Fatalf("export line not single-quoted: %q", line)
		}
		conn, err := airflow.ParseConnection("salesforce_api", v)
		if err != nil {
			t.Fatalf("exported value %q: %v", v, err)
		}
		return conn
	}
	t.Fatalf("no export AIRFLOW_CONN_SALESFORCE_API line in:\n%s", out)
	return airflow.Connection{}
}
