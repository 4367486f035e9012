package pipeline

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FailureReason is one kind of record failure: Salesforce's status code
// (the part of sf__Error before the first ':'), how many records failed
// with it and one full message as an example.
type FailureReason struct {
	Code    string `json:"code"`
	Count   int64  `json:"count"`
	Example string `json:"example"`
}

// failureReasons reads the failed result files and groups their records by
// error code, most frequent first. Files that cannot be read are skipped:
// the counts then cover the files that could.
func failureReasons(files []string) []FailureReason {
	byCode := map[string]*FailureReason{}
	for _, path := range files {
		readFailed(path, func(msg string) {
			code, _, _ := strings.Cut(msg, ":")
			code = strings.TrimSpace(code)
			if code == "" {
				code = "(no code)"
			}
			fr := byCode[code]
			if fr == nil {
				fr = &FailureReason{Code: code, Example: shortReason(msg)}
				byCode[code] = fr
			}
			fr.Count++
		})
	}
	out := make([]FailureReason, 0, len(byCode))
	for _, fr := range byCode {
		out = append(out, *fr)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Code < out[j].Code
	})
	return out
}

// readFailed calls fn with the sf__Error of every record of a failed
// result file.
func readFailed(path string, fn func(msg string)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close() //nolint:errcheck // read-only
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		return
	}
	col := -1
	for i, h := range head {
		if strings.EqualFold(strings.TrimPrefix(h, "\ufeff"), "sf__Error") {
			col = i
		}
	}
	if col < 0 {
		return
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) || (err != nil && !errors.As(err, new(*csv.ParseError))) {
			return
		}
		if err == nil && col < len(rec) {
			fn(rec[col])
		}
	}
}

// shortReason bounds an example message.
func shortReason(s string) string {
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 300 {
		return string(r[:299]) + "…"
	}
	return s
}

// absPath makes a path absolute for the summary (as it is when that fails).
func absPath(p string) string {
	if p == "" {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// removeEmptyResults removes result files without records (a header at
// most) once collected: every batch has three result sets, most of them
// empty, and only files with rows are worth a look. The manifest keeps
// their row count (0), so they are not downloaded again.
func (r *Runner) removeEmptyResults() {
	r.store.View(func(m *Manifest) {
		for _, b := range m.Batches {
			for _, f := range b.Results {
				if f != nil && f.Rows == 0 && f.Path != "" {
					_ = os.Remove(f.Path) // a leftover empty file is harmless
				}
			}
		}
	})
}

// mergeTableResults writes <dir>/<table>_<kind>.csv: the records of every
// file in files (result files of one kind: per-batch files, and the final
// files of batches with follow-ups) under one header, so that a person
// opens one file, not one per batch. The columns are those of the first
// file; a last column sfmigrate__attempt says which attempt decided each
// record (1 for a batch without follow-ups). It is rebuilt from the files
// each time, written atomically; when one of them is missing it leaves an
// existing merged file alone and returns its path if there is one.
func mergeTableResults(dir, table, kind string, files []string) (string, error) {
	path := filepath.Join(dir, table+"_"+kind+".csv")
	if len(files) == 0 {
		return "", nil
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			if _, err := os.Stat(path); err == nil {
				return path, nil
			}
			return "", nil
		}
	}
	tmp, err := os.CreateTemp(dir, "."+table+"_"+kind+"-*.csv")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after the rename
	w := csv.NewWriter(tmp)
	var header []string
	for _, f := range files {
		err := eachCSVRow(f, func(h, row []string) error {
			attempt := "1"
			if a := columnIndex(h, attemptColumn); a >= 0 {
				attempt, h, row = row[a], h[:a], row[:a]
			}
			if header == nil {
				header = append(append([]string{}, h...), attemptColumn)
				if err := w.Write(header); err != nil {
					return err
				}
			}
			return w.Write(reorder(header[:len(header)-1], h, row, attempt))
		})
		if err != nil {
			tmp.Close() //nolint:errcheck // the copy failed already
			return "", fmt.Errorf("merge %s into %s: %w", f, path, err)
		}
	}
	w.Flush()
	if err := errors.Join(w.Error(), tmp.Close()); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}
