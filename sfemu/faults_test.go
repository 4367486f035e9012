package sfemu_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

func TestFaultStatus(t *testing.T) {
	c := newTC(t)
	c.emu.AddFault(sfemu.Fault{Method: "POST", Path: "/jobs/ingest", Count: 2, Status: 503})
	for i := range 2 {
		r := c.post("/jobs/ingest", upsertProduct)
		if r.status != 503 || r.body != `[{"message":"Server too busy","errorCode":"SERVER_UNAVAILABLE"}]` {
			t.Fatalf("call %d: %d %s", i, r.status, r.body)
		}
	}
	if len(c.emu.Jobs()) != 0 {
		t.Fatal("a faulted request must not be handled")
	}
	if r := c.post("/jobs/ingest", upsertProduct); r.status != 200 {
		t.Fatalf("after the fault: %d %s", r.status, r.body)
	}
	c.emu.AddFault(sfemu.Fault{Count: 1, Status: 429})
	if r := c.get("/jobs/ingest"); r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Errorf("429: %d %v", r.status, r.header)
	}
	c.emu.AddFault(sfemu.Fault{Count: 1, Status: 502})
	if r := c.get("/jobs/ingest"); r.status != 502 || !strings.HasPrefix(r.body, "<html>") {
		t.Errorf("502 from the edge is HTML: %d %s", r.status, r.body)
	}
	c.emu.AddFault(sfemu.Fault{Share: 1, Status: 500})
	for range 3 {
		if r := c.get("/jobs/ingest"); r.status != 500 || r.errorCode() != "UNKNOWN_EXCEPTION" {
			t.Errorf("share 1: %d %s", r.status, r.body)
		}
	}
	c.emu.ClearFaults()
	if r := c.get("/jobs/ingest"); r.status != 200 {
		t.Errorf("after ClearFaults: %d", r.status)
	}
}

func TestFaultDrop(t *testing.T) {
	c := newTC(t)
	do := func() error {
		req, _ := newRequest(t, "POST", c.srv.URL+c.v+"/jobs/ingest", upsertProduct)
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Content-Type", "application/json")
		res, err := c.srv.Client().Do(req)
		if err == nil {
			res.Body.Close()
		}
		return err
	}
	c.emu.AddFault(sfemu.Fault{Path: "/jobs/ingest", Count: 1, Drop: true})
	if err := do(); err == nil {
		t.Fatal("dropped request returned a response")
	}
	if n := len(c.emu.Jobs()); n != 0 {
		t.Fatalf("Drop must not handle the request; %d jobs", n)
	}
	c.emu.AddFault(sfemu.Fault{Path: "/jobs/ingest", Count: 1, DropAfterHandling: true})
	if err := do(); err == nil {
		t.Fatal("DropAfterHandling returned a response")
	}
	if n := len(c.emu.Jobs()); n != 1 {
		t.Fatalf("DropAfterHandling must handle the request; %d jobs", n)
	}
}

func TestFaultLatency(t *testing.T) {
	c := newTC(t)
	c.emu.AddFault(sfemu.Fault{Count: 1, Latency: 30 * time.Millisecond})
	start := time.Now()
	if r := c.get("/jobs/ingest"); r.status != 200 {
		t.Fatalf("%d", r.status)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("latency fault took %v", d)
	}
}

func TestLockRecords(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	c.emu.LockRecords("Product2", "P-2")
	id, info := c.runJob(upsertProduct, "External_Id__c,Name\nP-1,A\nP-2,B\n")
	if info["numberRecordsFailed"].(float64) != 1 || info["retries"].(float64) < 1 {
		t.Errorf("info = %v", info)
	}
	_, rows := c.results(id, "failedResults")
	if f := byColumn(t, rows, "External_Id__c")["P-2"]; f["sf__Error"] != "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 1 records:--" {
		t.Errorf("failed = %v", f)
	}
	// Also REST, and the lock names the existing record.
	c.emu.LockRecords("Migration_Status__c", "T1")
	r := c.patch("/sobjects/Migration_Status__c/External_Ref__c/T1", `{"Status__c":"Uploaded"}`)
	if r.status != 400 || r.errorCode() != "UNABLE_TO_LOCK_ROW" {
		t.Errorf("REST locked: %d %s", r.status, r.body)
	}
	c.emu.UnlockRecords("Migration_Status__c")
	if r := c.patch("/sobjects/Migration_Status__c/External_Ref__c/T1", `{"Status__c":"Uploaded"}`); r.status != 201 {
		t.Errorf("after unlock: %d %s", r.status, r.body)
	}
}

func TestAsyncProcessingAndAwait(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessAsync, 20*time.Millisecond))
	id := c.createJob(upsertProduct)
	c.upload(id, "External_Id__c,Name\nP-1,A\n")
	c.patch("/jobs/ingest/"+id, `{"state":"UploadComplete"}`)
	if got := c.jobInfo(id)["state"]; got != "UploadComplete" {
		t.Errorf("right after close: %v", got)
	}
	st, err := c.emu.AwaitJob(t.Context(), id)
	if err != nil || st != "JobComplete" {
		t.Fatalf("AwaitJob = %q, %v", st, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	id2 := c.createJob(upsertProduct)
	if _, err := c.emu.AwaitJob(ctx, id2, "JobComplete"); err == nil {
		t.Error("AwaitJob on an Open job returned before the deadline")
	}
	if _, err := c.emu.AwaitJob(t.Context(), "750000000000000AAA"); err == nil {
		t.Error("AwaitJob on an unknown job succeeded")
	}
	snaps := c.emu.Jobs()
	if len(snaps) != 2 || snaps[0].State != "JobComplete" || snaps[0].NumberRecordsProcessed != 1 || snaps[0].Object != "Product2" {
		t.Errorf("Jobs() = %+v", snaps)
	}
}

func TestConcurrentJobs(t *testing.T) {
	c := newTC(t)
	done := make(chan string)
	for w := range 4 {
		go func() {
			var b strings.Builder
			b.WriteString("External_Id__c,Name\n")
			for i := range 500 {
				fmt.Fprintf(&b, "W%d-%d,N\n", w, i)
			}
			id := c.createJobNoFatal()
			req, _ := http.NewRequestWithContext(t.Context(), "PUT", c.srv.URL+c.v+"/jobs/ingest/"+id+"/batches", strings.NewReader(b.String()))
			req.Header.Set("Authorization", "Bearer "+c.token)
			req.Header.Set("Content-Type", "text/csv")
			if res, err := c.srv.Client().Do(req); err == nil {
				res.Body.Close()
			}
			req, _ = http.NewRequestWithContext(t.Context(), "PATCH", c.srv.URL+c.v+"/jobs/ingest/"+id, strings.NewReader(`{"state":"UploadComplete"}`))
			req.Header.Set("Authorization", "Bearer "+c.token)
			if res, err := c.srv.Client().Do(req); err == nil {
				res.Body.Close()
			}
			done <- id
		}()
	}
	for range 4 {
		id := <-done
		if st, err := c.emu.AwaitJob(t.Context(), id); err != nil || st != "JobComplete" {
			t.Errorf("job %s: %s %v", id, st, err)
		}
	}
	r := c.get("/query?q=SELECT+COUNT()+FROM+Product2")
	if !strings.Contains(r.body, `"totalSize":2000`) {
		t.Errorf("4 concurrent jobs x 500 rows: %s", r.body)
	}
}

func (c *tc) createJobNoFatal() string {
	req, _ := http.NewRequestWithContext(c.t.Context(), "POST", c.srv.URL+c.v+"/jobs/ingest", strings.NewReader(upsertProduct))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := c.srv.Client().Do(req)
	if err != nil {
		return ""
	}
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	s := b.String()
	i := strings.Index(s, `"id":"`)
	return s[i+6 : i+6+18]
}

// TestFaultOnlyFiringFaultSpends: when several armed faults match one
// request, the first outcome fault answers it and only that one spends
// one of its Count; the others stay armed for the next requests.
func TestFaultOnlyFiringFaultSpends(t *testing.T) {
	c := newTC(t)
	c.emu.AddFault(sfemu.Fault{Path: "/jobs/ingest", Count: 1, Status: 503})
	c.emu.AddFault(sfemu.Fault{Count: 2, Status: 429})
	c.emu.AddFault(sfemu.Fault{Method: "PATCH", Count: 1, Drop: true})
	for i, want := range []int{503, 429, 429} {
		if r := c.post("/jobs/ingest", upsertProduct); r.status != want {
			t.Fatalf("request %d: %d %s, want %d", i+1, r.status, r.body, want)
		}
	}
	// Only the PATCH drop fault is left, untouched by the POSTs above.
	// (PATCH, because Go's client resends a GET whose connection drops.)
	id := c.createJob(upsertProduct)
	req, _ := newRequest(t, "PATCH", c.srv.URL+c.v+"/jobs/ingest/"+id, `{"state":"Aborted"}`)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	if res, err := c.srv.Client().Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("the PATCH drop fault did not fire: %d", res.StatusCode)
	}
	if r := c.patch("/jobs/ingest/"+id, `{"state":"Aborted"}`); r.status != 200 {
		t.Fatalf("after every fault was spent: %d %s", r.status, r.body)
	}
}

func TestLockRecordsForClearsAfterAttempts(t *testing.T) {
	c := newTC(t, sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	c.emu.LockRecordsFor("Product2", 2, "P-2")
	for attempt := 1; attempt <= 3; attempt++ {
		_, info := c.runJob(upsertProduct, "External_Id__c,Name\nP-1,A\nP-2,B\n")
		want := 0.0
		if attempt <= 2 {
			want = 1 // the first two writes of P-2 meet the lock
		}
		if got := info["numberRecordsFailed"].(float64); got != want {
			t.Errorf("attempt %d: numberRecordsFailed = %v, want %v", attempt, got, want)
		}
	}
}
