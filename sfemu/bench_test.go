package sfemu_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/sfemu"
)

// productCSV builds n Product2 rows (keys from start) as the pipeline
// would upload them: 9 columns, about 145 bytes per row.
func productCSV(start, n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 200)
	b.WriteString("External_Id__c,Name,ProductCode,Description,Family,IsActive,Price__c,Launch_Date__c,Last_Changed__c\n")
	fams := []string{"Hardware", "Software", "Services", "Spare Parts"}
	for i := start; i < start+n; i++ {
		fmt.Fprintf(&b, "P-%08d,Product %d,PC-%d,\"A product, number %d, with a \"\"quoted\"\" word\",%s,%t,%d.%02d,2025-%02d-%02d,2025-03-04T10:15:%02d.000Z\n",
			i, i, i%9973, i, fams[i%4], i%3 != 0, i%100000, i%100, i%12+1, i%28+1, i%60)
	}
	return b.Bytes()
}

// resetHWM sets the process's peak resident set size back to its current
// size (Linux >= 4.0), so that each shape reports its own peak.
func resetHWM() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // best effort: the figure is then the process's peak so far
}

// vmHWM returns the process's peak resident set size in bytes (Linux).
func vmHWM() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchClient drives the full Bulk API 2.0 flow over real HTTP.
type benchClient struct {
	b     *testing.B
	base  string
	token string
	hc    *http.Client
}

func (c *benchClient) do(method, path, ctype string, body io.Reader, out io.Writer) int {
	req, err := http.NewRequest(method, c.base+"/services/data/v66.0"+path, body)
	if err != nil {
		c.b.Fatal(err)
	}
	if f, ok := body.(*os.File); ok {
		// Upload a file with its length, as sfmigrate does (a chunked body
		// works too, but is not what is measured here).
		fi, err := f.Stat()
		if err != nil {
			c.b.Fatal(err)
		}
		req.ContentLength = fi.Size()
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.b.Fatal(err)
	}
	defer res.Body.Close()
	if out == nil {
		out = io.Discard
	}
	if _, err := io.Copy(out, res.Body); err != nil {
		c.b.Fatal(err)
	}
	return res.StatusCode
}

// phases accumulates wall time per phase of runJob.
type phases struct {
	mu                        sync.Mutex
	upload, process, download time.Duration
}

func (p *phases) add(u, pr, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.upload += u
	p.process += pr
	p.download += d
}

// runJob uploads one file as an upsert job, waits for it by polling and
// reads the successful and failed results; it returns the result rows.
func (c *benchClient) runJob(path string, ph *phases) int {
	t0 := time.Now()
	var created bytes.Buffer
	if st := c.do("POST", "/jobs/ingest", "application/json", strings.NewReader(upsertProduct), &created); st != 200 {
		c.b.Fatalf("create: %d %s", st, created.String())
	}
	id := created.String()[strings.Index(created.String(), `"id":"`)+6:][:18]
	f, err := os.Open(path)
	if err != nil {
		c.b.Fatal(err)
	}
	defer f.Close()
	if st := c.do("PUT", "/jobs/ingest/"+id+"/batches", "text/csv", f, nil); st != 201 {
		c.b.Fatalf("upload: %d", st)
	}
	t1 := time.Now()
	if st := c.do("PATCH", "/jobs/ingest/"+id, "application/json", strings.NewReader(`{"state":"UploadComplete"}`), nil); st != 200 {
		c.b.Fatalf("close: %d", st)
	}
	for {
		var info bytes.Buffer
		c.do("GET", "/jobs/ingest/"+id, "", nil, &info)
		if strings.Contains(info.String(), `"state":"JobComplete"`) {
			if !strings.Contains(info.String(), `"numberRecordsFailed":0`) {
				c.b.Fatalf("failures: %s", info.String())
			}
			break
		}
		if strings.Contains(info.String(), `"state":"Failed"`) {
			c.b.Fatalf("job failed: %s", info.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	t2 := time.Now()
	rows := 0
	for _, kind := range []string{"successfulResults", "failedResults"} {
		cw := &lineCounter{}
		if st := c.do("GET", "/jobs/ingest/"+id+"/"+kind+"/", "", nil, cw); st != 200 {
			c.b.Fatalf("%s: %d", kind, st)
		}
		rows += cw.lines - 1
	}
	ph.add(t1.Sub(t0), t2.Sub(t1), time.Since(t2))
	return rows
}

type lineCounter struct{ lines int }

func (l *lineCounter) Write(p []byte) (int, error) {
	l.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// BenchmarkBulkUpsert measures the emulator's Bulk API 2.0 upsert
// throughput end to end over real HTTP: token, create, upload, close,
// asynchronous processing, polling and both result downloads, for 1M
// Product2 records in jobs of the size given, `parallel` jobs at a time.
// The CSVs are written to files first and uploaded from disk, as sfmigrate
// does, so the test data is not part of the process's memory. It reports
// records/s, the process's peak RSS for the shape, and the Go heap the
// emulator holds once the jobs are done (the org plus the jobs' uploads
// and results).
func BenchmarkBulkUpsert(b *testing.B) {
	for _, tc := range []struct {
		jobs, perJob, parallel int
	}{
		{10, 100_000, 2},
		{1, 1_000_000, 1},
		{100, 10_000, 4}, // sfmigrate's default batches: 10,000 rows, 4 uploads at a time
	} {
		b.Run(fmt.Sprintf("jobs=%dx%d/parallel=%d", tc.jobs, tc.perJob, tc.parallel), func(b *testing.B) {
			dir := b.TempDir()
			files := make([]string, tc.jobs)
			var bytesUp int
			for i := range files {
				data := productCSV(i*tc.perJob, tc.perJob)
				bytesUp += len(data)
				files[i] = fmt.Sprintf("%s/products_%02d.csv", dir, i)
				if err := os.WriteFile(files[i], data, 0o600); err != nil {
					b.Fatal(err)
				}
			}
			total := tc.jobs * tc.perJob
			b.SetBytes(int64(bytesUp))
			runtime.GC()
			debug.FreeOSMemory()
			resetHWM()
			var heldMB float64
			b.ResetTimer()
			var elapsed time.Duration
			var ph phases
			cpu0 := cpuTime()
			for range b.N {
				b.StopTimer()
				emu := sfemu.New(sfemu.WithMaxUploadBytes(1<<32 - 1))
				srv := httptest.NewServer(emu)
				b.StartTimer()
				start := time.Now()
				c := &benchClient{b: b, base: srv.URL, hc: srv.Client()}
				c.token = benchLogin(b, c)
				var wg sync.WaitGroup
				var mu sync.Mutex
				rows := 0
				next := make(chan string)
				for range tc.parallel {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for f := range next {
							n := c.runJob(f, &ph)
							mu.Lock()
							rows += n
							mu.Unlock()
						}
					}()
				}
				for _, f := range files {
					next <- f
				}
				close(next)
				wg.Wait()
				elapsed += time.Since(start)
				if rows != total {
					b.Fatalf("result rows = %d, want %d", rows, total)
				}
				b.StopTimer()
				heldMB = heapMB()
				runtime.KeepAlive(emu)
				srv.Close()
				emu.Close()
				runtime.GC()
				b.StartTimer()
			}
			b.ReportMetric(float64(total)*float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(vmHWM())/(1<<20), "peak-RSS-MB")
			b.ReportMetric(heldMB, "held-heap-MB")
			// CPU seconds of the whole process (emulator and client) per
			// million records: robust against other load on the machine.
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N)/(float64(total)/1e6), "cpu-s/Mrec")
			n := float64(b.N)
			b.ReportMetric(ph.upload.Seconds()/n, "upload-s")
			b.ReportMetric(ph.process.Seconds()/n, "process-s")
			b.ReportMetric(ph.download.Seconds()/n, "results-s")
		})
	}
}

// heapMB is the live Go heap after a collection, in MiB.
func heapMB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

func benchLogin(b *testing.B, c *benchClient) string {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sfemu.TestClientID}, "client_secret": {sfemu.TestClientSecret}}
	res, err := c.hc.PostForm(c.base+"/services/oauth2/token", form)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(bufio.NewReader(res.Body))
	s := string(body)
	i := strings.Index(s, `"access_token":"`) + len(`"access_token":"`)
	return s[i : i+strings.IndexByte(s[i:], '"')]
}
