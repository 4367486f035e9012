package sfemu

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestIDChecksum(t *testing.T) {
	// A real Salesforce example: 001A0000006Vm9r -> 001A0000006Vm9rIAC.
	got := string(appendIDSuffix(nil, []byte("001A0000006Vm9r")))
	if got != "IAC" {
		t.Errorf("suffix = %q, want IAC", got)
	}
	id := makeID("01t", 123456789)
	if len(id) != 18 || id[:3] != "01t" {
		t.Fatalf("id %q", id)
	}
	// 18-character IDs are case-insensitive: the suffix restores the case.
	for _, in := range []string{id, id[:15], strings.ToUpper(id), strings.ToLower(id)} {
		p, seq, ok := parseID(in)
		if !ok || p != "01t" || seq != 123456789 {
			t.Errorf("parseID(%q) = %q %d %v", in, p, seq, ok)
		}
	}
	if _, _, ok := parseID(id[:17] + "9"); ok {
		t.Error("a bad suffix was accepted")
	}
	if _, _, ok := parseID("short"); ok {
		t.Error("a short id was accepted")
	}
}

func TestPanicAnswers500InEnvelope(t *testing.T) {
	saved := routes
	t.Cleanup(func() { routes = saved })
	routes = append(append([]route(nil), saved...), route{segs: []string{"boom"}, methods: map[string]handlerFunc{
		"GET": func(*Server, *request) (*reply, error) { panic("kaboom") },
	}})
	var logged bytes.Buffer
	srv := httptest.NewServer(New(WithLogger(func(f string, a ...any) { logged.WriteString(f) })))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 500 || !strings.HasPrefix(string(body), `[{"message":"An unexpected error occurred. Please include this ErrorId if you contact support: `) ||
		!strings.HasSuffix(string(body), `","errorCode":"UNKNOWN_EXCEPTION"}]`) {
		t.Errorf("panic answer: %d %s", res.StatusCode, body)
	}
	if !strings.Contains(logged.String(), "panic") {
		t.Error("the panic was not logged")
	}
	// The server still works.
	res, err = http.Get(srv.URL + "/services/data/")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("after panic: %v %v", res, err)
	}
	res.Body.Close()
}

func TestHandlerErrorIs500(t *testing.T) {
	saved := routes
	t.Cleanup(func() { routes = saved })
	routes = append(append([]route(nil), saved...), route{segs: []string{"fail"}, methods: map[string]handlerFunc{
		"GET": func(*Server, *request) (*reply, error) { return nil, errors.New("disk on fire") },
	}})
	srv := httptest.NewServer(New())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/fail")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 500 || !strings.Contains(string(body), "UNKNOWN_EXCEPTION") || strings.Contains(string(body), "disk on fire") {
		t.Errorf("internal error: %d %s", res.StatusCode, body)
	}
}

// FuzzCSVReader checks the reader never panics and agrees with
// encoding/csv on input both accept.
func FuzzCSVReader(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "a,\"b\nc\",d\n", "\"x\"\"y\",z", "a,b", ",\n,,\n", "\"unterminated\n", "a\"b,c\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rd := newCSVReader(data, ',', false)
		var got [][]string
		bad := false
		for rd.next() {
			if rd.bad != "" {
				bad = true
			}
			row := make([]string, len(rd.fields))
			for i, f := range rd.fields {
				row[i] = string(f)
			}
			got = append(got, row)
			if len(got) > len(data)+1 {
				t.Fatal("reader does not advance")
			}
		}
		if bad || bytes.ContainsRune(data, '\r') {
			return
		}
		want, err := func() ([][]string, error) {
			r := csv.NewReader(bytes.NewReader(data))
			r.FieldsPerRecord = -1
			return r.ReadAll()
		}()
		if err != nil {
			return
		}
		if len(want) != len(got) {
			t.Fatalf("%q: %d records, encoding/csv %d (%q vs %q)", data, len(got), len(want), got, want)
		}
		for i := range want {
			if strings.Join(want[i], "\x00") != strings.Join(got[i], "\x00") {
				t.Fatalf("%q: record %d = %q, encoding/csv %q", data, i, got[i], want[i])
			}
		}
	})
}

// productRows builds n Product2 rows as the bulk benchmark uploads them.
func productRows(n int) []byte {
	var b bytes.Buffer
	b.WriteString("External_Id__c,Name,ProductCode,Description,Family,IsActive,Price__c,Launch_Date__c,Last_Changed__c\n")
	fams := []string{"Hardware", "Software", "Services", "Spare Parts"}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "P-%08d,Product %d,PC-%d,\"A product, number %d, with a \"\"quoted\"\" word\",%s,%t,%d.%02d,2025-%02d-%02d,2025-03-04T10:15:%02d.000Z\n",
			i, i, i%9973, i, fams[i%4], i%3 != 0, i%100000, i%100, i%12+1, i%28+1, i%60)
	}
	return b.Bytes()
}

// BenchmarkCSVReader splits 100k Product2 rows (one quoted value with
// doubled quotes each) the way a job is processed.
func BenchmarkCSVReader(b *testing.B) {
	data := productRows(100_000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rd := newCSVReader(data, ',', false)
		for rd.next() {
		}
	}
}
