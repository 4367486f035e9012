package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// apiCall sends one authorised request to the emulator and decodes a JSON answer.
func apiCall(t *testing.T, base, tok, method, path, ctype, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, base+"/services/data/v66.0"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out) // not every answer is an object
	return res.StatusCode, out
}

func TestEmulatorOrgModelFlags(t *testing.T) {
	const wait = 400 * time.Millisecond
	base, stop, stderr := startEmulator(t, "--queue-wait", wait.String(), "--org-jobs", "1", "--org-rate", "100000")
	defer func() {
		if code := stop(); code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	}()
	_, tok := token(t, base, sfemu.TestClientID, sfemu.TestClientSecret)
	at := tok["access_token"]
	st, job := apiCall(t, base, at, "POST", "/jobs/ingest", "application/json",
		`{"object":"Product2","operation":"upsert","externalIdFieldName":"External_Id__c","lineEnding":"LF"}`)
	if st != 200 {
		t.Fatalf("create: %d %v", st, job)
	}
	id := job["id"].(string)
	if st, _ := apiCall(t, base, at, "PUT", "/jobs/ingest/"+id+"/batches", "text/csv", "External_Id__c,Name\nK-1,One\nK-2,Two\n"); st != 201 {
		t.Fatalf("upload: %d", st)
	}
	closed := time.Now()
	if st, _ := apiCall(t, base, at, "PATCH", "/jobs/ingest/"+id, "application/json", `{"state":"UploadComplete"}`); st != 200 {
		t.Fatalf("close: %d", st)
	}
	for {
		_, info := apiCall(t, base, at, "GET", "/jobs/ingest/"+id, "", "")
		state := info["state"]
		if state == sfemu.StateJobComplete {
			if el := time.Since(closed); el < wait {
				t.Errorf("job complete %v after the close, before --queue-wait %v", el, wait)
			}
			if info["numberRecordsProcessed"] != float64(2) {
				t.Errorf("processed %v", info["numberRecordsProcessed"])
			}
			return
		}
		if state != sfemu.StateUploadComplete && state != sfemu.StateInProgress {
			t.Fatalf("state %v", state)
		}
		if time.Since(closed) > 30*time.Second {
			t.Fatal("job not complete after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEmulatorOrgModelFlagErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--org-jobs", "0"}, "--org-jobs 0 must be at least 1"},
		{[]string{"--lock-rate", "2"}, "lock rate 2 is not a share between 0 and 1"},
		{[]string{"--queue-wait", "-1s"}, "queue wait -1s must not be negative"},
		{[]string{"--org-model", "--processing", "instant"}, `needs --processing async, not "instant"`},
	} {
		code, stdout, stderr := runMain(t, append([]string{"emulator"}, tt.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q (want %q), stdout %q", tt.args, code, stderr, tt.want, stdout)
		}
	}
	// Without any model flag, instant processing stays allowed.
	if _, err := parseAndValidate(Env{Stderr: io.Discard, Getenv: func(string) string { return "" }}, parseEmulator, []string{"--processing", "instant"}); err != nil {
		t.Errorf("--processing instant alone: %v", err)
	}
}
