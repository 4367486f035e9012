// Command extract-bench runs one extraction with the extract package and
// reports its speed and peak memory; bench/extract/run.sh drives it next to
// sqlite3 and psql. See bench/extract/README.md.
//
//	go run ./bench/extract -conn sqlite:////tmp/bench.db -dir /tmp/out
//
// Output (one line, for the script): rows=... files=... bytes=... seconds=...
// rows_per_s=... peak_rss_kb=...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/sfmigrate/sfmigrate/airflow"
	"github.com/sfmigrate/sfmigrate/extract"
)

// benchColumns are the 12 mixed columns of the benchmark table (see run.sh).
const benchColumns = "id,ext_id,name,description,price,quantity,active,launch_date,updated_at,ratio,category,notes"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "extract-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	connFlag := flag.String("conn", "", "source connection, Airflow URI or JSON form (required)")
	table := flag.String("table", "products", "table to extract")
	query := flag.String("query", "", "query to extract instead of -table")
	orderBy := flag.String("order-by", "id", "order_by columns, comma-separated")
	columns := flag.String("columns", benchColumns, "columns to write, comma-separated (field name = column + __c)")
	dir := flag.String("dir", "", "directory for the batch files (required)")
	batchSize := flag.Int("batch-size", 10000, "rows per batch file")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here")
	flag.Parse()
	if *connFlag == "" || *dir == "" {
		flag.Usage()
		return fmt.Errorf("-conn and -dir are required")
	}
	conn, err := airflow.ParseConnection("bench", *connFlag)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	t := extract.Table{Name: "BENCH", OrderBy: strings.Split(*orderBy, ",")}
	if *query != "" {
		t.Query = *query
	} else {
		t.From = *table
	}
	for _, c := range strings.Split(*columns, ",") {
		t.Fields = append(t.Fields, extract.Field{Column: c, Name: c + "__c"})
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	start := time.Now()
	src, err := extract.Open(ctx, conn)
	if err != nil {
		return err
	}
	defer src.Close()
	var bytes int64
	res, err := src.Extract(ctx, t, extract.Options{
		Dir: *dir, BatchSize: *batchSize,
		OnBatch: func(_ context.Context, b extract.Batch) error { bytes += b.Bytes; return nil },
	})
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	fmt.Printf("rows=%d files=%d bytes=%d seconds=%.3f rows_per_s=%.0f peak_rss_kb=%d\n",
		res.Rows, len(res.Batches), bytes, secs, float64(res.Rows)/secs, ru.Maxrss)
	return nil
}
