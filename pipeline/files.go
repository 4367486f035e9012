package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/sfmigrate/sfmigrate/internal/safefile"
)

// Files that hold source rows (batch, rejected and result files) and the
// manifest are created 0600, and sfmigrate never writes through a symbolic
// link it did not create: the directories it makes under --work-dir and
// --logs-dir (runs/, runs/<run-id>/, batches/, <run-id>/) and the files in
// them are checked with Lstat, and a link found there is an error naming
// it. The --work-dir and --logs-dir themselves may be links: the user
// chose them.

// cleanTemp removes the temporary files an interrupted attempt of this run
// left: names only sfmigrate gives, in the directories of this run (whose
// lock the Runner holds, so no other process is writing them):
//
//	runs/<run-id>/manifest.json.tmp                  the manifest being replaced
//	runs/<run-id>/batches/<NAME>.csv.tmp             a batch or follow-up file being written
//	<logs>/<run-id>/<NAME>_rejected.csv.tmp          a batch's rejected rows
//	runs/<run-id>/retry-failed/                       rows a --retry-failed round re-extracted
//	<logs>/<run-id>/.<NAME>_<kind>.csv.<random>.tmp  a result download
//	<logs>/<run-id>/<NAME>_final_<kind>.csv.tmp      merged results
//	<logs>/<run-id>/summary.json.tmp, .write-check-<random>
//
// where NAME is <TABLE>_<NNNNN> or <TABLE>_<NNNNN>_attempt<N> (batchName).
//
// A link with such a name is removed too (the link, not its target).
func (r *Runner) cleanTemp() []string {
	t := regexp.QuoteMeta(r.settings.Table)
	name := t + `_\d{5,}(?:_attempt\d+)?`
	kind := `(?:successful|failed|unprocessed)`
	type dirRe struct {
		dir string
		re  *regexp.Regexp
	}
	if n := r.store.MappedBatch(); n != 0 {
		// A mapped upload: only its own batch's files; other processes
		// write the others now.
		name = regexp.QuoteMeta(fmt.Sprintf("%s_%05d", r.settings.Table, n)) + `(?:_attempt\d+)?`
		var removed []string
		for _, d := range []dirRe{
			{filepath.Join(r.store.Dir(), "batches"), regexp.MustCompile(`^` + name + `\.csv\.tmp$`)},
			{r.logsDir, regexp.MustCompile(`^\.` + name + `_` + kind + `\.csv\.\d+\.tmp$`)},
		} {
			removed = append(removed, removeMatching(d.dir, d.re)...)
		}
		return removed
	}
	dirs := []dirRe{
		{r.store.Dir(), regexp.MustCompile(`^manifest\.json\.tmp$`)},
		{filepath.Join(r.store.Dir(), "batches"), regexp.MustCompile(`^` + name + `\.csv\.tmp$`)},
		{r.logsDir, regexp.MustCompile(`^(?:` + name + `_rejected\.csv\.tmp|\.` + name + `_` + kind + `\.csv\.\d+\.tmp|` +
			name + `_final_` + kind + `\.csv\.tmp|summary\.json\.tmp|\.write-check-\d+)$`)},
	}
	var removed []string
	// A retry round that did not finish re-extracting left its rows here.
	if tmp := filepath.Join(r.store.Dir(), retryTmpDir); safefile.RefuseDirLink(tmp) == nil && dirExists(tmp) {
		if err := os.RemoveAll(tmp); err == nil {
			removed = append(removed, tmp)
		}
	}
	for _, d := range dirs {
		removed = append(removed, removeMatching(d.dir, d.re)...)
	}
	return removed
}

// removeMatching removes the files of dir whose names re matches and
// returns their paths.
func removeMatching(dir string, re *regexp.Regexp) []string {
	if safefile.RefuseDirLink(dir) != nil {
		return nil // reported when the directory is written
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil // missing: nothing left there
	}
	var removed []string
	for _, e := range ents {
		if !re.MatchString(e.Name()) || e.IsDir() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err == nil {
			removed = append(removed, p)
		}
	}
	return removed
}

// rejectLimitError says the run stopped because more than max_rejected_rows
// rows were rejected. It is not a configuration error (exit 1): the data
// needs fixing, or the limit raising; the manifest is resumable.
func (r *Runner) rejectLimitError(rejected int64, last error) error {
	s := r.settings
	src := s.Sources["max_rejected_rows"].Source
	msg := fmt.Sprintf("table %s: %d rows rejected, more than max_rejected_rows = %d (from %s); they are in %s",
		s.Table, rejected, s.MaxRejectedRows, src, filepath.Join(r.logsDir, s.Table+"_*_rejected.csv"))
	if last != nil {
		msg += "; the last: " + last.Error()
	}
	return &fixError{err: errors.New(msg),
		fix: fmt.Sprintf("fix the rows at the source and start a new run, or raise max_rejected_rows and resume with --run-id %s", r.runID)}
}
