package sfemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// appendPlainDouble must print exactly what the general path prints
// (javaDouble of the parsed value) whenever it accepts a value.
func TestAppendPlainDoubleMatchesJavaDouble(t *testing.T) {
	check := func(v string) bool {
		got, ok := appendPlainDouble(nil, []byte(v))
		if !ok {
			return false
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("%q accepted by the fast path but not a float: %v", v, err)
		}
		if want := string(javaDouble(nil, x)); string(got) != want {
			t.Errorf("%q: fast path %q, javaDouble %q", v, got, want)
		}
		return true
	}
	for _, v := range []string{"1", "5", "-5", "10", "8322.34", "97232.6", "99999.00", "1.0", "1.", "1.50",
		"9999999", "9999999.99999999", "1234567.12345678", "-1234567.1234567", "100.000"} {
		if !check(v) {
			t.Errorf("%q: fast path refused a plain decimal", v)
		}
	}
	for _, v := range []string{"", "-", "0", "0.5", "00.5", "012", "10000000", "1e5", "1.5E3", "+5", ".5", "1.2.3",
		"12345678.5", "1234567.123456789", " 1", "1 ", "1,5", "NaN", "Infinity"} {
		if _, ok := appendPlainDouble(nil, []byte(v)); ok {
			t.Errorf("%q: fast path accepted it", v)
		}
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	for range 200_000 {
		ip := r.IntN(10_000_000)
		frac := r.IntN(100_000_000)
		fd := r.IntN(9)
		v := strconv.Itoa(ip)
		if fd > 0 {
			v += "." + fmt.Sprintf("%0*d", fd, frac%ipow10(fd))
		}
		if r.IntN(2) == 0 {
			v = "-" + v
		}
		check(v)
	}
}

func ipow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}

// appendSavedRow must render every saved row exactly as the general
// appendRow does, for any quoting, delimiter and line ending.
func TestAppendSavedRowMatchesAppendRow(t *testing.T) {
	s := New(WithProcessing(ProcessInstant, 0), WithoutShuffle())
	srv := httptest.NewServer(s)
	defer srv.Close()
	defer s.Close()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {TestClientID}, "client_secret": {TestClientSecret}}
	res, err := http.PostForm(srv.URL+"/services/oauth2/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	call := func(method, path, ctype, body string) string {
		req, _ := http.NewRequest(method, srv.URL+"/services/data/v66.0"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Content-Type", ctype)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
		return string(b)
	}
	for n, tc := range []struct{ delim, le, data string }{
		{"COMMA", "LF", "External_Id__c,Name,Description,Price__c,IsActive,Family,Last_Changed__c,Launch_Date__c\n" +
			"K1,Plain,text,12.50,true,Hardware,2025-03-04T10:15:00.000Z,2025-01-02\n" +
			"\"K2\",\"Quoted, \"\"name\"\"\",\"multi\nline\",\"7\",\"TRUE\",\"hardware\",\"2025-03-04T10:15:00+02:00\",\n" +
			"K3,,,#N/A,,,,\n" +
			"\n" +
			"K4,Last,\"ends quoted\",1e3,false,Software,2025-03-04T10:15:00Z,2024-02-29\n" +
			"K5,No final newline,x,-0.5,true,Software,2025-03-04T10:15:00.123Z,2024-02-29"},
		{"TAB", "CRLF", "External_Id__c\tName\tPrice__c\r\nT1\tTab, comma\t3\r\n\"T2\"\t\"q\"\"q\"\t\"4.10\"\r\n"},
		{"SEMICOLON", "LF", "Name;External_Id__c\n\"a;b\";S1\nplain;\"S2\"\n"},
	} {
		body := `{"object":"Product2","operation":"upsert","externalIdFieldName":"External_Id__c","columnDelimiter":"` + tc.delim + `","lineEnding":"` + tc.le + `"}`
		created := call("POST", "/jobs/ingest", "application/json", body)
		var job struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal([]byte(created), &job)
		call("PUT", "/jobs/ingest/"+job.ID+"/batches", "text/csv", tc.data)
		call("PATCH", "/jobs/ingest/"+job.ID, "application/json", `{"state":"UploadComplete"}`)
		j, _, aerr := s.store.jobResultsReady(job.ID)
		if aerr != nil {
			t.Fatalf("case %d: job %s: %v", n, job.ID, aerr)
		}
		r := s.store.jobResults(j)
		if saved := compareSavedRows(t, r); saved < 2 {
			t.Errorf("case %d: only %d rows saved; the case tests too little", n, saved)
		}
	}
}

// appendPlainDecimal must store exactly what the general conversion
// stores whenever it accepts a value.
func TestAppendPlainDecimalMatchesGeneral(t *testing.T) {
	for _, f := range []*field{
		{name: "Price__c", kind: kindDouble, precision: 18, scale: 2},
		{name: "Ratio__c", kind: kindDouble, precision: 8, scale: 5},
		{name: "Whole__c", kind: kindDouble, precision: 5, scale: 0},
	} {
		general := func(v string) string {
			out, e := convertValueGeneral(f, []byte(v))
			if e != nil {
				return "ERR"
			}
			return out
		}
		check := func(v string) {
			got, ok := appendPlainDecimal(nil, []byte(v), f)
			if !ok {
				return
			}
			if want := general(v); string(got) != want {
				t.Errorf("%s %q: fast %q, general %q", f.name, v, got, want)
			}
		}
		for _, v := range []string{"0", "-0", "0.00", "-0.0", "0.5", "-0.25", "12", "12.", "12.50", "100.00", "1234567890123456", "99999", "100000", "-99999.5", "0.00001", "007"} {
			check(v)
		}
		r := mrand.New(mrand.NewPCG(3, 4))
		for range 100_000 {
			v := strconv.Itoa(r.IntN(pow10i(r.IntN(10))))
			if fd := r.IntN(7); fd > 0 {
				v += "." + fmt.Sprintf("%0*d", fd, r.IntN(ipow10(fd)))
			}
			if r.IntN(3) == 0 {
				v = "-" + v
			}
			check(v)
		}
	}
}

func pow10i(n int) int { return max(ipow10(n), 1) }

// convertValueGeneral is convertValue's double branch without the fast path.
func convertValueGeneral(f *field, v []byte) (string, *rowErr) {
	// A value with one more fraction digit than allowed never takes the
	// fast path; appending a zero keeps the number and forces the general path.
	w := append([]byte(nil), v...)
	if !bytes.Contains(w, []byte(".")) {
		w = append(w, '.')
	}
	for range f.scale + 1 {
		w = append(w, '0')
	}
	out, e := convertValue(f, w, nil)
	return string(out), e
}

// compareSavedRows checks appendSavedRow against appendRow for every saved
// row of r and returns how many rows were saved.
func compareSavedRows(t *testing.T, r *jobResults) int {
	t.Helper()
	saved := 0
	if r == nil || len(r.cols) != len(r.header) {
		return 0
	}
	for i, st := range r.status {
		if st == rowFailed {
			continue
		}
		saved++
		want, _ := r.appendRow(nil, nil, newCSVReader(nil, r.delim, r.crlf), i, false)
		got, _ := r.appendSavedRow(nil, nil, i)
		if string(got) != string(want) {
			t.Errorf("row %d: fast %q, general %q", i, got, want)
		}
	}
	return saved
}

// FuzzSavedRowRendering: for any upload, every saved row renders the same
// through the one-pass path as through the CSV reader.
func FuzzSavedRowRendering(f *testing.F) {
	f.Add("External_Id__c,Name,Description,Price__c,IsActive\nK1,a,\"b \"\"c\"\"\",1.50,true\n", false)
	f.Add("External_Id__c;Name\r\n\"K;1\";x\r\nK2;\"y\r\nz\"\r\n", true)
	s := New(WithProcessing(ProcessInstant, 0), WithoutShuffle(), WithAPILimit(1<<62))
	defer s.Close()
	f.Fuzz(func(t *testing.T, data string, semicolonCRLF bool) {
		delim, le := byte(','), "LF"
		if semicolonCRLF {
			delim, le = ';', "CRLF"
		}
		ext := s.org.object("Product2")
		info := s.store.createJob(jobSpec{obj: ext, operation: "upsert", extField: ext.byName["external_id__c"],
			lineEnding: le, delim: delim, apiVersion: APIVersion}, s.now())
		up, aerr := s.store.beginUpload(info.ID)
		if aerr != nil {
			t.Fatal(aerr)
		}
		if err := s.store.endUpload(up, []byte(data), nil); err != nil {
			t.Fatal(err)
		}
		j, _, _, aerr := s.store.setJobState(info.ID, StateUploadComplete, false)
		if aerr != nil {
			t.Fatal(aerr)
		}
		s.processJob(j)
		compareSavedRows(t, s.store.jobResults(j))
	})
}
