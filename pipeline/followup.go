package pipeline

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sfmigrate/sfmigrate/salesforce"

	"github.com/sfmigrate/sfmigrate/internal/safefile"
)

// Record-level retry.
//
// A row can fail for a reason that passes: another transaction held the
// record (UNABLE_TO_LOCK_ROW), or its job ended Failed or Aborted before
// reaching it (unprocessed). Such rows are re-submitted in a follow-up
// batch: a batch of its own, with its own file and job, recorded in the
// manifest before its job is created, so that a crash resumes it like any
// other batch. A follow-up's own transient failures go into a further
// follow-up, up to record_retries follow-ups per extracted batch.
//
// The rows of a follow-up are taken from the file of the attempt before,
// matched by the job's key column (the external id field of an upsert, Id
// of an update or delete) with the keys the result files name: the result
// files' values are re-serialised by Salesforce and are not always what was
// sent (docs/salesforce-api.md §3.2). An insert has no key, so its
// follow-up carries the values the result files echo.
//
// Every extracted row ends with one final outcome: successful in some
// attempt, or failed or unprocessed in the attempt that was not retried
// again. Manifest.Totals counts it so, and finalResults writes it.

// retryableRecordCodes are the sf__Error status codes after which the same
// row may succeed when sent again unchanged: contention and timeouts on
// Salesforce's side (docs/salesforce-api.md §3.3, §4.4, §6.3).
var retryableRecordCodes = map[string]bool{
	"UNABLE_TO_LOCK_ROW":       true,
	"REQUEST_RUNNING_TOO_LONG": true,
	"QUERY_TIMEOUT":            true,
	"SERVER_UNAVAILABLE":       true,
}

// recordErrorCode is the status code of an sf__Error value: the text
// before its first colon (§3.3).
func recordErrorCode(sfError string) string {
	code, _, _ := strings.Cut(sfError, ":")
	return strings.TrimSpace(code)
}

// retryableRecordError reports whether a failed row's sf__Error names a
// transient cause.
func retryableRecordError(sfError string) bool { return retryableRecordCodes[recordErrorCode(sfError)] }

// followUpStride separates follow-up indexes from extracted ones: follow-up
// attempt k of batch i has index k·2³² + i, and extracted batches are
// numbered below 2³¹ (start_batch is an int32), so follow-ups sort after
// every extracted batch and never collide with one.
const followUpStride = 1 << 32

func followUpIndex(origin, attempt int) int { return attempt*followUpStride + origin }

// IsFollowUpIndex reports whether a batch index is a follow-up's.
func IsFollowUpIndex(idx int) bool { return idx >= followUpStride }

// BatchLabel names a batch index for people: "7", or "7 (attempt 2)" for
// the first follow-up of batch 7.
func BatchLabel(idx int) string {
	if !IsFollowUpIndex(idx) {
		return fmt.Sprint(idx)
	}
	return fmt.Sprintf("%d (attempt %d)", idx%followUpStride, idx/followUpStride)
}

// originOf is the extracted batch whose rows b carries.
func originOf(b *BatchState) int {
	if b.IsFollowUp() {
		return b.Origin
	}
	return b.Index
}

// batchName is the file-name stem of a batch: TABLE_00003 for an extracted
// batch, TABLE_00003_attempt2 for its first follow-up.
func (r *Runner) batchName(b *BatchState) string {
	name := fmt.Sprintf("%s_%05d", r.settings.Table, originOf(b))
	if b.IsFollowUp() {
		name += fmt.Sprintf("_attempt%d", b.Attempt)
	}
	return name
}

// keyColumn is the batch-file column that identifies a row in the result
// files, or "" when the operation has none (insert).
func (r *Runner) keyColumn() string {
	switch r.settings.Operation {
	case "upsert":
		return r.settings.ExternalIDField
	case "update", "delete", "hardDelete":
		return "Id"
	}
	return ""
}

// followUpDelay is the pause before follow-up attempt k: contention passes
// in seconds, so it starts near the poll interval and doubles, capped at a
// minute.
func (r *Runner) followUpDelay(attempt int) time.Duration {
	d := max(r.opts.PollInterval, 250*time.Millisecond)
	for i := 2; i < attempt && d < time.Minute; i++ {
		d *= 2
	}
	return min(d, time.Minute)
}

// planFollowUps settles every finished batch that has rows which did not
// succeed: it records a follow-up batch for the rows worth sending again
// and returns the indexes of the follow-ups made. It needs the failed and
// unprocessed results of those batches and downloads them if missing.
func (r *Runner) planFollowUps(ctx context.Context) ([]int, error) {
	if r.collector != nil {
		r.collector.wait() // the downloads under way for finished jobs
	}
	m := r.store.Snapshot()
	var made []int
	for _, b := range m.Batches {
		if !b.Terminal() || b.Empty() || b.Settled || b.JobState == string(salesforce.JobComplete) && b.Failed == 0 || !r.store.Owns(b) {
			continue
		}
		idx, err := r.settle(ctx, b)
		if err != nil {
			return made, err
		}
		if idx != 0 {
			made = append(made, idx)
		}
	}
	return made, nil
}

// settleNow settles batch idx as soon as its results are saved, while the
// load goes on, and hands its follow-up, if any, to the running load after
// followUpDelay (stream.go). Whatever fails here is left to the round
// after the load (planFollowUps), which settles the batch again and
// reports the error. It resolves idx's file in st in every case.
func (r *Runner) settleNow(ctx context.Context, idx int, saved bool, st *followStream) {
	defer st.resolved()
	if !saved || ctx.Err() != nil {
		return
	}
	var b *BatchState
	r.store.View(func(m *Manifest) {
		if p := m.Batch(idx); p != nil {
			b = cloneBatchPtr(p)
		}
	})
	if b == nil || !b.Terminal() || b.Empty() || b.Settled || b.JobState == string(salesforce.JobComplete) && b.Failed == 0 || !r.store.Owns(b) {
		return
	}
	fu, err := r.settle(ctx, b)
	if err != nil || fu == 0 {
		return
	}
	st.later(fu, r.followUpDelay(b.AttemptNo()+1))
}

// settle decides b's follow-up and records it with b marked settled, in
// one manifest write. It returns the follow-up's index, or 0 when no row
// of b is worth sending again.
func (r *Runner) settle(ctx context.Context, b *BatchState) (int, error) {
	attempt := b.AttemptNo() + 1
	var retry retrySet
	if attempt-1-b.RetryFrom <= r.settings.RecordRetries {
		if err := os.MkdirAll(r.logsDir, 0o755); err != nil {
			return 0, fmt.Errorf("create logs directory: %w", err)
		}
		if err := r.saveResults(ctx, b.Index, b.JobID); err != nil {
			return 0, err
		}
		r.store.View(func(m *Manifest) { b = cloneBatchPtr(m.Batch(b.Index)) })
		var err error
		if retry, err = r.rowsToRetry(b); err != nil {
			return 0, fmt.Errorf("batch %d: choose the rows to send again: %w", originOf(b), err)
		}
	}
	if retry.total() == 0 {
		if err := r.store.Update(func(m *Manifest) error {
			if mb := m.Batch(b.Index); mb != nil {
				mb.Settled = true
			}
			return nil
		}); err != nil {
			return 0, err
		}
		if b.JobState == string(salesforce.JobComplete) {
			r.removeBatchFile(b.Index)
		}
		return 0, nil
	}
	fu := &BatchState{Index: followUpIndex(originOf(b), attempt), Origin: originOf(b), Attempt: attempt, RetryFrom: b.RetryFrom}
	fu.File = filepath.Join("batches", r.batchName(fu)+".csv")
	rows, size, sum, err := r.writeFollowUpFile(b, fu, &retry)
	if err != nil {
		return 0, fmt.Errorf("batch %d: write follow-up file %s: %w", originOf(b), fu.File, err)
	}
	fu.Rows, fu.Bytes, fu.SHA256 = rows, size, sum
	if err := r.store.Update(func(m *Manifest) error {
		mb := m.Batch(b.Index)
		if mb == nil {
			return fmt.Errorf("batch %d vanished from the manifest", b.Index)
		}
		mb.Settled, mb.FollowUp = true, fu.Index
		mb.RetriedFailed, mb.RetriedUnprocessed = retry.failed, retry.unprocessed
		if m.Batch(fu.Index) == nil {
			m.Batches = append(m.Batches, fu)
			sort.Slice(m.Batches, func(i, j int) bool { return m.Batches[i].Index < m.Batches[j].Index })
		}
		return nil
	}); err != nil {
		return 0, err
	}
	r.removeBatchFile(b.Index) // its rows to send again are in the follow-up's file
	why := []string{}
	for _, c := range retry.codesSorted() {
		why = append(why, fmt.Sprintf("%d %s", retry.codes[c], c))
	}
	if retry.unprocessed > 0 {
		why = append(why, fmt.Sprintf("%d unprocessed (job %s)", retry.unprocessed, b.JobState))
	}
	r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("batch %d: sending %d rows again in follow-up attempt %d of %d after %s (%s)",
		originOf(b), rows, attempt, r.settings.RecordRetries+1+b.RetryFrom, r.followUpDelay(attempt), strings.Join(why, ", "))})
	if rows != retry.total() {
		r.warn(fmt.Sprintf("batch %d: %d rows to send again, but %d of them were found in %s by %s",
			originOf(b), retry.total(), rows, b.File, r.keyColumn()))
	}
	return fu.Index, nil
}

func cloneBatchPtr(b *BatchState) *BatchState {
	c := cloneBatch(b)
	return &c
}

// retrySet is the rows of one batch to send again.
type retrySet struct {
	failed, unprocessed int64
	codes               map[string]int64 // failed rows by sf__Error code
	keys                map[string]int   // key value -> rows with it (keyed operations)
	header              []string         // echoed columns (insert)
	rows                [][]string       // echoed rows (insert)
}

func (s *retrySet) total() int64 { return s.failed + s.unprocessed }

func (s *retrySet) codesSorted() []string {
	var cs []string
	for c := range s.codes {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	return cs
}

// rowsToRetry reads b's failed and unprocessed result files and collects
// the rows to send again.
func (r *Runner) rowsToRetry(b *BatchState) (retrySet, error) {
	set := retrySet{codes: map[string]int64{}, keys: map[string]int{}}
	key := r.keyColumn()
	add := func(header, row []string, offset int) error {
		if key == "" {
			if set.header == nil {
				set.header = header[offset:]
			}
			set.rows = append(set.rows, row[offset:])
			return nil
		}
		k := columnIndex(header, key)
		if k < 0 {
			return fmt.Errorf("the result file has no %s column to find the rows by", key)
		}
		set.keys[row[k]]++
		return nil
	}
	if f := b.Results[ResultFailed]; f != nil && f.Rows > 0 {
		err := eachCSVRow(f.Path, func(header, row []string) error {
			e := columnIndex(header, "sf__Error")
			if e < 0 || len(header) < 2 {
				return fmt.Errorf("%s has no sf__Error column", f.Path)
			}
			if !retryableRecordError(row[e]) {
				return nil
			}
			set.failed++
			set.codes[recordErrorCode(row[e])]++
			return add(header, row, 2) // sf__Id, sf__Error, then the columns sent
		})
		if err != nil {
			return set, err
		}
	}
	if f := b.Results[ResultUnprocessed]; f != nil && f.Rows > 0 {
		err := eachCSVRow(f.Path, func(header, row []string) error {
			set.unprocessed++
			return add(header, row, 0)
		})
		if err != nil {
			return set, err
		}
	}
	return set, nil
}

// writeFollowUpFile writes fu's batch file: the rows of b's file whose key
// is in retry (or, for an insert, the echoed rows), with b's header. It
// returns the rows and bytes written and the file's SHA-256.
func (r *Runner) writeFollowUpFile(b, fu *BatchState, retry *retrySet) (rows, size int64, sum string, err error) {
	path := r.batchPath(fu)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, 0, "", err
	}
	tmp := path + ".tmp"
	out, err := safefile.CreateNew(tmp)
	if err != nil {
		return 0, 0, "", err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	w := csv.NewWriter(out)
	if r.keyColumn() == "" {
		if err = w.Write(retry.header); err != nil {
			return 0, 0, "", err
		}
		for _, row := range retry.rows {
			if err = w.Write(row); err != nil {
				return 0, 0, "", err
			}
			rows++
		}
	} else {
		src := r.batchPath(b)
		wrote := false
		left := map[string]int{}
		for k, n := range retry.keys {
			left[k] = n
		}
		err = eachCSVRow(src, func(header, row []string) error {
			if !wrote {
				wrote = true
				if err := w.Write(header); err != nil {
					return err
				}
			}
			k := columnIndex(header, r.keyColumn())
			if k < 0 {
				return fmt.Errorf("%s has no %s column", src, r.keyColumn())
			}
			if left[row[k]] > 0 {
				left[row[k]]--
				rows++
				return w.Write(row)
			}
			return nil
		})
		if err != nil {
			return 0, 0, "", fmt.Errorf("read %s (batch files stay until their rows are settled): %w", src, err)
		}
	}
	w.Flush()
	if err = w.Error(); err != nil {
		return 0, 0, "", err
	}
	if err = out.Sync(); err != nil {
		return 0, 0, "", err
	}
	if err = out.Close(); err != nil {
		return 0, 0, "", err
	}
	if err = safefile.RefuseLink(path); err != nil {
		return 0, 0, "", err
	}
	if err = os.Rename(tmp, path); err != nil {
		return 0, 0, "", err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, "", err
	}
	sum, err = fileSHA256(path)
	return rows, fi.Size(), sum, err
}

// removeBatchFile removes batch idx's file once nothing needs it, unless
// --keep-batches, and records that.
func (r *Runner) removeBatchFile(idx int) {
	if r.opts.KeepBatches {
		return
	}
	var path string
	r.store.View(func(m *Manifest) {
		if b := m.Batch(idx); b != nil && !b.FileRemoved {
			path = r.batchPath(b)
		}
	})
	if path == "" {
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.warn(fmt.Sprintf("cannot remove batch file %s: %v", path, err))
		return
	}
	_ = r.store.Update(func(m *Manifest) error { // a failed write surfaces on the next Update
		if b := m.Batch(idx); b != nil {
			b.FileRemoved = true
		}
		return nil
	})
}

// columnIndex finds a header column by name, case-insensitively (field API
// names are).
func columnIndex(header []string, name string) int {
	for i, h := range header {
		if strings.EqualFold(h, name) {
			return i
		}
	}
	return -1
}

// csvBufSize is the buffer of the result files merged and read here.
const csvBufSize = 64 << 10

// eachCSVRow calls fn with the header and each data row of a CSV file. An
// empty file has no header and no rows.
func eachCSVRow(path string, fn func(header, row []string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close() // read-only
	// csv.NewReader keeps a bufio.Reader of 64 KiB as it is: its own 4 KiB
	// one made a read call for every 4 KiB of a result file.
	rd := csv.NewReader(bufio.NewReaderSize(f, csvBufSize))
	rd.ReuseRecord = false
	header, err := rd.Read()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	for {
		row, err := rd.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if err := fn(header, row); err != nil {
			return err
		}
	}
}

// finalResults writes, for every extracted batch with follow-ups whose
// attempts all finished, its result files merged over the attempts:
// <TABLE>_<NNNNN>_final_{successful,failed,unprocessed}.csv, each row with
// the attempt that decided it in a last column sfmigrate__attempt. A row
// retried appears once, with its last outcome.
func (r *Runner) finalResults() error {
	m := r.store.Snapshot()
	// Each batch's files are its own: merged side by side, as a run of
	// 1,000 batches with follow-ups would otherwise spend a minute here
	// one file after the other (4-5 µs a row, mostly CSV parsing and
	// writing).
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, b := range m.Batches {
		if b.IsFollowUp() || b.FollowUp == 0 {
			continue
		}
		g.Go(func() error { return r.finalResultsOf(m, b) })
	}
	return g.Wait()
}

// finalResultsOf writes batch b's final result files once all its
// attempts finished (finalResults).
func (r *Runner) finalResultsOf(m *Manifest, b *BatchState) error {
	chain := []*BatchState{b}
	for next := b.FollowUp; next != 0; {
		fb := m.Batch(next)
		if fb == nil || !fb.Terminal() || len(fb.Results) < len(ResultKinds) && !fb.Empty() {
			chain = nil
			break
		}
		chain = append(chain, fb)
		next = fb.FollowUp
	}
	if chain == nil {
		return nil // an attempt has not finished
	}
	resent, err := r.resentLater(chain) // rows a --retry-failed follow-up carried on
	if err != nil {
		return fmt.Errorf("batch %d: %w", b.Index, err)
	}
	final := map[string]*ResultFile{}
	for _, kind := range ResultKinds {
		path := filepath.Join(r.logsDir, fmt.Sprintf("%s_final_%s.csv", r.batchName(b), kind))
		n, err := mergeResults(path, kind, chain, resent)
		if err != nil {
			return fmt.Errorf("batch %d: merge %s results over %d attempts: %w", b.Index, kind, len(chain), err)
		}
		if n == 0 {
			// No empty files: the manifest keeps the count.
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		final[kind] = &ResultFile{Path: path, Rows: n}
	}
	return r.store.Update(func(m *Manifest) error {
		if mb := m.Batch(b.Index); mb != nil {
			mb.Final = final
		}
		return nil
	})
}

// attemptColumn is the last column of merged result files: the attempt
// that decided the record's outcome.
const attemptColumn = "sfmigrate__attempt"

// mergeResults writes one kind of final results for an attempt chain.
// resent, when not nil, tells the failed or unprocessed rows of chain[i]
// that a later --retry-failed follow-up sent again (left out here).
func mergeResults(path, kind string, chain []*BatchState, resent func(i int, header, row []string) bool) (int64, error) {
	tmp := path + ".tmp"
	out, err := safefile.CreateNew(tmp)
	if err != nil {
		return 0, err
	}
	w := csv.NewWriter(bufio.NewWriterSize(out, csvBufSize)) // see eachCSVRow
	var header []string
	var rows int64
	for i, b := range chain {
		f := b.Results[kind]
		if f == nil || f.Rows == 0 {
			continue
		}
		// Its transient failures and unprocessed rows went on (a
		// --retry-failed follow-up took the rows resent names instead).
		retried := b.FollowUp != 0 && (i+1 >= len(chain) || chain[i+1].Via == "")
		if retried && kind == ResultUnprocessed {
			continue
		}
		attempt := fmt.Sprint(b.AttemptNo())
		err := eachCSVRow(f.Path, func(h, row []string) error {
			if header == nil {
				header = append(append([]string{}, h...), attemptColumn)
				if err := w.Write(header); err != nil {
					return err
				}
			}
			if retried && kind == ResultFailed {
				if e := columnIndex(h, "sf__Error"); e >= 0 && retryableRecordError(row[e]) {
					return nil
				}
			}
			if resent != nil && kind != ResultSuccessful && resent(i, h, row) {
				return nil
			}
			rows++
			return w.Write(reorder(header[:len(header)-1], h, row, attempt))
		})
		if err != nil {
			out.Close()
			os.Remove(tmp)
			return 0, err
		}
	}
	w.Flush()
	err = errors.Join(w.Error(), out.Sync(), out.Close())
	if err == nil {
		err = safefile.RefuseLink(path)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return rows, nil
}

// reorder puts row (with header h) into the column order of want and
// appends extra.
func reorder(want, h, row []string, extra string) []string {
	out := make([]string, len(want)+1)
	for i, name := range want {
		if i < len(h) && strings.EqualFold(h[i], name) {
			out[i] = row[i]
		} else if j := columnIndex(h, name); j >= 0 {
			out[i] = row[j]
		}
	}
	out[len(want)] = extra
	return out
}
