package sfemu_test

import (
	"bytes"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// BenchmarkQuery measures SOQL queries over real HTTP against 100,000
// Product2 records: a full scan with an equality filter, a LIKE filter
// with several wildcards, and a filtered, sorted first page.
func BenchmarkQuery(b *testing.B) {
	emu := sfemu.New(sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	defer emu.Close()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	c := &benchClient{b: b, base: srv.URL, hc: srv.Client()}
	c.token = benchLogin(b, c)
	var created bytes.Buffer
	if st := c.do("POST", "/jobs/ingest", "application/json", strings.NewReader(upsertProduct), &created); st != 200 {
		b.Fatalf("create: %d %s", st, created.String())
	}
	id := created.String()[strings.Index(created.String(), `"id":"`)+6:][:18]
	if st := c.do("PUT", "/jobs/ingest/"+id+"/batches", "text/csv", bytes.NewReader(productCSV(0, 100_000)), nil); st != 201 {
		b.Fatalf("upload: %d", st)
	}
	if st := c.do("PATCH", "/jobs/ingest/"+id, "application/json", strings.NewReader(`{"state":"UploadComplete"}`), nil); st != 200 {
		b.Fatalf("close: %d", st)
	}
	for _, q := range []struct{ name, soql, want string }{
		{"count-eq", "SELECT COUNT() FROM Product2 WHERE Family = 'Hardware'", `"totalSize":25000`},
		{"count-like", "SELECT COUNT() FROM Product2 WHERE Name LIKE '%d%c%1%2%'", `"totalSize":`},
		{"order-page", "SELECT Id, Name, Price__c FROM Product2 WHERE IsActive = true ORDER BY Price__c DESC LIMIT 200", `"totalSize":200`},
	} {
		b.Run(q.name, func(b *testing.B) {
			c.b = b
			for b.Loop() {
				var out bytes.Buffer
				if st := c.do("GET", "/query?q="+url.QueryEscape(q.soql), "", nil, &out); st != 200 || !strings.Contains(out.String(), q.want) {
					b.Fatalf("%s: %d %.300s", q.soql, st, out.String())
				}
			}
		})
	}
}
