package sfemu_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// rawRequest writes a request head and body on a fresh TCP connection,
// half-closes it and reads the answer, so that bodies cut short and
// lengths that lie can be sent.
func rawRequest(t *testing.T, c *tc, head, body string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(c.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // a hang fails the test instead of blocking it
	if _, err := io.WriteString(conn, head+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

// TestBodiesCutShort: an upload or JSON body that ends before its
// Content-Length, or a chunked body without its last chunk, is answered
// with a 400 in the REST envelope, and the job still takes a proper upload.
func TestBodiesCutShort(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	id := c.createJob(upsertProduct)
	host := strings.TrimPrefix(c.srv.URL, "http://")
	auth := "Authorization: Bearer " + c.token + "\r\n"
	for _, tt := range []struct{ name, head, body string }{
		{"upload shorter than Content-Length", "PUT " + c.v + "/jobs/ingest/" + id + "/batches HTTP/1.1\r\nHost: " + host + "\r\n" + auth +
			"Content-Type: text/csv\r\nContent-Length: 1000\r\n", "External_Id__c,Name\nP-1,A\n"},
		{"chunked upload without its last chunk", "PUT " + c.v + "/jobs/ingest/" + id + "/batches HTTP/1.1\r\nHost: " + host + "\r\n" + auth +
			"Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n", "14\r\nExternal_Id__c,Name\n\r\n8\r\nP-1,"},
		{"gzip upload that is not gzip", "PUT " + c.v + "/jobs/ingest/" + id + "/batches HTTP/1.1\r\nHost: " + host + "\r\n" + auth +
			"Content-Type: text/csv\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n", "hello"},
		{"JSON body shorter than Content-Length", "POST " + c.v + "/sobjects/Account HTTP/1.1\r\nHost: " + host + "\r\n" + auth +
			"Content-Type: application/json\r\nContent-Length: 100\r\n", `{"Name":"A`},
		{"create job body cut", "POST " + c.v + "/jobs/ingest HTTP/1.1\r\nHost: " + host + "\r\n" + auth +
			"Content-Type: application/json\r\nContent-Length: 100\r\n", `{"object":"Account"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := rawRequest(t, c, tt.head, tt.body)
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != 400 || res.Header.Get("Content-Type") != "application/json;charset=UTF-8" || !strings.HasPrefix(string(b), `[{"message":`) {
				t.Errorf("%d %s %s", res.StatusCode, res.Header.Get("Content-Type"), b)
			}
		})
	}
	if r := c.upload(id, "External_Id__c,Name\nP-1,A\n"); r.status != 201 {
		t.Fatalf("a proper upload after the broken ones: %d %s", r.status, r.body)
	}
	if r := c.patch("/jobs/ingest/"+id, `{"state":"UploadComplete"}`); r.status != 200 {
		t.Fatalf("close: %d %s", r.status, r.body)
	}
	if info := c.jobInfo(id); info["state"] != "JobComplete" || info["numberRecordsProcessed"] != 1.0 {
		t.Errorf("job = %v", info)
	}
	if n := len(c.query("SELECT Id FROM Account")); n != 0 {
		t.Errorf("a cut JSON body created %d accounts", n)
	}
}

// TestConcurrentJobLifecycle races uploads, closes, aborts, deletes, info
// and result reads on the same jobs. Whatever wins, every answer is a
// documented one, the job ends in a consistent state, and `go test -race`
// finds no data race.
func TestConcurrentJobLifecycle(t *testing.T) {
	for _, mode := range []sfemu.ProcessingMode{sfemu.ProcessInstant, sfemu.ProcessAsync} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			c := newTC(t, sfemu.WithProcessing(mode, 0))
			var b strings.Builder
			b.WriteString("External_Id__c,Name\n")
			for i := range 3000 {
				fmt.Fprintf(&b, "P-%d,Name %d\n", i, i)
			}
			data := b.String()
			ok := map[string]map[int]bool{
				"PUT":    {201: true, 400: true, 404: true},
				"PATCH":  {200: true, 400: true, 404: true},
				"DELETE": {204: true, 400: true, 404: true},
				"GET":    {200: true, 400: true, 404: true},
			}
			for round := range 8 {
				id := c.createJob(upsertProduct)
				job := c.v + "/jobs/ingest/" + id
				var wg sync.WaitGroup
				calls := []func() (string, resp){
					func() (string, resp) { return "PUT", c.upload(id, data) },
					func() (string, resp) { return "PUT", c.upload(id, data) },
					func() (string, resp) { return "PATCH", c.patch("/jobs/ingest/"+id, `{"state":"UploadComplete"}`) },
					func() (string, resp) { return "PATCH", c.patch("/jobs/ingest/"+id, `{"state":"Aborted"}`) },
					func() (string, resp) { return "DELETE", c.do("DELETE", job, "", "", true) },
					func() (string, resp) { return "GET", c.get("/jobs/ingest/" + id) },
					func() (string, resp) { return "GET", c.get("/jobs/ingest/" + id + "/successfulResults/") },
					func() (string, resp) { return "GET", c.get("/jobs/ingest/" + id + "/unprocessedrecords/") },
				}
				// Rotate the order so that each call gets to go first.
				for i := range calls {
					call := calls[(i+round)%len(calls)]
					wg.Add(1)
					go func() {
						defer wg.Done()
						method, r := call()
						if !ok[method][r.status] {
							t.Errorf("round %d: %s answered %d %s", round, method, r.status, r.body)
						}
						if r.status >= 400 && !strings.HasPrefix(r.body, `[{"message":`) {
							t.Errorf("round %d: %s error outside the envelope: %s", round, method, r.body)
						}
					}()
				}
				wg.Wait()
				// Whatever happened, the job is gone or settles in a state
				// its results agree with.
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				state, err := c.emu.AwaitJob(ctx, id, "Open", "JobComplete", "Failed", "Aborted")
				cancel()
				if err != nil {
					if strings.Contains(err.Error(), "no such job") {
						continue // deleted
					}
					t.Fatalf("round %d: %v", round, err)
				}
				if state == "Open" {
					continue // the close lost every race and the abort too: nothing to check
				}
				if state != "JobComplete" && state != "Failed" && state != "Aborted" {
					continue
				}
				info := c.jobInfo(id)
				_, succ := c.results(id, "successfulResults")
				_, failed := c.results(id, "failedResults")
				_, unproc := c.results(id, "unprocessedrecords")
				processed := len(succ) - 1 + len(failed) - 1
				if float64(processed) != info["numberRecordsProcessed"].(float64) {
					t.Errorf("round %d: %v processed, results hold %d", round, info["numberRecordsProcessed"], processed)
				}
				uploaded := c.emu.Jobs()
				for _, j := range uploaded {
					if j.ID == id && j.UploadedBytes > 0 && processed+len(unproc)-1 != 3000 {
						t.Errorf("round %d (%s): %d processed + %d unprocessed rows, uploaded 3000", round, state, processed, len(unproc)-1)
					}
				}
			}
		})
	}
}
