package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/sfmigrate/sfmigrate/pipeline"
)

// output renders a run for people and orchestrators: progress bars on a
// terminal (stderr), plain log lines otherwise or with NO_COLOR, a summary
// table at the end, and with --json the summary as the last stdout line.
type output struct {
	env    Env
	json   bool      // print the summary as JSON on stdout
	table  io.Writer // where the summary table goes (stdout; stderr with --json)
	tty    bool
	stderr io.Writer
	// resume is the command that continues this run ("" = do not tell).
	resume string

	wmu sync.Mutex // serialises log lines on stderr

	mu       sync.Mutex
	progress *mpb.Progress // nil off a terminal
	rows     *mpb.Bar      // rows extracted
	jobs     *mpb.Bar      // jobs finished / batches known
	records  *mpb.Bar      // records processed / rows extracted

	extracted, batches, created, finished atomic.Int64
	processed, failed                     atomic.Int64
	extractDone                           atomic.Bool
	rowsBefore                            int64        // rows extracted by earlier attempts; set in start
	live                                  atomic.Int64 // rows written so far, batch files not yet complete included
	began                                 time.Time    // when the bars started (for rates)
	processedBefore                       int64        // records processed by earlier attempts
}

// isTerminal reports whether w is a terminal that may show progress bars.
func isTerminal(env Env, w io.Writer) bool {
	if env.getenv("NO_COLOR") != "" || env.getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newOutput(env Env, jsonOut bool) *output {
	return &output{env: env, json: jsonOut, tty: isTerminal(env, env.Stderr), stderr: env.Stderr, table: env.Stdout}
}

// logger is the slog logger for library diagnostics (retries, warnings):
// warnings and above, written as sfmigrate's own log lines.
func (o *output) logger() *slog.Logger {
	return slog.New(&logHandler{o: o})
}

// logHandler writes slog records as "15:04:05 sfmigrate: warning: MSG
// (key value, ...): ERROR", the form of every other log line, above the
// progress bars when they are shown.
type logHandler struct {
	o      *output
	attrs  []slog.Attr
	prefix string // group prefix for keys
}

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var details []string
	var errText string
	add := func(a slog.Attr) {
		v := a.Value.Resolve()
		if v.Kind() == slog.KindDuration {
			v = slog.StringValue(v.Duration().Round(time.Millisecond).String())
		}
		if a.Key == "error" || a.Key == "err" {
			errText = v.String()
			return
		}
		details = append(details, h.prefix+a.Key+" "+v.String())
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool { add(a); return true })
	level := "warning"
	if r.Level >= slog.LevelError {
		level = "error"
	}
	line := level + ": " + r.Message
	if len(details) > 0 {
		line += " (" + strings.Join(details, ", ") + ")"
	}
	if errText != "" {
		line += ": " + errText
	}
	h.o.logf("%s", line)
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logHandler{o: h.o, attrs: append(slices.Clip(h.attrs), attrs...), prefix: h.prefix}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{o: h.o, attrs: h.attrs, prefix: h.prefix + name + "."}
}

// logWriter writes above the progress bars when they are shown.
func (o *output) logWriter() io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		o.mu.Lock()
		pr := o.progress
		o.mu.Unlock()
		if pr != nil {
			return pr.Write(p)
		}
		o.wmu.Lock()
		defer o.wmu.Unlock()
		return o.stderr.Write(p)
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (o *output) logf(format string, a ...any) {
	line := fmt.Sprintf("%s sfmigrate: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
	io.WriteString(o.logWriter(), line) //nolint:errcheck // progress output is best effort
}

// start prints what is about to happen and sets up the bars.
func (o *output) start(r *pipeline.Runner) {
	s := r.Settings()
	verb := "starting"
	if r.Resumed() {
		verb = "resuming"
	}
	o.logf("%s run %s: table %s -> %s (%s by %s), batch size %d, parallel %d",
		verb, r.RunID(), s.Table, s.SFObject, s.Operation, s.ExternalIDField, s.BatchSize, s.Parallel)
	o.logf("manifest %s", r.ManifestPath())
	m := r.Manifest()
	t := m.Totals()
	o.extracted.Store(t.Rows)
	o.rowsBefore = t.Rows
	o.batches.Store(int64(t.Batches))
	o.created.Store(int64(t.Jobs))
	o.finished.Store(int64(t.JobsDone))
	o.processed.Store(t.Processed)
	o.failed.Store(t.Failed)
	o.extractDone.Store(m.Extract.Done)
	if !o.tty {
		return
	}
	o.live.Store(t.Rows)
	o.began, o.processedBefore = time.Now(), t.Processed
	p := mpb.New(mpb.WithOutput(o.stderr), mpb.WithWidth(32), mpb.WithRefreshRate(150*time.Millisecond))
	// The query's row count is not known before it ends, so extraction is
	// a spinner until then. Every bar has one decorator each side, with
	// synchronised widths, so the bars line up at any terminal width.
	label := func(name string, text func() string) mpb.BarOption {
		return mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR),
			decor.Any(func(decor.Statistics) string { return text() }, decor.WCSyncSpaceR))
	}
	right := func(text func(decor.Statistics) string) mpb.BarOption {
		return mpb.AppendDecorators(decor.Any(text, decor.WCSyncWidthR))
	}
	o.rows = p.New(0, mpb.SpinnerStyle(), mpb.BarFillerClearOnComplete(),
		label("extract ", func() string { return fmt.Sprintf("%d rows, %d batch files", o.live.Load(), o.batches.Load()) }),
		right(func(st decor.Statistics) string {
			if st.Completed {
				return "done"
			}
			return fmt.Sprintf("%.0f rows/s", o.rate(o.live.Load()-o.rowsBefore))
		}),
	)
	o.jobs = p.AddBar(0,
		label("upload  ", func() string {
			return fmt.Sprintf("jobs %d created, %d finished of %d", o.created.Load(), o.finished.Load(), o.batches.Load())
		}),
		right(func(st decor.Statistics) string {
			// Until extraction ends the number of batches still grows: a
			// percent of it would go backwards.
			if !o.extractDone.Load() {
				return "..."
			}
			if st.Total <= 0 {
				return "0 %"
			}
			return fmt.Sprintf("%d %%", min(100, 100*st.Current/st.Total))
		}),
	)
	o.records = p.AddBar(0,
		label("records ", func() string { return fmt.Sprintf("%d processed, %d failed", o.processed.Load(), o.failed.Load()) }),
		right(func(st decor.Statistics) string {
			if st.Completed {
				return "done"
			}
			rate := o.rate(o.processed.Load() - o.processedBefore)
			text := fmt.Sprintf("%.0f rec/s", rate)
			// An ETA only means something once the total is known.
			if left := o.extracted.Load() - o.processed.Load(); o.extractDone.Load() && rate > 0 && left > 0 {
				text += ", ETA " + (time.Duration(float64(left)/rate) * time.Second).Round(time.Second).String()
			}
			return text
		}),
	)
	o.mu.Lock()
	o.progress = p
	o.mu.Unlock()
	o.refreshBars()
}

// rate is n per second since the bars started.
func (o *output) rate(n int64) float64 {
	if el := time.Since(o.began).Seconds(); el > 0 && n > 0 {
		return float64(n) / el
	}
	return 0
}

// refreshBars moves the bars to the counters. Totals grow while extraction
// runs; they are final once it is done.
func (o *output) refreshBars() {
	if o.rows == nil {
		return
	}
	rows, batches := o.extracted.Load(), o.batches.Load()
	done := o.extractDone.Load()
	if done && !o.rows.Completed() {
		o.live.Store(rows)
		o.rows.SetTotal(-1, true)
	}
	o.jobs.SetTotal(max(batches, 1), false)
	o.jobs.SetCurrent(o.finished.Load())
	o.records.SetTotal(max(rows, 1), false)
	o.records.SetCurrent(min(o.processed.Load(), max(rows, 1))) // rows sent again count once
	if done && o.finished.Load() >= batches {
		o.jobs.SetTotal(-1, true)
		o.records.SetTotal(-1, true)
	}
}

// Report implements pipeline.Reporter.
func (o *output) Report(e pipeline.Event) {
	switch e.Kind {
	case pipeline.EventRows:
		// Rows counted inside a batch; the batch event carries the total.
		// OnRows counts the rows this process wrote so far.
		o.live.Store(max(o.extracted.Load(), o.rowsBefore+e.Rows))
		return
	case pipeline.EventBatchExtracted:
		// The bar's row count follows each batch too, not only the
		// in-batch counts that come every 10,000 rows.
		o.live.Store(max(o.live.Load(), o.extracted.Add(e.Rows)))
		o.batches.Add(1)
		if !o.tty {
			o.logf("batch %s extracted: %d rows, %s -> %s", pipeline.BatchLabel(e.Batch), e.Rows, humanBytes(e.Bytes), e.Path)
		}
	case pipeline.EventRejected:
		o.logf("batch %s: %d rows rejected (values that cannot be sent) -> %s", pipeline.BatchLabel(e.Batch), e.Rows, e.Path)
	case pipeline.EventJobCreated:
		if !pipeline.IsFollowUpIndex(e.Batch) {
			o.created.Add(1)
		}
		if !o.tty {
			o.logf("batch %s: job %s created", pipeline.BatchLabel(e.Batch), e.JobID)
		}
	case pipeline.EventJobDone:
		// A follow-up's job counts in the records (its rows are sent again)
		// but not among the batches' jobs: "finished of N" stays within N.
		if (e.State == "JobComplete" || e.State == "Failed" || e.State == "Aborted") && !pipeline.IsFollowUpIndex(e.Batch) {
			o.finished.Add(1)
		}
		if e.State == "JobComplete" || e.State == "Failed" || e.State == "Aborted" {
			o.processed.Add(e.Processed)
			o.failed.Add(e.Failed)
		}
		switch {
		case e.Err != nil && errors.Is(e.Err, context.Canceled) && e.JobID == "":
			o.logf("batch %s: not started (stopping)", pipeline.BatchLabel(e.Batch))
		case e.Err != nil && errors.Is(e.Err, context.Canceled):
			o.logf("batch %s: stopped following job %s (%s); the next run follows it", pipeline.BatchLabel(e.Batch), e.JobID, e.State)
		case e.Err != nil:
			o.logf("batch %s: job %s did not finish: %v", pipeline.BatchLabel(e.Batch), e.JobID, e.Err)
		case !o.tty || e.State != "JobComplete":
			msg := ""
			if e.Message != "" {
				msg = " (" + e.Message + ")"
			}
			o.logf("batch %s: job %s %s: %d processed, %d failed%s", pipeline.BatchLabel(e.Batch), e.JobID, e.State, e.Processed, e.Failed, msg)
		}
	case pipeline.EventStepStarted:
		if !o.tty {
			o.logf("step %s started", e.Step)
		}
	case pipeline.EventStepDone:
		if e.Step == pipeline.StepExtract && e.Err == nil {
			o.extractDone.Store(true)
		}
		// A failure's message is the command's last line: not repeated here.
		var pe *pipeline.PartialError
		switch {
		case e.Err == nil || errors.As(e.Err, &pe):
			if !o.tty {
				o.logf("step %s done", e.Step)
			}
		case errors.Is(e.Err, pipeline.ErrInterrupted):
			o.logf("step %s stopped", e.Step)
		case errors.Is(e.Err, pipeline.ErrSiblingFailed):
			o.logf("step %s stopped: a step running alongside failed", e.Step)
		default:
			o.logf("step %s failed", e.Step)
		}
	case pipeline.EventResults:
		if !o.tty && e.Rows > 0 && e.State != pipeline.ResultSuccessful {
			o.logf("batch %s: %d %s records saved to %s", pipeline.BatchLabel(e.Batch), e.Rows, e.State, e.Path)
		}
	case pipeline.EventWarning:
		o.logf("warning: %s", e.Message)
	case pipeline.EventInfo:
		o.logf("%s", e.Message)
	}
	if o.tty {
		o.refreshBars()
	}
}

// finish stops the bars and prints the summary: a table for people (stdout,
// or stderr with --json) and the JSON line for orchestrators.
func (o *output) finish(s *pipeline.Summary, err error) {
	o.mu.Lock()
	p := o.progress
	o.mu.Unlock()
	if p != nil {
		o.refreshBars()
		for _, b := range []*mpb.Bar{o.rows, o.jobs, o.records} {
			if !b.Completed() {
				b.Abort(false)
			}
		}
		p.Wait()
		o.mu.Lock()
		o.progress = nil
		o.mu.Unlock()
	}
	if s == nil {
		return
	}
	table := o.table
	if o.json {
		table = o.env.Stderr
	}
	// A configuration problem stopped the run before it did anything worth
	// a table: the error says it all (the JSON line is still printed).
	if s.ExitCode != exitUsage {
		writeSummaryTable(table, s)
	}
	// A resume only matters once there is work to keep: batches written or
	// jobs in flight. Before that, a new run does as well.
	if o.resume != "" && (s.Outcome == "interrupted" || s.Outcome == "failed" && s.Batches > 0) {
		what := "failed; its manifest is up to date. Once the error below is fixed, continue it with"
		if s.Outcome == "interrupted" {
			what = "stopped; its manifest is up to date. Continue it with"
		}
		fmt.Fprintf(o.env.Stderr, "sfmigrate: run %s %s: %s\n", s.RunID, what, o.resume)
	}
	if o.json {
		data, jerr := json.Marshal(s)
		if jerr == nil {
			fmt.Fprintf(o.env.Stdout, "%s\n", data)
		}
	}
}

func writeSummaryTable(w io.Writer, s *pipeline.Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "  %s\t%v\n", k, v) }
	fmt.Fprintf(tw, "\nRun %s: %s\n", s.RunID, s.Outcome)
	row("table", fmt.Sprintf("%s -> %s (%s)", s.Table, s.Object, s.Operation))
	row("batches", fmt.Sprintf("%d (%d jobs, %d finished, %d failed/aborted)", s.Batches, s.Jobs, s.JobsDone, s.JobsFailed))
	records := fmt.Sprintf("%d extracted, %d succeeded, %d failed, %d unprocessed", s.Rows, s.Successful, s.Failed, s.Unprocessed)
	if s.Rejected > 0 {
		records += fmt.Sprintf(", %d rejected before upload", s.Rejected)
	}
	if s.Truncated > 0 {
		records += fmt.Sprintf(", %d values truncated", s.Truncated)
	}
	row("records", records)
	if w := s.Window; w != nil && len(w.Changes) > 0 {
		last := w.Changes[len(w.Changes)-1]
		row("in flight", fmt.Sprintf("up to %d jobs at once (max %d); %d changes, last: %s", w.Final, w.Max, len(w.Changes), last.Reason))
	}
	if s.FollowUpJobs > 0 {
		row("retried", fmt.Sprintf("%d rows sent again in %d follow-up jobs (transient failures, unprocessed rows)", s.Retried, s.FollowUpJobs))
	}
	if s.RetryRounds > 0 {
		row("retry rounds", fmt.Sprintf("%d (--retry-failed: rows read again from the source)", s.RetryRounds))
	}
	row("time", fmt.Sprintf("%s (%.0f records/s)", (time.Duration(s.Seconds*float64(time.Second))).Round(10*time.Millisecond), s.RowsPerSecond))
	status := s.TrackerStatus
	if status == "" {
		status = "(not updated yet)"
	}
	row("tracker", fmt.Sprintf("%s = %s", s.TrackerRef, status))
	row("results", s.ResultsDir)
	if s.SummaryFile != "" {
		row("summary", s.SummaryFile)
	}
	row("manifest", s.Manifest)
	// A few paths show where to look; all of them are in --json and
	// summary.json.
	const shown = 5
	for _, list := range []struct {
		kind   string
		merged string
		files  []string
	}{{"failed", s.FailedFile, s.FailedFiles}, {"unprocessed", s.UnprocessedFile, s.UnprocessedFiles}, {"rejected", "", s.RejectedFiles}} {
		if list.merged != "" {
			// One file with every record; the per-batch ones are in --json.
			row(list.kind, fmt.Sprintf("%s (all %d batch files' records)", list.merged, len(list.files)))
			continue
		}
		for i, f := range list.files {
			if i == shown {
				row(list.kind, fmt.Sprintf("... and %d more %s files in %s", len(list.files)-shown, list.kind, s.ResultsDir))
				break
			}
			row(list.kind, f)
		}
	}
	for i, fr := range s.FailureReasons {
		if i == shown {
			row("why", fmt.Sprintf("... and %d more error codes (summary.json: failure_reasons)", len(s.FailureReasons)-shown))
			break
		}
		row("why", fmt.Sprintf("%d × %s, e.g. %s", fr.Count, fr.Code, fr.Example))
	}
	for _, wmsg := range s.Warnings {
		row("warning", wmsg)
	}
	if s.PossiblyOpenJobs != nil {
		row("note", s.PossiblyOpenJobs.String())
	}
	tw.Flush() //nolint:errcheck // output to the user's terminal or pipe
	if len(s.FailedFiles)+len(s.UnprocessedFiles) > 0 {
		fmt.Fprintln(w, "  (the failed files hold each rejected record with Salesforce's sf__Error reason)")
	}
	if len(s.RejectedFiles) > 0 {
		fmt.Fprintln(w, "  (the rejected files hold each source row whose value could not be sent: key, column, value, reason)")
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

var _ pipeline.Reporter = (*output)(nil)
