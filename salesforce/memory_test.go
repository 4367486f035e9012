package salesforce_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sfmigrate/sfmigrate/salesforce"
	"github.com/sfmigrate/sfmigrate/sfemu"
)

// The memory tests run the emulator in a child process (this test binary,
// re-executed), so the heap measured here is the client's alone: the
// emulator must hold the uploaded data, the client must not.
const childEnv = "SALESFORCE_TEST_EMULATOR_CHILD"

// TestEmulatorProcess is not a test: it is the child process that serves
// an emulator for the memory tests. Every job it processes ends Failed
// with all rows unprocessed, so the unprocessedrecords download returns
// the whole upload without the emulator building records.
func TestEmulatorProcess(t *testing.T) {
	if os.Getenv(childEnv) != "1" {
		t.Skip("helper process for the memory tests")
	}
	emu := sfemu.New(sfemu.WithMaxUploadBytes(4<<30-1), sfemu.WithProcessing(sfemu.ProcessInstant, 0))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch {
			emu.FailNextJob("InvalidBatch : failed on purpose by the memory test")
		}
		emu.ServeHTTP(w, r)
	}))
	fmt.Printf("URL http://%s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin) // serve until the parent closes stdin
}

// startEmulatorProcess starts TestEmulatorProcess and returns its URL.
func startEmulatorProcess(t testing.TB) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEmulatorProcess$", "-test.count=1", "-test.timeout=30m")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill() // our own child, by pid
			<-done
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if url, ok := strings.CutPrefix(sc.Text(), "URL "); ok {
			go io.Copy(io.Discard, stdout)
			return url
		}
	}
	t.Fatalf("emulator process gave no URL: %v", sc.Err())
	return ""
}

// writeBigCSV stream-writes a Product2 CSV of about size bytes.
func writeBigCSV(t testing.TB, path string, size int64) (rows int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	n, _ := w.WriteString("External_Id__c,Name,ProductCode,Description\n")
	written := int64(n)
	pad := strings.Repeat("lorem ipsum dolor sit amet ", 8)
	for written < size {
		n, _ := fmt.Fprintf(w, "MEM-%09d,Product %d,PC-%d,\"%s, \"\"quoted\"\"\n%d\"\n", rows, rows, rows%9973, pad, rows)
		written += int64(n)
		rows++
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// heapPeak samples the live heap while it runs.
type heapPeak struct {
	stop chan struct{}
	done sync.WaitGroup
	base uint64
	peak uint64
}

func startHeapPeak() *heapPeak {
	runtime.GC()
	h := &heapPeak{stop: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	h.base = read()
	h.peak = h.base
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tick.C:
				h.peak = max(h.peak, read())
			}
		}
	}()
	return h
}

// growthMB stops sampling and returns the peak heap above the start, in MiB.
func (h *heapPeak) growthMB() float64 {
	close(h.stop)
	h.done.Wait()
	return float64(h.peak-h.base) / (1 << 20)
}

// loadBig uploads a generated file of sizeMB through UploadJobData and
// downloads it back through DownloadResults, returning the peak heap
// growth in MiB.
func loadBig(t testing.TB, url string, sizeMB int) (peakMB float64, up, down time.Duration) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "big.csv")
	rows := writeBigCSV(t, src, int64(sizeMB)<<20)
	c, err := salesforce.New(salesforce.Config{LoginURL: url, ClientID: sfemu.TestClientID, ClientSecret: sfemu.TestClientSecret,
		PollInterval: 5 * time.Millisecond, MaxUploadBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if tt, ok := t.(*testing.T); ok {
		ctx = tt.Context()
	}
	if _, err := c.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	h := startHeapPeak()
	start := time.Now()
	job, err := c.CreateJob(ctx, upsertProducts)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadJobData(ctx, job.ID, src); err != nil {
		t.Fatal(err)
	}
	up = time.Since(start)
	if _, err := c.CloseJob(ctx, job.ID); err != nil {
		t.Fatal(err)
	}
	final, err := c.WaitJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.State != salesforce.JobFailed {
		t.Fatalf("job %s, want Failed (all rows unprocessed)", final.State)
	}
	out := filepath.Join(dir, "unprocessed.csv")
	dstart := time.Now()
	got, err := c.DownloadResults(ctx, job.ID, salesforce.ResultUnprocessed, out)
	if err != nil {
		t.Fatal(err)
	}
	down = time.Since(dstart)
	peakMB = h.growthMB()
	if got != rows {
		t.Errorf("downloaded %d rows, uploaded %d", got, rows)
	}
	si, _ := os.Stat(src)
	oi, _ := os.Stat(out)
	if oi.Size() < si.Size()*9/10 {
		t.Errorf("downloaded %d bytes for an upload of %d", oi.Size(), si.Size())
	}
	return peakMB, up, down
}

// TestLargeFileMemory loads a generated file (48 MiB by default, 8 MiB
// with -short, SALESFORCE_MEMTEST_MB to choose) up and back down, and
// checks the client's heap stays small: nothing is held whole.
func TestLargeFileMemory(t *testing.T) {
	if realOrg {
		t.Skip("emulator only")
	}
	sizeMB := 48
	if testing.Short() {
		sizeMB = 8
	}
	if s := os.Getenv("SALESFORCE_MEMTEST_MB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("SALESFORCE_MEMTEST_MB=%q: %v", s, err)
		}
		sizeMB = n
	}
	url := startEmulatorProcess(t)
	peak, up, down := loadBig(t, url, sizeMB)
	t.Logf("%d MiB: upload %s, download %s; peak heap growth %.2f MiB", sizeMB, up.Round(time.Millisecond), down.Round(time.Millisecond), peak)
	if limit := 16.0; peak > limit {
		t.Errorf("peak heap grew %.1f MiB for a %d MiB file; want under %.0f MiB", peak, sizeMB, limit)
	}
}

// BenchmarkLargeFile300MB is the full-size version: a 300 MiB file up and
// back. Run with: go test -run '^$' -bench LargeFile -benchtime 1x ./salesforce/
func BenchmarkLargeFile300MB(b *testing.B) {
	url := startEmulatorProcess(b)
	for b.Loop() {
		peak, up, down := loadBig(b, url, 300)
		b.ReportMetric(peak, "peak-heap-MiB")
		b.ReportMetric(300/up.Seconds(), "upload-MiB/s")
		b.ReportMetric(300/down.Seconds(), "download-MiB/s")
	}
}
