package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/sfmigrate/sfmigrate/internal/safefile"
	"github.com/sfmigrate/sfmigrate/salesforce"
)

// Mapped upload: `sfmigrate task upload --batch N`.
//
// An orchestrator can upload the batches of one run in separate processes,
// on separate workers sharing --work-dir (Airflow: the upload task mapped
// over the extract task's list of batches). Each such process owns one
// extracted batch and its follow-ups (originOf(b) == N): it creates,
// records, follows and settles their jobs, and touches no other batch.
//
// Locks (flock, dropped by the kernel when a process dies):
//   - runs/<id>/lock: shared by the mapped uploads, exclusive for every
//     other step, so a whole-run step never runs beside a mapped upload;
//   - runs/<id>/lock.batch-N: exclusive, one uploader per batch;
//   - runs/<id>/lock.manifest: held by a mapped upload around each change
//     of the manifest, which it reads again from disk, lays its own batches
//     over (mergeOwned) and writes back. manifest.json stays the one whole
//     record of the run: readers need nothing else, and the manifest's
//     format does not change.
//
// The last mapped upload to find every batch of the run settled marks the
// upload step done, so collect-results can follow as after `task upload`.

// OpenRunBatch opens an existing run for the mapped upload of extracted
// batch: it takes the run's shared lock and the batch's own lock.
func OpenRunBatch(workDir, runID string, batch int) (*RunStore, error) {
	dir := RunDir(workDir, runID)
	if !ManifestExists(workDir, runID) {
		return nil, &ConfigError{Setting: "--batch", Value: fmt.Sprint(batch), Source: "flag --batch",
			Problem: fmt.Sprintf("run %s has no manifest under --work-dir %s", runID, workDir),
			Fix:     "run the extract step of this run first, with the same --run-id and --work-dir"}
	}
	for _, d := range []string{filepath.Dir(dir), dir} { // as OpenRun: a planted link is not followed
		if err := safefile.RefuseDirLink(d); err != nil {
			return nil, err
		}
	}
	shared, err := lockDirShared(dir)
	if err != nil {
		return nil, err
	}
	own, err := lockBatch(dir, batch)
	if err != nil {
		shared.Close()
		return nil, err
	}
	m, err := ReadManifest(workDir, runID)
	if err != nil {
		own.Close()
		shared.Close()
		return nil, err
	}
	return &RunStore{dir: dir, lock: closers{own, shared}, batch: batch, m: m}, nil
}

// closers closes each in turn.
type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Owns reports whether batch b belongs to this process: every batch does,
// except in a mapped upload, which owns one extracted batch and its
// follow-ups.
func (s *RunStore) Owns(b *BatchState) bool { return s.ownsIndex(b.Index) }

// ownsIndex is Owns by batch index: a follow-up's index holds its origin
// (followUpIndex).
func (s *RunStore) ownsIndex(idx int) bool { return s.batch == 0 || idx%followUpStride == s.batch }

// ownSnapshot is Snapshot with only the batches (and possibly-open jobs)
// this process owns: a mapped upload's own share of the run.
func (s *RunStore) ownSnapshot() *Manifest {
	m := s.Snapshot()
	if s.batch != 0 {
		m.Batches = slices.DeleteFunc(m.Batches, func(b *BatchState) bool { return !s.Owns(b) })
		m.PossiblyOpenJobs = slices.DeleteFunc(m.PossiblyOpenJobs, func(p PossiblyOpenJob) bool { return !s.ownsIndex(p.Batch) })
	}
	return m
}

// MappedBatch is the extracted batch of a mapped upload, 0 otherwise.
func (s *RunStore) MappedBatch() int { return s.batch }

// mergeOwned takes the manifest lock, reads the manifest written by every
// process since, and lays this process's batches and their possibly-open
// jobs over it; s.m becomes the result. Called with s.mu held; the
// returned func releases the manifest lock after the write.
func (s *RunStore) mergeOwned() (unlock func(), err error) {
	l, err := lockManifest(s.dir)
	if err != nil {
		return nil, err
	}
	disk, err := readManifestAt(s.dir, s.m.RunID)
	if err != nil {
		l.Close()
		return nil, err
	}
	var mine []*BatchState
	for _, b := range s.m.Batches {
		if s.Owns(b) {
			mine = append(mine, b)
		}
	}
	disk.Batches = slices.DeleteFunc(disk.Batches, s.Owns)
	disk.Batches = append(disk.Batches, mine...)
	sort.Slice(disk.Batches, func(i, j int) bool { return disk.Batches[i].Index < disk.Batches[j].Index })
	owned := func(p PossiblyOpenJob) bool { return s.ownsIndex(p.Batch) }
	disk.PossiblyOpenJobs = slices.DeleteFunc(disk.PossiblyOpenJobs, owned)
	for _, p := range s.m.PossiblyOpenJobs {
		if owned(p) {
			disk.PossiblyOpenJobs = append(disk.PossiblyOpenJobs, p)
		}
	}
	sort.SliceStable(disk.PossiblyOpenJobs, func(i, j int) bool { return disk.PossiblyOpenJobs[i].From.Before(disk.PossiblyOpenJobs[j].From) })
	s.m = disk
	return func() { l.Close() }, nil
}

// uploadSettled reports whether every batch of m is finished with as far
// as upload goes: its job (if it needs one) is final, and its rows to
// retry, if any, are in a recorded follow-up.
func uploadSettled(m *Manifest) bool {
	if !m.Extract.Done {
		return false
	}
	for _, b := range m.Batches {
		if b.Empty() {
			continue
		}
		if !b.Terminal() || !b.Settled && !(b.JobState == string(salesforce.JobComplete) && b.Failed == 0) {
			return false
		}
	}
	return true
}

// checkMappedBatch refuses a mapped upload of a batch the run does not
// have, naming the ones it has.
func (r *Runner) checkMappedBatch() error {
	n := r.store.MappedBatch()
	m := r.store.Snapshot()
	if b := m.Batch(n); b != nil && !b.IsFollowUp() {
		return nil
	}
	list := UploadBatches(m)
	have := "no batch with rows"
	if len(list) > 0 {
		have = fmt.Sprintf("%d batches with rows, %s", len(list), batchRanges(list))
	}
	return &ConfigError{Setting: "--batch", Value: fmt.Sprint(n), Source: "flag --batch",
		Problem: fmt.Sprintf("run %s has no extracted batch %d (it has %s)", r.runID, n, have),
		Fix:     "map the upload over the extract step's upload_batches (its --json summary)"}
}

// uploadMapped uploads the run's one batch this process owns, with its
// follow-ups, and marks the upload step done when it finds every batch of
// the run settled.
func (r *Runner) uploadMapped(ctx context.Context) error {
	if err := r.uploadAll(ctx); err != nil {
		return err
	}
	done := false
	err := r.store.Update(func(m *Manifest) error {
		if m.StepDone(StepUpload) || !uploadSettled(m) {
			return nil
		}
		now := r.opts.Now().UTC()
		st := m.Step(StepUpload)
		if st.StartedAt.IsZero() {
			st.StartedAt = now
		}
		st.State, st.FinishedAt, st.Error = StateDone, &now, ""
		done = true
		return nil
	})
	if done {
		r.report.Report(Event{Kind: EventInfo, Message: fmt.Sprintf("every batch of run %s is uploaded: the upload step is done", r.runID)})
	}
	return err
}

// UploadBatches lists the extracted batches of m that have rows to upload:
// what `task upload --batch` is mapped over.
func UploadBatches(m *Manifest) []int {
	var list []int
	for _, b := range m.Batches {
		if !b.IsFollowUp() && !b.Empty() {
			list = append(list, b.Index)
		}
	}
	return list
}

// batchRanges writes sorted batch numbers as ranges: "1-4, 7".
func batchRanges(list []int) string {
	var parts []string
	for i := 0; i < len(list); {
		j := i
		for j+1 < len(list) && list[j+1] == list[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, fmt.Sprint(list[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", list[i], list[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
