package pipeline

import (
	"fmt"
	"io"
)

// Size limits of the files sfmigrate reads as configuration. A file over
// its limit is refused with an error naming the limit, never read in
// part: a tables config cut short would silently lose the mappings after
// the cut.
const (
	// MaxTablesConfigBytes is the largest tables config (--tables-config).
	MaxTablesConfigBytes = 16 << 20
	// MaxRunConfigBytes is the largest run config file (--conf-file).
	MaxRunConfigBytes = 1 << 20
)

// readAllLimited reads r whole; more than limit bytes is errTooLarge.
func readAllLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errTooLarge{limit}
	}
	return data, nil
}

// errTooLarge is a file over its size limit.
type errTooLarge struct{ limit int64 }

func (e errTooLarge) Error() string {
	return "is larger than " + sizeText(e.limit) + ", the most sfmigrate reads"
}

// sizeText writes a limit as bytes and MiB.
func sizeText(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d bytes (%d MiB)", n, n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
