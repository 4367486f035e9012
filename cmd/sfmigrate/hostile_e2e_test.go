package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/internal/excerpt"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// emuCall makes one authorised call to a running emulator and returns the
// status and body.
func emuCall(t *testing.T, method, u, tok, ctype, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %.100s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestEmulatorStopsDuringSlowQuery: SIGTERM to the emulator process while
// a query scans for far longer than the grace ends the process within
// the grace (it used to wait for the query for ever: only kill -9 helped).
func TestEmulatorStopsDuringSlowQuery(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 4 MB into an emulator process")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	proc := exec.Command(exe, "emulator", "--listen", "127.0.0.1:0", "--processing", "instant")
	proc.Env = []string{"SFMIGRATE_E2E_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var stderr strings.Builder
	proc.Stderr = &stderr
	out, err := proc.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		if proc.ProcessState == nil {
			proc.Process.Kill()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "sfemu listening on ")
	if err != nil || !ok {
		t.Fatalf("first line %q: %v", line, err)
	}
	go func() { io.Copy(io.Discard, out); exited <- proc.Wait() }()

	status, tok := token(t, base, sfemu.TestClientID, sfemu.TestClientSecret)
	if status != 200 {
		t.Fatalf("token: %d %v", status, tok)
	}
	api := base + "/services/data/v66.0"
	st, body := emuCall(t, "POST", api+"/jobs/ingest", tok["access_token"], "application/json",
		`{"object":"Product2","operation":"upsert","externalIdFieldName":"External_Id__c","lineEnding":"LF"}`)
	if st != 200 {
		t.Fatalf("create job: %d %s", st, body)
	}
	id := body[strings.Index(body, `"id":"`)+6:][:18]
	var csv strings.Builder
	csv.WriteString("External_Id__c,Name,Description\n")
	for i := range 1000 {
		fmt.Fprintf(&csv, "L-%05d,Product %d,%s\n", i, i, strings.Repeat("a", 4000))
	}
	if st, body := emuCall(t, "PUT", api+"/jobs/ingest/"+id+"/batches", tok["access_token"], "text/csv", csv.String()); st != 201 {
		t.Fatalf("upload: %d %s", st, body)
	}
	if st, body := emuCall(t, "PATCH", api+"/jobs/ingest/"+id, tok["access_token"], "application/json", `{"state":"UploadComplete"}`); st != 200 {
		t.Fatalf("close: %d %s", st, body)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		_, info := emuCall(t, "GET", api+"/jobs/ingest/"+id, tok["access_token"], "", "")
		if strings.Contains(info, `"state":"JobComplete"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job did not complete: %s", info)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// About 1000 x 20 ms of matching: far longer than the grace.
	q := "SELECT Id FROM Product2 WHERE Description LIKE '%" + strings.Repeat("a_", 1900) + "b%'"
	queryDone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", api+"/query?q="+url.QueryEscape(q), nil)
		req.Header.Set("Authorization", "Bearer "+tok["access_token"])
		res, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err == nil {
			res.Body.Close()
			err = fmt.Errorf("answered %d", res.StatusCode)
		}
		queryDone <- err
	}()
	time.Sleep(500 * time.Millisecond)
	select {
	case err := <-queryDone:
		t.Fatalf("the slow query ended before SIGTERM: %v", err)
	default:
	}
	start := time.Now()
	if err := proc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		took := time.Since(start)
		if err != nil {
			t.Errorf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
		if took > emuGrace+2*time.Second {
			t.Errorf("the emulator took %v to stop; its grace is %v", took, emuGrace)
		}
		t.Logf("stopped %v after SIGTERM (grace %v)", took.Round(time.Millisecond), emuGrace)
	case <-time.After(emuGrace + 15*time.Second):
		t.Fatalf("the emulator did not stop within %v of SIGTERM; stderr:\n%s", emuGrace+15*time.Second, stderr.String())
	}
	select {
	case err := <-queryDone:
		t.Logf("the slow query's client saw: %s", excerpt.Of(err.Error()))
	case <-time.After(5 * time.Second):
		t.Error("the slow query's connection stayed open after the emulator stopped")
	}
}

// TestEmulatorOptionsStar: the emulator's server lets the emulator answer
// "OPTIONS *" (404 in the REST envelope), not net/http's empty 200.
func TestEmulatorOptionsStar(t *testing.T) {
	base, stop, _ := startEmulator(t)
	defer stop()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 404 || !strings.Contains(string(b), `"errorCode":"NOT_FOUND"`) {
		t.Errorf("OPTIONS *: %d %s", res.StatusCode, b)
	}
}
